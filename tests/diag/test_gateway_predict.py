"""The egress-gateway hop (`diag.predict.gateway`) for each setup of Istio's egress-gateway tasks
(testdata/gateway: HTTP, HTTPS passthrough, TLS origination at the gateway, TCP) and each fault."""

from __future__ import annotations

from pathlib import Path

import pytest

from diag.model.loader import load_text
from diag.model.snapshot import Snapshot
from diag.predict.gateway import gateway_for_cluster, predict_gateway, with_gateway
from diag.predict.gateway_model import GatewayHop
from diag.predict.model import Call, Source
from diag.predict.sidecar import predict

DATA = Path(__file__).parent / "testdata" / "gateway"
GW = "istio-egressgateway.istio-system.svc.cluster.local"
HTTP = Call(host="api.example.com", port=80, protocol="http")
HTTPS = Call(host="api.example.com", port=443, protocol="https")
TCP = Call(host="db.example.com", port=5432, protocol="tcp", address="192.0.2.10")
SETUP = {"http.yaml": HTTP, "https-passthrough.yaml": HTTPS, "tls-origination.yaml": HTTP, "tcp.yaml": TCP}


def hop_for(
    name: str,
    *changes: tuple[str, str],
    extra: str = "",
    common: bool = True,
    account: str | None = "sleep",
    call: Call | None = None,
) -> GatewayHop | None:
    """The gateway hop of the setup `name` with each (old, new) text change applied."""
    text = (DATA / name).read_text()
    for old, new in changes:
        assert old in text, old
        text = text.replace(old, new)
    if common:
        text = (DATA / "common.yaml").read_text() + "\n---\n" + text
    loaded = load_text(text + extra, name)
    assert not [p for p in loaded.problems if p.level == "error"], loaded.problems
    snap = Snapshot.build(loaded.objects, loaded.mesh)
    source = Source(
        namespace="apps", labels={"app": "sleep"}, mode_override="REGISTRY_ONLY", service_account=account
    )
    call = call or SETUP[name]
    return with_gateway(snap, source, call, predict(snap, source, call)).gateway


@pytest.mark.parametrize(
    ("name", "listener", "chain", "route", "vhost", "cluster", "tls"),
    [
        (
            "http.yaml",
            "0.0.0.0_8080",
            None,
            "http.8080",
            "api.example.com:80",
            "outbound|80||api.example.com",
            ("DISABLE", ""),
        ),
        (
            "https-passthrough.yaml",
            "0.0.0.0_8443",
            "{server_names=api.example.com}",
            None,
            None,
            "outbound|443||api.example.com",
            ("DISABLE", "PASSTHROUGH"),
        ),
        (
            "tls-origination.yaml",
            "0.0.0.0_8080",
            None,
            "https.80.https-port-for-tls-origination.egress.istio-system",
            "api.example.com:80",
            "outbound|443||api.example.com",
            ("ISTIO_MUTUAL", "ISTIO_MUTUAL"),
        ),
        ("tcp.yaml", "0.0.0.0_9000", "{}", None, None, "outbound|5432||db.example.com", ("DISABLE", "")),
    ],
)
def test_each_task_goes_through_the_gateway(
    name: str,
    listener: str,
    chain: str | None,
    route: str | None,
    vhost: str | None,
    cluster: str,
    tls: tuple[str, str],
) -> None:
    hop = hop_for(name)
    assert hop is not None
    assert (hop.verdict, hop.reason, hop.inferred) == ("allowed", "", False)
    assert (hop.gateway, hop.service) == ("istio-egressgateway.istio-system", GW)
    assert (hop.listener, hop.filter_chain, hop.route, hop.vhost, hop.cluster) == (
        listener,
        chain,
        route,
        vhost,
        cluster,
    )
    assert (hop.sidecar_tls, hop.server_tls) == tls
    assert hop.gateway_ref == "Gateway istio-system/egress"
    assert hop.mesh_virtual_service == hop.virtual_service  # one VS bound to mesh and the gateway
    assert hop.virtual_service is not None and hop.virtual_service.startswith("VirtualService apps/")


def test_tls_origination_at_the_gateway_is_noted() -> None:
    hop = hop_for("tls-origination.yaml")
    assert hop is not None
    assert any("originates TLS (SIMPLE)" in n and "originate-tls-for-api" in n for n in hop.notes)


