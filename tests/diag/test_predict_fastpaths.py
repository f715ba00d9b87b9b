"""The snapshot's and the prediction's fast paths give what the careful code gives.

Each fast path (building MeshServices without the dataclass `__init__`, splitting addresses in one
pass, sorting services by joined string keys, the unique-host scope shortcuts, the listener
shortcuts) is put beside the plain rule it stands for, on well-formed and odd input.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from diag.model.loader import load_documents
from diag.model.resources import Service, ServiceEntry
from diag.model.snapshot import MeshService, Snapshot, _convert, _indexes
from diag.predict.endpoints import binds_for
from diag.predict.listeners import ChainModel, ListenerModel, listeners_for_port
from diag.predict.scope import (
    ProxyScope,
    _append_primary,
    _dedupe_namespaces,
    _order_key,
    _pilot_order,
    scope_for,
)
from diag.predict.sidecar import Source

_ADDRESSES = (
    "10.0.0.1",
    "10.0.0.0/8",
    "10.0.0.1/32",
    "2001:db8::/32",
    "2001:db8::1/128",
    "2001:db8::1",
    "bad/x",
    "1.2.3.4/33",
    "host.example",
    "0.0.0.0/0",
)


def _se(name: str, hosts: list[str], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": name, "namespace": spec.pop("namespace", "ns")},
        "spec": {"hosts": hosts, "ports": [{"number": 443, "name": "tls", "protocol": "TLS"}], **spec},
    }


def test_converted_services_are_those_the_dataclass_init_builds() -> None:
    docs = [
        _se("two", ["A.example.com", "b.example.com"], addresses=["10.0.0.1", "10.1.0.0/16"],
            resolution="STATIC", endpoints=[{"address": "1.1.1.1"}], exportTo=["."]),
        _se("auto", ["c.example.com"], resolution="DNS"),
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "ns",
         "annotations": {"networking.istio.io/exportTo": "., other"}},
         "spec": {"clusterIP": "10.96.0.9", "ports": [{"port": 80, "name": "http"}]}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "bare", "namespace": "ns"},
         "spec": {"ports": [{"port": 80, "name": "http"}]}},
    ]  # fmt: skip
    objects = load_documents(docs).objects
    entries = tuple(o for o in objects if isinstance(o, ServiceEntry))
    services = tuple(o for o in objects if isinstance(o, Service))
    built = _convert(entries, services, "cluster.local")
    se = entries[0]
    expected = [
        MeshService(host=h, namespace="ns", ports=se.ports, resource=se, addresses=(a,), resolution="STATIC",
                    location=se.location, export_to=(".",), endpoints=se.endpoints, index=i)
        for i, h in enumerate(("a.example.com", "b.example.com"))
        for a in ("10.0.0.1", "10.1.0.0/16")
    ]  # fmt: skip
    assert [vars(s) for s in built[:4]] == [vars(s) for s in expected]
    assert [repr(s) for s in built[:4]] == [repr(s) for s in expected]
    assert built[4].host == "c.example.com" and built[4].resolution == "DNS" and built[4].addresses == ()
    web, bare = built[5], built[6]
    assert (web.host, web.addresses, web.export_to, web.location) == (
        "web.ns.svc.cluster.local",
        ("10.96.0.9",),
        (".", "other"),
        "MESH_INTERNAL",
    )
    assert bare.assumed_address and bare.addresses[0].startswith("198.")
    expected_web = MeshService(
        host="web.ns.svc.cluster.local", namespace="ns", ports=services[0].ports, resource=services[0],
        addresses=("10.96.0.9",), resolution="STATIC", location="MESH_INTERNAL", export_to=(".", "other"),
        external_name="", headless=False, slice_endpoints=(), assumed_address=False,
    )  # fmt: skip
    assert vars(web) == vars(expected_web)
    for svc in built:
        assert set(vars(svc)) == {f.name for f in dataclasses.fields(MeshService)}
        assert dataclasses.replace(svc).host == svc.host  # behaves as any dataclass instance
        assert svc != dataclasses.replace(svc)  # eq=False: identity, as before


def _plain_indexes(services: list[MeshService]) -> dict[str, Any]:
    """The address indexes from the MeshService properties, one service at a time."""
    addrs: dict[str, list[MeshService]] = {}
    for svc in services:
        for ip in (*svc.ip_addresses, *svc.auto_addresses):
            addrs.setdefault(ip, []).append(svc)
    return {
        "by_address": {k: tuple(v) for k, v in addrs.items()},
        "cidr_services": tuple(s for s in services if s.cidr_addresses),
    }


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.sampled_from(_ADDRESSES), max_size=3),
            st.lists(st.sampled_from(_ADDRESSES[:3]), max_size=2),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_address_index_matches_the_properties(shapes: list[tuple[list[str], list[str]]]) -> None:
    se = ServiceEntry(namespace="ns", name="se")
    services = [
        MeshService(host=f"h{i}.example", namespace="ns", ports=(), resource=se, addresses=tuple(a),
                    auto_addresses=tuple(auto))
        for i, (a, auto) in enumerate(shapes)
    ]  # fmt: skip
    index = _indexes(services)
    plain = _plain_indexes(services)
    assert list(index["by_address"].items()) == list(plain["by_address"].items())
    assert index["cidr_services"] == plain["cidr_services"]
    for svc in services:  # the properties agree with ipaddress itself
        for a in svc.cidr_addresses:
            net = ipaddress.ip_network(a, strict=False)
            assert net.prefixlen != net.max_prefixlen


_PARTS = st.sampled_from(["", "a", "a\0", "a\0b", "ab", "b", "\0", "2025-01-01T00:00:00Z", "é"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_PARTS, _PARTS, _PARTS, st.booleans(), st.booleans()), max_size=12))
def test_pilot_order_is_the_order_key_sort(rows: list[tuple[str, str, str, bool, bool]]) -> None:
    services = []
    for created, name, namespace, k8s, no_time in rows:
        kind = Service if k8s else ServiceEntry
        res = kind(namespace=namespace, name=name, created=None if no_time else created)
        services.append(MeshService(host=name + "h", namespace=namespace, ports=(), resource=res))
    order = [services[i] for i in _pilot_order(tuple(services))]
    assert order == sorted(services, key=_order_key)


def _scan_dedupe(services: list[MeshService], namespace: str) -> list[MeshService]:
    """Per hostname one namespace: the proxy's own, else a Kubernetes Service's, else the first."""
    keep: dict[str, str] = {}
    for host in dict.fromkeys(s.host for s in services):
        same = [s for s in services if s.host == host]
        own = [s for s in same if s.namespace == namespace]
        k8s = [s for s in same if s.kind == "Service"]
        keep[host] = (own or k8s or same)[0].namespace
    return [s for s in services if keep[s.host] == s.namespace]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from("abc"), st.sampled_from(["me", "x", "y"]), st.booleans()), max_size=10
    ),
    st.booleans(),
)
def test_dedupe_namespaces_matches_a_scan(rows: list[tuple[str, str, bool]], unique: bool) -> None:
    if unique:
        rows = list({host: (host, ns, k8s) for host, ns, k8s in rows}.values())
    services = [
        MeshService(host=f"{h}.example", namespace=ns, ports=(), resource=(Service if k8s else ServiceEntry)(
            namespace=ns, name=h))
        for h, ns, k8s in rows
    ]  # fmt: skip
    assert _dedupe_namespaces(services, "me") == _scan_dedupe(services, "me")


def _mesh(entries: list[dict[str, Any]]) -> Snapshot:
    return Snapshot.build(load_documents(entries).objects)


def test_unique_host_scope_is_the_one_append_primary_builds() -> None:
    snapshot = _mesh([
        _se("one", ["a.example.com"], resolution="DNS"),
        _se("two", ["b.example.com", "b2.example.com"], resolution="DNS",
            ports=[{"number": 443, "name": "tls", "protocol": "TLS"},
                   {"number": 80, "name": "h", "protocol": "HTTP"}]),
        _se("wild", ["*.wild.example.com"], resolution="NONE"),
        _se("three", ["c.example.com"], addresses=["10.0.0.3"], resolution="STATIC",
            endpoints=[{"address": "1.1.1.1"}], namespace="other"),
    ])  # fmt: skip
    scope = scope_for(snapshot, Source(namespace="ns"))
    careful = ProxyScope(snapshot=snapshot, source=scope.source, sidecar=None, mode=scope.mode,
                         dns_capture=False, uses_auto_ips=False)  # fmt: skip
    for svc in scope.services:
        _append_primary(careful, svc)
    assert scope.primary == careful.primary and scope.primary_ports == careful.primary_ports
    assert scope.by_host == {s.host: [s] for s in scope.services}
    assert len(scope.primary) == 5 and scope.primary_ports["b.example.com"] == {443, 80}
    assert [s.host for s in scope.wildcard_primary["wild.example.com"]] == ["*.wild.example.com"]


def test_listener_shortcuts_match_binds_for_and_conflict_keys() -> None:
    snapshot = _mesh([
        _se("plain", ["a.example.com"], addresses=["10.0.0.1"], resolution="STATIC",
            endpoints=[{"address": "1.1.1.1"}]),
        _se("host32", ["b.example.com"], addresses=["10.0.0.2/32"], resolution="STATIC",
            endpoints=[{"address": "1.1.1.2"}]),
        _se("range", ["c.example.com"], addresses=["10.9.0.0/16"], resolution="STATIC",
            endpoints=[{"address": "1.1.1.3"}]),
        _se("dns", ["d.example.com"], resolution="DNS"),
        _se("none", ["e.example.com"], resolution="NONE"),
        _se("dup", ["d.example.com", "f.example.com"], resolution="DNS", namespace="other"),
    ])  # fmt: skip
    scope = scope_for(snapshot, Source(namespace="ns"))
    listeners = listeners_for_port(scope, 443)
    expected: dict[str, list[str]] = {}
    for svc in scope.by_port[443]:
        port = svc.ports[0]
        for bind, _ in binds_for(scope, svc, port, port.family):
            expected.setdefault(bind, []).append(svc.host)
    assert {b: [s.host for s in ls.services] for b, ls in listeners.items()} == expected
    for listener in listeners.values():
        assert listener.keys == {c.conflict_key() for c in listener.chains}
        for chain in listener.chains:
            assert type(chain) is ChainModel
            assert chain == ChainModel(
                sni=chain.sni, cidrs=chain.cidrs, cluster=chain.cluster, service=chain.service
            )
    wildcard = listeners["0.0.0.0"]
    assert [c.sni for c in wildcard.chains] == [("c.example.com",), ("d.example.com",), ("e.example.com",),
                                                ("f.example.com",)]  # fmt: skip
    assert wildcard.chains[0].cidrs == ("10.9.0.0/16",)
    assert listeners["10.0.0.2"].chains[0].cluster == "outbound|443||b.example.com"


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.sampled_from(["a.example", "*", "*.example", "b.example"]), max_size=3),
            st.lists(st.sampled_from(["10.0.0.0/8", "0.0.0.0/0", "10.1.0.0/16"]), max_size=2),
            st.sampled_from(["", "tls", "raw_buffer"]),
        ),
        max_size=8,
    ),
    st.booleans(),
)
def test_add_chain_keys_are_conflict_keys(rows: list[tuple[list[str], list[str], str]], dedupe: bool) -> None:
    listener = ListenerModel(bind="0.0.0.0", port=443, protocol="TLS")
    kept: list[ChainModel] = []
    for sni, cidrs, transport in rows:
        chain = ChainModel(sni=tuple(sni), cidrs=tuple(cidrs), transport=transport)
        if not (dedupe and any(c.conflicts_with(chain) for c in kept)):
            kept.append(chain)
        listener.add_chain(chain, dedupe=dedupe)
    assert listener.chains == kept
    assert listener.keys == {c.conflict_key() for c in kept}
