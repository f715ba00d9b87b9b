"""Headless Services with EndpointSlices (and NONE ServiceEntries with endpoints) in predictions.

Expectations come from pilot's behaviour as `pilot/pkg/networking/core/listener.go`
(`buildSidecarOutboundListeners`, the statefulset/headless branch), the endpoint-slice controller
(`pilot/pkg/serviceregistry/kube/controller/endpointslice.go`) and the DNS name table
(`pkg/dns/server/name_table.go`) describe it, and from Istio's `TestHeadlessServices` /
`TestHeadlessServiceListenerShape` (sidecar_simulation_test.go), which assert the listener names.
"""

from __future__ import annotations

from typing import Any

import pytest

from diag.model.endpoints import EndpointSlice
from diag.model.loader import load_documents
from diag.model.resources import MeshConfig, OutboundTrafficPolicy
from diag.model.snapshot import Snapshot
from diag.predict.listeners import listeners_for_port
from diag.predict.scope import scope_for
from diag.predict.sidecar import Call, Source, predict

HOST = "db.default.svc.cluster.local"


def _service(ports: list[dict[str, Any]], name: str = "db", cluster_ip: str = "None") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"clusterIP": cluster_ip, "selector": {"app": name}, "ports": ports},
    }


def _slice(
    endpoints: list[dict[str, Any]],
    ports: list[dict[str, Any]],
    *,
    name: str = "db-abc",
    service: str = "db",
    namespace: str = "default",
    address_type: str = "IPv4",
) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": namespace, "labels": {"kubernetes.io/service-name": service}},
        "addressType": address_type,
        "endpoints": endpoints,
        "ports": ports,
    }


def _snapshot(docs: list[dict[str, Any]], mode: str = "REGISTRY_ONLY") -> Snapshot:
    loaded = load_documents(docs)
    assert [p for p in loaded.problems if p.level == "error"] == []
    return Snapshot.build(loaded.objects, MeshConfig(outbound=OutboundTrafficPolicy(mode=mode)))


TCP = [{"name": "tcp-db", "port": 5432}]
SOURCE = Source(namespace="default")


def _listener_names(snap: Snapshot, port: int, source: Source = SOURCE) -> set[str]:
    return {lst.name for lst in listeners_for_port(scope_for(snap, source), port).values()}


def test_endpoint_slice_is_loaded() -> None:
    loaded = load_documents([_slice([{"addresses": ["10.0.0.1", "10.0.0.2"]}], TCP)])
    slices = [o for o in loaded.objects if isinstance(o, EndpointSlice)]
    assert len(slices) == 1
    assert slices[0].service == "db"
    assert [e.address for e in slices[0].endpoints] == ["10.0.0.1", "10.0.0.2"]
    assert dict(slices[0].endpoints[0].ports) == {"tcp-db": 5432}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("endpoints", 5, "endpoints: expected a list"),
        ("endpoints", [{"addresses": "10.0.0.1"}], "endpoints[0].addresses"),
        ("ports", [{"name": "x", "port": "80"}], "ports[0].port"),
    ],
)
def test_malformed_slice_is_a_problem_not_a_crash(field: str, value: Any, message: str) -> None:
    doc = _slice([{"addresses": ["10.0.0.1"]}], TCP)
    doc[field] = value
    loaded = load_documents([doc])
    assert not [o for o in loaded.objects if isinstance(o, EndpointSlice)]
    assert any(message in str(p) for p in loaded.problems), [str(p) for p in loaded.problems]


def test_one_listener_per_endpoint_on_a_tcp_port() -> None:
    snap = _snapshot([_service(TCP), _slice([{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}], TCP)])
    assert _listener_names(snap, 5432) == {"10.0.0.1_5432", "10.0.0.2_5432"}
    pred = predict(snap, SOURCE, Call(host=HOST, port=5432, protocol="tcp", address="10.0.0.2"))
    assert pred.path.listener == "10.0.0.2_5432"
    assert pred.path.cluster == f"outbound|5432||{HOST}"
    assert pred.verdict == "allowed"


def test_address_outside_the_endpoints_is_not_the_service() -> None:
    snap = _snapshot([_service(TCP), _slice([{"addresses": ["10.0.0.1"]}], TCP)])
    pred = predict(snap, SOURCE, Call(host=HOST, port=5432, protocol="tcp", address="10.0.0.9"))
    assert pred.path.listener == "virtualOutbound"
    assert pred.path.cluster == "BlackHoleCluster"


def test_http_port_binds_the_wildcard_not_the_endpoints() -> None:
    ports = [{"name": "http-web", "port": 8080}]
    snap = _snapshot([_service(ports), _slice([{"addresses": ["10.0.0.1"]}], ports)])
    assert _listener_names(snap, 8080) == {"0.0.0.0_8080"}
    pred = predict(snap, SOURCE, Call(host=HOST, port=8080, protocol="http", address="10.0.0.1"))
    assert pred.path.route == "8080"
    assert pred.path.cluster == f"outbound|8080||{HOST}"


def test_auto_port_per_endpoint_listener_sniffs_http_to_host_port_route() -> None:
    ports = [{"name": "web", "port": 81}]
    snap = _snapshot([_service(ports), _slice([{"addresses": ["10.0.0.1"]}], ports)])
    pred = predict(snap, SOURCE, Call(host=HOST, port=81, protocol="http", address="10.0.0.1"))
    assert pred.path.listener == "10.0.0.1_81"
    assert pred.path.route == f"{HOST}:81"
    assert pred.path.cluster == f"outbound|81||{HOST}"