def test_a_direct_path_has_no_gateway_hop() -> None:
    changed = ("gateways: [istio-system/egress, mesh]", "gateways: [istio-system/egress]")
    assert hop_for("http.yaml", changed) is None


# ---- faults on the sidecar→gateway leg ----------------------------------------------------------


def test_subset_without_its_destination_rule_is_503_nc_at_the_sidecar() -> None:
    hop = hop_for("http.yaml", ("subsets: [{name: api}]", "subsets: [{name: other}]"))
    assert hop is not None
    assert (hop.reason, hop.signature, hop.origin) == (
        "subset-missing",
        "ENVOY_503_NO_CLUSTER",
        "local-sidecar",
    )
    assert hop.destination_rule == "DestinationRule apps/egressgateway-for-api"
    assert "subset 'api'" in hop.message


def test_gateway_port_not_on_its_service() -> None:
    changes = (
        (
            "port: {number: 80}}}]\n  - match: [{gateways: [istio-system/egress]",
            "port: {number: 81}}}]\n  - match: [{gateways: [istio-system/egress]",
        ),
    )
    hop = hop_for("http.yaml", *changes)
    assert hop is not None
    assert (hop.port, hop.reason) == (81, "port-not-on-service")
    assert "Service istio-system/istio-egressgateway has no port 81" in hop.message


def test_no_server_on_the_port() -> None:
    hop = hop_for(
        "http.yaml",
        ("port: {number: 80, name: http, protocol: HTTP}", "port: {number: 443, name: http, protocol: HTTP}"),
    )
    assert hop is not None
    assert (hop.reason, hop.signature, hop.origin) == ("no-server", "ENVOY_503_UPSTREAM", "local-sidecar")


def test_sidecar_sends_mtls_to_a_plaintext_server() -> None:
    dr = ("subsets: [{name: api}]", "subsets: [{name: api}]\n  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}")
    hop = hop_for("http.yaml", dr)
    assert hop is not None
    assert (hop.reason, hop.sidecar_tls, hop.server_tls) == ("tls-mismatch", "ISTIO_MUTUAL", "")
    assert hop.destination_rule == "DestinationRule apps/egressgateway-for-api"
    assert hop.gateway_ref == "Gateway istio-system/egress"


def test_istio_mutual_server_without_mtls_from_the_sidecar() -> None:
    hop = hop_for(
        "tls-origination.yaml", ("tls: {mode: ISTIO_MUTUAL, sni: api.example.com}", "tls: {mode: DISABLE}")
    )
    assert hop is not None
    assert (hop.reason, hop.signature, hop.origin) == ("tls-mismatch", "ENVOY_503_UPSTREAM", "local-sidecar")
    assert "expects Istio mTLS" in hop.message


def test_istio_mutual_without_sni_sends_the_cluster_sni() -> None:
    hop = hop_for(
        "tls-origination.yaml",
        ("tls: {mode: ISTIO_MUTUAL, sni: api.example.com}", "tls: {mode: ISTIO_MUTUAL}"),
    )
    assert hop is not None
    assert hop.reason == "tls-mismatch"
    assert f"outbound_.80_.api_.{GW}" in hop.message


# ---- faults at the gateway -----------------------------------------------------------------------


def test_host_not_on_the_gateway_is_404_nr_relayed() -> None:
    hop = hop_for(
        "http.yaml",
        (
            "hosts: [api.example.com]\n---\napiVersion: networking.istio.io/v1\nkind: Destination",
            "hosts: [other.example.com]\n---\napiVersion: networking.istio.io/v1\nkind: Destination",
        ),
    )
    assert hop is not None
    # no VS host on the port's servers: one `blackhole:<port>` vhost without routes (gateway.go)
    assert (hop.reason, hop.vhost, hop.route) == ("no-route", "blackhole:80", "http.8080")
    assert (hop.signature, hop.origin) == ("ENVOY_404_NR", "via-route")


def test_host_outside_every_virtual_host_is_no_vhost() -> None:
    hop = hop_for(
        "http.yaml",
        ("    hosts: [api.example.com]\n---", "    hosts: [www.example.com]\n---"),
        (
            "spec:\n  hosts: [api.example.com]\n  gateways",
            "spec:\n  hosts: [api.example.com, www.example.com]\n  gateways",
        ),
    )
    assert hop is not None
    assert (hop.reason, hop.vhost, hop.signature) == ("no-vhost", None, "ENVOY_404_NR")


