"""The validation and unknown-field fast paths agree with the careful checks they short-cut:
`validate` returns exactly the careful path's messages, and `apischema.unknown_fields` exactly the
careful walk's fields, on well-formed and malformed input."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diag.model import apischema, kubeyaml
from diag.model.loader import load_paths
from diag.model.parse import ParseError, parse_object
from diag.model.resources import Resource, ServiceEntry, Sidecar
from diag.model.validation import validate
from diag.model.validation_fast import IPV4, IPV4_CIDR, service_entry_clean, sidecar_clean
from diag.model.validation_rules import service_entry_issues, sidecar_issues

TESTS = Path(__file__).parents[1]
YAML_FILES = sorted(TESTS.rglob("*.yaml"))


def _careful(obj: Resource) -> list[tuple[str, str, str]]:
    if isinstance(obj, ServiceEntry):
        return list(service_entry_issues(obj))
    assert isinstance(obj, Sidecar)
    return list(sidecar_issues(obj))


def _fast(obj: Resource) -> bool:
    if isinstance(obj, ServiceEntry):
        return service_entry_clean(obj)
    assert isinstance(obj, Sidecar)
    return sidecar_clean(obj)


def _agrees(obj: Resource) -> bool:
    """validate(obj) is the careful path's findings; returns whether the fast path accepted it."""
    careful = _careful(obj)
    assert [(m.level, m.field, m.message) for m in validate(obj)] == careful
    fast = _fast(obj)
    assert not (fast and careful), careful
    return fast


def test_fast_path_agrees_on_the_test_corpus() -> None:
    fast = slow = 0
    for path in YAML_FILES:
        for obj in load_paths([path]).objects:
            if isinstance(obj, ServiceEntry | Sidecar):
                if _agrees(obj):
                    fast += 1
                else:
                    slow += 1
    assert fast > 20 and slow > 20, (fast, slow)  # both paths are exercised


def _doc(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    meta = {"name": "x", "namespace": "ns"}
    return {"apiVersion": "networking.istio.io/v1", "kind": kind, "metadata": meta, "spec": spec}


def _mostly(good: list[Any], bad: list[Any]) -> st.SearchStrategy[Any]:
    """Mostly well-formed values, so that whole objects often take the fast path."""
    return st.sampled_from(good * 4 + bad)


HOSTS = _mostly(
    ["a.example.com", "*.example.com", "B-2.example.org."],
    ["*", "api", "a..b", "*x.example.com", "1.2.3.4", "ex.123", "-a.com", "", "a" * 64 + ".com"],
)
ADDRESSES = _mostly(
    ["10.0.0.1", "10.0.0.0/24", "192.168.255.0/32"],
    ["10.0.0.0/33", "010.0.0.1", "256.1.1.1", "::1", "fd00::/8", "1.2.3", "1.2.3.4/8/8", "x", ""],
)
PORT_NAMES = _mostly(["http", "tls", "tcp-db"], ["", "Bad_Name", "-x"])
PORT = st.fixed_dictionaries(
    {"number": _mostly([80, 443, 8080, 65535], [0, 65536]), "name": PORT_NAMES},
    optional={"protocol": _mostly(["HTTP", "TLS", "TCP", "tcp", "MONGO"], ["FOO", ""]),
              "targetPort": _mostly([8443], [0, 70000])},
)  # fmt: skip
ENDPOINT = st.fixed_dictionaries(
    {"address": _mostly(["172.16.0.1", "a.example.com"], ["unix:///s", "", "1.2.3.04", "bad_host", "::1"])},
    optional={"ports": st.dictionaries(PORT_NAMES, _mostly([80, 443], [0, 70000]), max_size=2),
              "labels": _mostly([{}], [{"app": "v"}, {"bad key": "v"}]),
              "network": _mostly([""], ["n1"])},
)  # fmt: skip
SELECTOR = st.dictionaries(_mostly(["app", "tier"], ["", "a*"]), _mostly(["v"], ["*", ""]), max_size=2)
EXPORT_TO = st.lists(_mostly([".", "ns", "other", "team-a"], ["*", "~", "Bad_NS", ""]), max_size=3)
SERVICE_ENTRY = st.fixed_dictionaries(
    {"hosts": st.lists(HOSTS, max_size=3)},
    optional={"addresses": st.lists(ADDRESSES, max_size=2), "ports": st.lists(PORT, max_size=3),
              "resolution": _mostly(["NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN"], ["DYNAMIC_DNS"]),
              "endpoints": st.lists(ENDPOINT, max_size=2), "exportTo": EXPORT_TO,
              "workloadSelector": _mostly([None], [{"labels": {"app": "v"}}, {"labels": {}}])},
)  # fmt: skip
EGRESS_HOSTS = _mostly(
    ["./*", "istio-system/*", "ns/a.example.com", "*/x.com", "~/*"],
    ["a", "ns/*x.com", "Bad_NS/*", "/x", "ns/"],
)
EGRESS = st.fixed_dictionaries(
    {"hosts": st.lists(EGRESS_HOSTS, max_size=3)},
    optional={"port": _mostly([None], [{"number": 80, "name": "http"}]), "bind": st.sampled_from(["", "x"])},
)  # fmt: skip
SIDECAR = st.fixed_dictionaries(
    {"egress": st.lists(EGRESS, max_size=2)},
    optional={"ingress": _mostly([[]], [[{"port": {"number": 80}}]]),
              "inboundConnectionPool": _mostly([None], [{"tcp": {"maxConnections": 1}}, {}]),
              "outboundTrafficPolicy": st.fixed_dictionaries(
                  {"mode": _mostly(["ALLOW_ANY", "REGISTRY_ONLY"], ["ALLOW_ANY_DYNAMIC_DNS", "OTHER"])},
                  optional={"egressProxy": st.just({"host": "proxy.example.com", "port": {"number": 3128}})}),
              "workloadSelector": st.fixed_dictionaries({"labels": SELECTOR})},
)  # fmt: skip


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(SERVICE_ENTRY.map(lambda s: _doc("ServiceEntry", s)), SIDECAR.map(lambda s: _doc("Sidecar", s)))
)
def test_fast_path_agrees_on_generated_objects(doc: dict[str, Any]) -> None:
    try:
        obj = parse_object(doc, "gen.yaml#1")
    except ParseError:
        return
    assert obj is not None
    _agrees(obj)


