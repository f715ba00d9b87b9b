"""The parser's fast path for plain ServiceEntries, Services and Sidecars builds exactly what the
careful path builds (same values, same fields in the same order), and leaves everything it does
not handle — odd types, malformed fields, parts it does not model — to the careful path, so errors
stay the same."""

from __future__ import annotations

import copy
from dataclasses import fields, is_dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diag.model import parse as parse_module
from diag.model.parse import ParseError, parse_object
from diag.model.parse_plain import FIELDS, parse_plain
from diag.model.resources import Port, Service, ServiceEntry, Sidecar

META = {"name": "a", "namespace": "apps", "creationTimestamp": "2025-01-01T00:00:00Z"}
SE: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "ServiceEntry",
    "metadata": {**META, "labels": {"app": "x"}, "annotations": {"note": "y"}},
    "spec": {
        "hosts": ["a.example.com", "b.example.com"],
        "addresses": ["240.0.0.1"],
        "ports": [
            {"number": 443, "name": "tls", "protocol": "tls"},
            {"number": 80, "name": "http", "protocol": " HTTP ", "targetPort": 8080},
            {"number": 9000, "protocol": "bogus"},
            {"number": 9001},
        ],
        "location": "mesh_internal",
        "resolution": "DNS",
        "exportTo": ["."],
        "workloadSelector": {"labels": {"app": "db"}},
        "subjectAltNames": ["spiffe://x"],
        "endpoints": [
            {"address": "1.2.3.4", "ports": {"tls": 8443, "http": None}, "labels": {"v": "1"}, "weight": 2},
            {"address": "db.internal", "serviceAccount": "sa", "network": "n1"},
            {},
        ],
    },
    "status": {
        "addresses": [
            {"value": "240.240.0.1", "host": "A.example.com"},
            {"value": "2001:2::1", "host": "a.example.com"},
            {"value": "", "host": "b.example.com"},
            {"value": "240.240.0.2"},
        ]
    },
}
SERVICE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "svc"},
    "spec": {
        "type": "",
        "clusterIP": "10.96.0.1",
        "clusterIPs": ["10.96.0.1"],
        "ports": [
            {"port": 80, "name": "http-web", "targetPort": "web"},
            {"port": 53, "name": "dns", "protocol": "udp"},
            {"port": 3306, "name": "db", "targetPort": 3306},
            {"port": 8443, "name": "x", "appProtocol": "kubernetes.io/h2c", "protocol": "TCP"},
            {"port": 9090},
        ],
        "selector": {"app": "svc"},
    },
}
SIDECAR: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1beta1",
    "kind": "Sidecar",
    "metadata": {**META, "namespace": ""},
    "spec": {
        "workloadSelector": {"labels": {"app": "x"}},
        "egress": [{"hosts": ["./*", "istio-system/*"]}, {"bind": "127.0.0.1", "captureMode": " none "}, {}],
        "outboundTrafficPolicy": {},
        "ingress": [{"port": {"number": 80}}],
        "inboundConnectionPool": {},
    },
}
DOCS = {"se": SE, "service": SERVICE, "sidecar": SIDECAR}