def test_wildcard_virtual_service_takes_the_server_host() -> None:
    """`host.Names.Intersection`: a VS for `*` on a server for api.example.com is vhost api.example.com."""
    extra = """
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: any-host, namespace: apps}
spec:
  hosts: ['*']
  gateways: [istio-system/egress]
  http:
  - route: [{destination: {host: api.example.com, port: {number: 80}}}]
"""
    only_mesh = ("gateways: [istio-system/egress, mesh]", "gateways: [mesh]")
    hop = hop_for("http.yaml", only_mesh, extra=extra)
    assert hop is not None
    assert (hop.vhost, hop.reason, hop.virtual_service) == (
        "api.example.com:80",
        "",
        "VirtualService apps/any-host",
    )


def test_every_gateway_on_the_port_and_every_vs_of_the_host_count() -> None:
    """Plaintext HTTP servers of every Gateway share `http.<port>`; a host's vhost holds the routes of
    every VS bound to it, in order (gateway.go `vHostDedupMap`)."""
    extra = """
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: egress-more, namespace: istio-system}
spec:
  selector: {istio: egressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [www.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a-www-v2, namespace: apps}
spec:
  hosts: [api.example.com, www.example.com]
  gateways: [istio-system/egress-more, istio-system/egress]
  http:
  - match: [{uri: {prefix: /v2}}]
    route: [{destination: {host: api.example.com, subset: v2, port: {number: 80}}}]
"""
    v2 = Call(host="api.example.com", port=80, protocol="http", path="/v2/x")
    hop = hop_for("http.yaml", extra=extra, call=v2)
    assert hop is not None
    assert (
        hop.virtual_service == "VirtualService apps/a-www-v2"
        and hop.cluster == "outbound|80|v2|api.example.com"
    )
    www = hop_for(
        "http.yaml", extra=extra, call=Call(host="www.example.com", port=80, protocol="http", path="/v2")
    )
    assert www is None  # the sidecar has no mesh route to the gateway for www.example.com


def test_server_namespace_restricts_the_virtual_services() -> None:
    hop = hop_for(
        "http.yaml", ("    hosts: [api.example.com]\n---", "    hosts: [shop/api.example.com]\n---")
    )
    assert hop is not None and (hop.reason, hop.vhost) == ("no-route", "blackhole:80")
    ok = hop_for("http.yaml", ("    hosts: [api.example.com]\n---", "    hosts: [apps/api.example.com]\n---"))
    assert ok is not None and ok.reason == ""


def test_no_gateway_route_for_the_request() -> None:
    hop = hop_for(
        "http.yaml",
        (
            "match: [{gateways: [istio-system/egress], port: 80}]",
            "match: [{gateways: [istio-system/egress], port: 80, uri: {prefix: /v2}}]",
        ),
    )
    assert hop is not None
    assert (hop.reason, hop.vhost, hop.signature) == ("no-route", "api.example.com:80", "ENVOY_404_NR")


def test_resolution_none_behind_the_gateway_has_no_endpoints() -> None:
    hop = hop_for("http.yaml", ("resolution: DNS", "resolution: NONE"))
    assert hop is not None
    assert (hop.reason, hop.destination) == ("no-endpoints", "ServiceEntry apps/api")
    assert (hop.signature, hop.origin) == ("ENVOY_503_UPSTREAM", "via-route")


def test_gateway_route_to_an_unknown_host_is_503_nc_relayed() -> None:
    hop = hop_for(
        "http.yaml",
        (
            "route: [{destination: {host: api.example.com, port: {number: 80}}}]",
            "route: [{destination: {host: nowhere.example.com, port: {number: 80}}}]",
        ),
    )
    assert hop is not None
    assert (hop.reason, hop.signature, hop.origin) == ("no-cluster", "ENVOY_503_NO_CLUSTER", "via-route")