BASE_SE = {"hosts": ["a.example.com"], "ports": [{"number": 443, "name": "tls", "protocol": "TLS"}],
           "resolution": "DNS", "exportTo": ["."]}  # fmt: skip
STATIC = {"resolution": "STATIC", "endpoints": [{"address": "172.16.0.1"}]}
# (spec changes to BASE_SE, whether the object is well-formed and of a shape the fast path takes)
SE_CHANGES = [
    ({}, True),
    ({"exportTo": [".", "other"]}, True),
    ({"exportTo": ["ns", "other", "team-a"]}, True),
    ({"exportTo": ["*"]}, True),
    ({"exportTo": ["~"]}, True),
    ({"exportTo": [".", "ns"]}, False),  # the same namespace twice
    ({"exportTo": ["other", "other"]}, False),
    ({"exportTo": [".", "*"]}, False),
    ({"exportTo": [".", "~"]}, False),
    ({"exportTo": ["Bad_NS"]}, False),
    ({"hosts": ["a.example.com", "b.example.com"]}, True),  # TLS ports: several hosts allowed
    ({"hosts": ["a.example.com", "b.example.com"], "ports": [{"number": 5432, "name": "tcp"}]}, False),
    ({"hosts": ["*.example.com"]}, False),  # DNS without endpoints needs FQDNs
    ({"hosts": ["*.example.com"], "resolution": "NONE"}, True),
    ({"hosts": ["*"], "resolution": "NONE"}, False),
    ({"hosts": []}, False),
    ({"addresses": ["10.0.0.0/24"]}, False),  # a CIDR needs NONE or STATIC
    ({"addresses": ["10.0.0.0/24"], "resolution": "NONE"}, True),
    ({"addresses": ["2001:db8::1"]}, False),  # valid, but IPv6 is left to the careful path
    ({"ports": [{"number": 443, "name": "tls"}, {"number": 443, "name": "tls2"}]}, False),
    ({"ports": [{"number": 443, "name": "tls"}, {"number": 8443, "name": "tls"}]}, False),
    ({"ports": [{"number": 443, "name": "tls", "targetPort": 70000}]}, False),
    ({"ports": [{"number": 443, "name": "tls", "protocol": "FOO"}]}, False),
    (STATIC, True),
    (STATIC | {"endpoints": [{"address": "172.16.0.1", "ports": {"tls": 8443}}]}, True),
    (STATIC | {"endpoints": [{"address": "172.16.0.1", "ports": {"http": 80}}]}, False),
    (STATIC | {"endpoints": [{"address": "a.example.com"}]}, False),
    (STATIC | {"endpoints": [{"address": "172.16.0.1", "labels": {"app": "x"}}]}, False),  # careful path
    ({"endpoints": [{"address": "a.example.com"}], "hosts": ["*.example.com"]}, True),
    ({"resolution": "DNS_ROUND_ROBIN", "endpoints": [{"address": "a.b.com"}, {"address": "c.d.com"}]}, False),
    ({"resolution": "NONE", "endpoints": [{"address": "172.16.0.1"}]}, False),
    ({"resolution": "DYNAMIC_DNS", "hosts": ["*.example.com"]}, False),
    ({"workloadSelector": {"labels": {"app": "x"}}, "resolution": "STATIC"}, False),
]


@pytest.mark.parametrize(("change", "fast"), SE_CHANGES)
def test_fast_path_on_one_change_to_a_service_entry(change: dict[str, Any], fast: bool) -> None:
    obj = parse_object(_doc("ServiceEntry", BASE_SE | change), "x")
    assert obj is not None and _agrees(obj) == fast