def careful(doc: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """What `parse_object` gives without the fast path (an object, or the ParseError message)."""
    with monkeypatch.context() as patched:
        patched.setattr(parse_module, "parse_plain", lambda doc, origin: None)
        return outcome(doc)


def outcome(doc: Any) -> Any:
    try:
        return parse_object(doc, "f.json#document 1")
    except ParseError as exc:
        return ("ParseError", str(exc))
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        return (type(exc).__name__, str(exc))


def same(a: Any, b: Any) -> bool:
    """Equal values, and for dataclasses the same attributes in the same order, recursively."""
    if is_dataclass(a) and not isinstance(a, type):
        if type(a) is not type(b) or list(vars(a)) != list(vars(b)):
            return False
        return all(same(vars(a)[k], vars(b)[k]) for k in vars(a))
    if isinstance(a, tuple):
        return (
            isinstance(b, tuple) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
        )
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("name", sorted(DOCS))
def test_fast_path_builds_what_the_careful_path_builds(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = copy.deepcopy(DOCS[name])
    fast = parse_plain(doc, "f.json#document 1")
    assert fast is not None  # these shapes are the ones the fast path exists for
    slow = careful(doc, monkeypatch)
    assert same(fast, slow)
    assert fast.raw is doc


def test_fast_path_values() -> None:
    # Independent of the careful path: what the Istio conversions give for these ports.
    se = parse_plain(copy.deepcopy(SE), "x")
    assert isinstance(se, ServiceEntry)
    assert [p.protocol for p in se.ports] == ["TLS", "HTTP", "", ""]
    assert se.location == "MESH_INTERNAL"
    assert se.status_host_addresses == {"a.example.com": ("240.240.0.1", "2001:2::1"), "": ("240.240.0.2",)}
    svc = parse_plain(copy.deepcopy(SERVICE), "x")
    assert isinstance(svc, Service)
    assert svc.namespace == "default" and svc.type == "ClusterIP"
    assert [(p.protocol, p.target_port) for p in svc.ports] == [
        ("HTTP", None), ("UDP", None), ("TCP", 3306), ("HTTP2", None), ("", None),
    ]  # fmt: skip
    sc = parse_plain(copy.deepcopy(SIDECAR), "x")
    assert isinstance(sc, Sidecar)
    assert sc.outbound_traffic_policy is not None and sc.outbound_traffic_policy.mode == "REGISTRY_ONLY"
    assert [e.capture_mode for e in sc.egress] == ["", "NONE", ""] and sc.has_ingress


def test_every_field_is_set_in_field_order() -> None:
    se = parse_plain(copy.deepcopy(SE), "x")
    assert se is not None and list(vars(se)) == [f.name for f in fields(ServiceEntry)]
    assert list(vars(se.ports[0])) == list(FIELDS[Port])


# Values a field may hold in malformed or unusual input.
ODD_VALUES = (
    [None, 5, 1.5, True, "", " ", "x", "80", [], [1], ["a", 2], [{}], [None], {}, {"a": 1}, {1: "a"},
     {"number": 80}, {"labels": 5}, {"labels": {"a": "b"}}, [{"number": "80"}], [{"number": True}],
     [{"port": 80, "targetPort": 1.5}], [{"value": 5}], [{"address": "1.2.3.4"}], [{"port": {"number": 1}}],
     {"egressProxy": {"host": "h"}}, {"mode": 5}, "networking.istio.io", "v1", "apps/v1"]
)  # fmt: skip
ODD = st.sampled_from(ODD_VALUES)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            out += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += paths(item, (*prefix, i))
    return out


def mutate(doc: dict[str, Any], path: tuple[Any, ...], value: Any, drop: bool) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    node: Any = out
    for key in path[:-1]:
        node = node[key]
    if drop and isinstance(node, dict):
        del node[path[-1]]
    else:
        node[path[-1]] = copy.deepcopy(value)
    return out


@pytest.mark.parametrize("name", sorted(DOCS))
def test_fast_and_careful_paths_agree_on_every_single_change(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast_taken = 0
    for path in paths(DOCS[name]):
        for value in ODD_VALUES:
            for drop in (False, True):
                doc = mutate(DOCS[name], path, value, drop)
                fast = outcome(doc)
                assert same(fast, careful(doc, monkeypatch)), (path, value, drop)
                fast_taken += parse_plain(doc, "x") is not None
    assert fast_taken > 100  # the fast path itself was compared, not only the fallback


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fast_and_careful_paths_agree_on_malformed_input(
    data: st.DataObject, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = DOCS[data.draw(st.sampled_from(sorted(DOCS)))]
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths(doc)))
        doc = mutate(doc, path, data.draw(ODD), data.draw(st.booleans()))
    fast = outcome(doc)
    slow = careful(doc, monkeypatch)
    assert same(fast, slow)
    if isinstance(slow, tuple) and slow and slow[0] == "ParseError":
        assert parse_plain(doc, "x") is None  # errors always come from the careful path


@pytest.mark.parametrize(
    ("name", "path", "value"),
    [
        ("se", ("spec", "hosts"), 5),
        ("se", ("spec", "ports", 0, "number"), "443"),  # the careful path converts it
        ("se", ("spec", "endpoints", 0, "ports"), {"tls": "8443"}),  # the careful path converts it
        ("se", ("metadata", "labels"), {"a": 1}),
        ("service", ("spec", "ports", 0, "port"), None),
        ("sidecar", ("spec", "egress", 0, "port"), {"number": 80}),
        ("sidecar", ("spec", "outboundTrafficPolicy"), {"egressProxy": {"host": "h"}}),
        ("sidecar", ("apiVersion",), "networking.istio.io"),  # no version: not an Istio group
    ],
)
def test_unusual_input_takes_the_careful_path(name: str, path: tuple[Any, ...], value: Any) -> None:
    assert parse_plain(mutate(DOCS[name], path, value, False), "x") is None