def test_listener_shape_with_a_clusterip_http_service_on_the_port() -> None:
    """TestHeadlessServiceListenerShape: 3 endpoint listeners plus the HTTP service's wildcard."""
    tcp = [{"name": "tcp", "port": 8080, "protocol": "TCP"}]
    docs = [
        _service(tcp, name="sts"),
        _slice([{"addresses": [f"10.0.0.{i}"]} for i in (1, 2, 3)], tcp, service="sts", name="sts"),
        _service([{"name": "http", "port": 8080}], name="web", cluster_ip="10.96.1.1"),
    ]
    names = _listener_names(_snapshot(docs), 8080)
    assert names == {"0.0.0.0_8080", "10.0.0.1_8080", "10.0.0.2_8080", "10.0.0.3_8080"}


def test_ports_join_by_name() -> None:
    ports = [{"name": "tcp-a", "port": 7000}, {"name": "tcp-b", "port": 7001}]
    slice_ports = [{"name": "tcp-a", "port": 7000}, {"name": "other", "port": 7001}]
    snap = _snapshot([_service(ports), _slice([{"addresses": ["10.0.0.1"]}], slice_ports)])
    assert _listener_names(snap, 7000) == {"10.0.0.1_7000"}
    assert _listener_names(snap, 7001) == set()
    scope = scope_for(snap, SOURCE)
    assert any("no endpoint serves port 7001" in n for n in scope.notes), scope.notes


def test_headless_service_without_slices_gets_no_listener() -> None:
    snap = _snapshot([_service(TCP)], mode="ALLOW_ANY")
    assert _listener_names(snap, 5432) == set()
    pred = predict(snap, SOURCE, Call(host=HOST, port=5432, protocol="tcp", address="10.0.0.1"))
    assert (pred.path.listener, pred.path.cluster) == ("virtualOutbound", "PassthroughCluster")


def test_not_ready_endpoint_keeps_its_listener_but_is_not_in_dns() -> None:
    endpoints: list[dict[str, Any]] = [
        {"addresses": ["10.0.0.1"], "conditions": {"ready": False}},
        {"addresses": ["10.0.0.2"]},
    ]
    snap = _snapshot([_service(TCP), _slice(endpoints, TCP)])
    assert _listener_names(snap, 5432) == {"10.0.0.1_5432", "10.0.0.2_5432"}
    # no address given: the name resolves to a ready endpoint (Kubernetes DNS / the DNS proxy)
    pred = predict(snap, SOURCE, Call(host=HOST, port=5432, protocol="tcp"))
    assert pred.path.listener == "10.0.0.2_5432"
    captured = Source(namespace="default", dns_capture=True)
    pred = predict(snap, captured, Call(host=HOST, port=5432, protocol="tcp"))
    assert pred.path.listener == "10.0.0.2_5432"
    assert pred.path.cluster == f"outbound|5432||{HOST}"


def test_the_proxys_own_address_gets_no_listener() -> None:
    endpoints = [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}]
    snap = _snapshot([_service(TCP), _slice(endpoints, TCP)])
    own = Source(namespace="default", pod_ips=("10.0.0.1",))
    assert _listener_names(snap, 5432, own) == {"10.0.0.2_5432"}


def test_slices_join_by_label_and_namespace_fqdn_ignored_duplicates_once() -> None:
    docs = [
        _service(TCP),
        _slice([{"addresses": ["10.0.0.1"]}], TCP, name="a"),
        _slice([{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}], TCP, name="b"),
        _slice([{"addresses": ["10.0.0.3"]}], TCP, name="c", namespace="other"),
        _slice([{"addresses": ["10.0.0.4"]}], TCP, name="d", service="not-db"),
        _slice([{"addresses": ["db.example.com"]}], TCP, name="e", address_type="FQDN"),
    ]
    snap = _snapshot(docs)
    assert _listener_names(snap, 5432) == {"10.0.0.1_5432", "10.0.0.2_5432"}
    svc = next(s for s in snap.mesh_services if s.host == HOST)
    assert [e.address for e in svc.slice_endpoints] == ["10.0.0.1", "10.0.0.2"]


def test_clusterip_service_is_unaffected_by_its_slices() -> None:
    snap = _snapshot([_service(TCP, cluster_ip="10.96.0.5"), _slice([{"addresses": ["10.0.0.1"]}], TCP)])
    assert _listener_names(snap, 5432) == {"10.96.0.5_5432"}


def test_tls_port_per_endpoint_chain_has_no_server_names() -> None:
    ports = [{"name": "tls", "port": 83}]
    snap = _snapshot([_service(ports), _slice([{"addresses": ["10.0.0.1"]}], ports)])
    pred = predict(snap, SOURCE, Call(host="db.default", port=83, protocol="tls", address="10.0.0.1"))
    assert (pred.path.listener, pred.path.filter_chain) == ("10.0.0.1_83", "{}")
    assert pred.path.cluster == f"outbound|83||{HOST}"


def _none_entry(selector: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "hosts": ["db.internal"],
        "location": "MESH_INTERNAL",
        "resolution": "NONE",
        "ports": [{"number": 5432, "name": "tcp", "protocol": "TCP"}],
    }
    if selector:
        spec["workloadSelector"] = {"labels": {"app": "db"}}
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": "db", "namespace": "default"},
        "spec": spec,
    }


def test_none_service_entry_without_endpoints_keeps_the_wildcard() -> None:
    assert _listener_names(_snapshot([_none_entry()]), 5432) == {"0.0.0.0_5432"}


def test_none_service_entry_with_workload_selector_is_noted() -> None:
    snap = _snapshot([_none_entry(selector=True)])
    assert _listener_names(snap, 5432) == set()
    assert any("workloadSelector" in n for n in scope_for(snap, SOURCE).notes)