SC_CHANGES = [
    ({}, True),
    ({"workloadSelector": {"labels": {"app": "x"}}}, True),
    ({"workloadSelector": {"labels": {}}}, False),
    ({"workloadSelector": {"labels": {"app": "*"}}}, False),
    ({"outboundTrafficPolicy": {"mode": "ALLOW_ANY"}}, True),
    ({"outboundTrafficPolicy": {"mode": "ALLOW_ANY_DYNAMIC_DNS"}}, False),
    ({"egress": [{"hosts": ["./*", "a"]}]}, False),
    ({"egress": [{"hosts": []}]}, False),
    ({"egress": [{"hosts": ["./*"]}, {"hosts": ["ns/*"]}]}, False),
    ({"egress": [{"hosts": ["./*"], "port": {"number": 80, "name": "http", "protocol": "HTTP"}}]}, False),
    ({"ingress": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}}]}, False),
    ({"inboundConnectionPool": {"tcp": {"maxConnections": 1}}}, False),
]


@pytest.mark.parametrize(("change", "fast"), SC_CHANGES)
def test_fast_path_on_one_change_to_a_sidecar(change: dict[str, Any], fast: bool) -> None:
    spec = {"egress": [{"hosts": ["./*", "istio-system/*"]}]} | change
    obj = parse_object(_doc("Sidecar", spec), "x")
    assert obj is not None and _agrees(obj) == fast


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="0123456789./", max_size=20))
def test_ipv4_patterns_only_accept_what_ipaddress_parses(text: str) -> None:
    if IPV4.fullmatch(text):
        ipaddress.ip_address(text)
    if IPV4_CIDR.fullmatch(text):
        ipaddress.ip_network(text, strict=False)


@pytest.mark.parametrize("text", ["0.0.0.0", "255.255.255.255", "10.1.20.199", "10.0.0.0/0", "1.2.3.4/32"])
def test_ipv4_patterns_accept_plain_addresses(text: str) -> None:
    assert (IPV4_CIDR if "/" in text else IPV4).fullmatch(text)


def _walked(doc: Any) -> list[tuple[tuple[str | int, ...], str]]:
    """The careful walk alone (no fast check)."""
    if not apischema.is_istio(str(doc.get("apiVersion", ""))):
        return []
    found: list[tuple[tuple[str | int, ...], str]] = []
    key = f"{str(doc.get('apiVersion')).partition('/')[0]}/{doc.get('kind')}"
    apischema._walk(doc, apischema._tree(key), (), found, [apischema.MAX_VISITS])
    return found


def test_unknown_fields_fast_check_agrees_on_the_test_corpus() -> None:
    checked = 0
    for path in YAML_FILES:
        try:
            docs = [data for data, _ in kubeyaml.documents(path.read_text(encoding="utf-8"))]
        except Exception:  # not YAML this test can read: other tests own it
            continue
        docs += [item for doc in docs if isinstance(doc, dict) for item in doc.get("items") or ()]
        for doc in docs:
            if isinstance(doc, dict):
                assert apischema.unknown_fields(doc) == _walked(doc)
                checked += 1
    assert checked > 100, checked


FIELD_NAMES = st.sampled_from(["name", "number", "hosts", "ports", "nmae", "labels", "tls"])
JSON = st.recursive(
    st.none() | st.integers() | st.sampled_from(["x", "name"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(FIELD_NAMES, inner, max_size=3),
    max_leaves=12,
)
SPEC_KEYS = st.sampled_from(
    ["hosts", "ports", "endpoints", "egress", "trafficPolicy", "subsets", "prots", "http"]
)


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(["ServiceEntry", "Sidecar", "DestinationRule", "VirtualService", "Gateway", "Nope"]),
    st.dictionaries(SPEC_KEYS, JSON, max_size=4),
    st.dictionaries(st.sampled_from(["name", "labels", "nmae"]), JSON, max_size=2),
)
def test_unknown_fields_fast_check_agrees_on_generated_documents(
    kind: str, spec: dict[str, Any], meta: dict[str, Any]
) -> None:
    doc = {"apiVersion": "networking.istio.io/v1", "kind": kind, "metadata": meta, "spec": spec}
    assert apischema.unknown_fields(doc) == _walked(doc)


def test_unknown_fields_fast_check_defers_to_the_walk() -> None:
    node = apischema._fast_node("networking.istio.io/v1", "ServiceEntry")
    assert node is not None
    good = _doc("ServiceEntry", {"hosts": ["a.b"], "ports": [{"number": 1, "name": "a"}]})
    assert apischema._all_known(good, node, 10) == 9  # one list entry spent
    for spec in ({"ports": [{"nmae": "a"}]}, {"ports": [[{"number": 1}]]}, {"prots": []}):
        assert apischema._all_known(_doc("ServiceEntry", spec), node, apischema.MAX_VISITS) == -1
    many = _doc("ServiceEntry", {"ports": [{"number": n} for n in range(20)]})
    assert apischema._all_known(many, node, 10) == -1  # over budget: the careful walk decides
    assert apischema._fast_node("v1", "Service") is None