def test_passthrough_without_a_tls_route_for_the_sni_is_a_reset() -> None:
    changed = (
        "match: [{gateways: [istio-system/egress], port: 443, sniHosts: [api.example.com]}]",
        "match: [{gateways: [istio-system/egress], port: 443, sniHosts: [other.example.com]}]",
    )
    hop = hop_for("https-passthrough.yaml", changed)
    assert hop is not None
    assert (hop.reason, hop.signature, hop.origin) == ("no-filter-chain", "RESET_BEFORE_RESPONSE", None)


def test_http_to_a_passthrough_server_is_a_mismatch() -> None:
    server = (
        "  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [api.example.com]\n",
        "  - port: {number: 80, name: tls, protocol: TLS}\n    hosts: [api.example.com]\n"
        "    tls: {mode: PASSTHROUGH}\n",
    )
    hop = hop_for("http.yaml", server)
    assert hop is not None
    assert (hop.reason, hop.server_tls, hop.signature) == (
        "tls-mismatch",
        "PASSTHROUGH",
        "ENVOY_503_UPSTREAM",
    )


def test_tcp_without_a_gateway_tcp_route_closes() -> None:
    hop = hop_for(
        "tcp.yaml",
        (
            "match: [{gateways: [istio-system/egress], port: 9000}]",
            "match: [{gateways: [istio-system/egress], port: 9001}]",
        ),
    )
    assert hop is not None
    # a TCP server without routes leaves a listener without filter chains: pilot drops it
    assert (hop.reason, hop.listener, hop.signature) == ("no-server", None, "TCP_CLOSED_AFTER_CONNECT")


# ---- inferred gateways ---------------------------------------------------------------------------


def test_without_the_service_the_default_gateway_is_inferred() -> None:
    hop = hop_for("http.yaml", common=False)
    assert hop is not None
    assert (hop.inferred, hop.verdict, hop.listener) == (True, "allowed", "0.0.0.0_80")


def test_without_any_gateway_object_the_verdict_is_unknown() -> None:
    cut = (DATA / "http.yaml").read_text().split("---")
    text = "---".join(doc for doc in cut if "kind: Gateway" not in doc)
    loaded = load_text(text)
    snap = Snapshot.build(loaded.objects, loaded.mesh)
    source = Source(namespace="apps", mode_override="REGISTRY_ONLY")
    hop = with_gateway(snap, source, HTTP, predict(snap, source, HTTP)).gateway
    assert hop is not None
    assert (hop.inferred, hop.verdict) == (True, "unknown")


def test_predict_gateway_finds_the_cluster_itself() -> None:
    loaded = load_text((DATA / "common.yaml").read_text() + "\n---\n" + (DATA / "http.yaml").read_text())
    snap = Snapshot.build(loaded.objects, loaded.mesh)
    source = Source(namespace="apps", mode_override="REGISTRY_ONLY")
    gateway = gateway_for_cluster(snap, f"outbound|80|api|{GW}")
    assert gateway is not None and gateway.gateways == ("Gateway istio-system/egress",)
    hop = predict_gateway(snap, gateway, HTTP, source)
    assert (hop.subset, hop.cluster, hop.mesh_virtual_service) == (
        "api",
        "outbound|80||api.example.com",
        "VirtualService apps/api-through-egress",
    )
    assert gateway_for_cluster(snap, "outbound|80||api.example.com") is None


def test_a_gateway_under_another_name_is_found_by_its_gateway_selector() -> None:
    text = """
apiVersion: v1
kind: Service
metadata: {name: edge, namespace: egress}
spec:
  clusterIP: 10.96.0.60
  selector: {app: edge-proxy}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge, namespace: egress}
spec:
  selector: {app: edge-proxy}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [api.example.com]}]
---
apiVersion: v1
kind: Service
metadata: {name: shop, namespace: apps}
spec:
  clusterIP: 10.96.0.70
  selector: {app: shop}
  ports: [{name: http, port: 80}]
"""
    loaded = load_text(text)
    snap = Snapshot.build(loaded.objects, loaded.mesh)
    edge = gateway_for_cluster(snap, "outbound|80||edge.egress.svc.cluster.local")
    assert edge is not None
    assert (edge.name, edge.gateways, edge.ports, edge.inferred) == (
        "edge.egress",
        ("Gateway egress/edge",),
        {80: 8080},
        False,
    )
    assert gateway_for_cluster(snap, "outbound|80||shop.apps.svc.cluster.local") is None
    assert gateway_for_cluster(snap, "PassthroughCluster") is None
