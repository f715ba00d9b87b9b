"""The live-path matcher against the lab prototype's static configs and a hand-written dynamic
config_dump shaped like a real sidecar's (testdata/envoy/)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from diag.live import path as livepath
from diag.live.path import LiveCall
from probes.model import ClusterMembership

DATA = Path(__file__).parent / "testdata" / "envoy"


def _load(name: str) -> Any:
    text = (DATA / name).read_text()
    return json.loads(text) if name.endswith(".json") else yaml.safe_load(text)


def _http(
    host: str, port: int = 80, address: str | None = None, version: str = "1.1", path: str = "/"
) -> LiveCall:
    header = host if port == 80 else f"{host}:{port}"
    return LiveCall(port, address, "raw_buffer", None, (), header, version, path)


def _tls(sni: str | None, port: int = 443, address: str | None = None) -> LiveCall:
    return LiveCall(port, address, "tls", sni, ("http/1.1",))


def _tcp(address: str, port: int) -> LiveCall:
    return LiveCall(port, address)


PROTOTYPE_CASES = [
    # file, call, (listener, filter_chain, route, vhost, cluster), outcome
    (
        "main-REGISTRY_ONLY.yaml",
        _http("pkgindex.example", address="10.250.0.11"),
        (
            "0.0.0.0_80",
            "{transport_protocol=raw_buffer,application_protocols=http/1.1|http/1.0|h2c}",
            "80",
            "pkgindex.example:80",
            "outbound|80||pkgindex.example",
        ),
        "cluster",
    ),
    (
        "main-REGISTRY_ONLY.yaml",
        _http("example.com", address="10.250.0.14"),
        ("0.0.0.0_80", None, "80", "block_all", None),
        "direct_response",
    ),
    (
        "main-REGISTRY_ONLY.yaml",
        _http("EXAMPLE.com", address="10.250.0.14"),
        ("0.0.0.0_80", None, "80", "block_all", None),
        "direct_response",
    ),
    (
        "main-REGISTRY_ONLY.yaml",
        _tls("pkgindex.example", address="10.250.0.11"),
        ("0.0.0.0_443", "{server_names=pkgindex.example}", None, None, "outbound|443||pkgindex.example"),
        "cluster",
    ),
    (
        "main-REGISTRY_ONLY.yaml",
        _tls("example.com", address="10.250.0.14"),
        ("0.0.0.0_443", "PassthroughFilterChain", None, None, "BlackHoleCluster"),
        "cluster",
    ),
    (
        "main-REGISTRY_ONLY.yaml",
        _tls("http-on-443.example", address="10.250.0.15"),
        ("0.0.0.0_443", "PassthroughFilterChain", None, None, "BlackHoleCluster"),
        "cluster",
    ),
    (
        "main-REGISTRY_ONLY.yaml",
        _tls(None, address="10.250.0.13"),
        ("0.0.0.0_443", "PassthroughFilterChain", None, None, "BlackHoleCluster"),
        "cluster",
    ),
    (
        "main-REGISTRY_ONLY.yaml",
        _tcp("10.250.0.16", 22),
        ("10.250.0.16_22", "{}", None, None, "outbound|22||ssh.lab.example"),
        "cluster",
    ),
    (
        "main-REGISTRY_ONLY.yaml",
        _tcp("10.250.0.17", 22),
        ("virtualOutbound", "virtualOutbound-catchall-tcp", None, None, "BlackHoleCluster"),
        "cluster",
    ),
    (
        "main-REGISTRY_ONLY.yaml",
        _tcp("10.250.0.14", 80),
        ("0.0.0.0_80", "PassthroughFilterChain", None, None, "BlackHoleCluster"),
        "cluster",
    ),
    (
        "main-REGISTRY_ONLY.yaml",
        _http("pkgindex.example", address="10.250.0.11", version="1.0"),
        ("0.0.0.0_80", None, None, None, None),
        "http10_rejected",
    ),
    (
        "main-REGISTRY_ONLY.yaml",
        _http("dead.example", 8080, address="10.250.0.18"),
        ("0.0.0.0_8080", None, "8080", "dead.example:8080", "outbound|8080||dead.example"),
        "cluster",
    ),
    (
        "main-ALLOW_ANY.yaml",
        _tls("example.com", address="10.250.0.14"),
        ("0.0.0.0_443", "PassthroughFilterChain", None, None, "PassthroughCluster"),
        "cluster",
    ),
    (
        "main-ALLOW_ANY.yaml",
        _http("example.com", address="10.250.0.14"),
        ("0.0.0.0_80", None, "80", "allow_any", "PassthroughCluster"),
        "cluster",
    ),
    (
        "main-ALLOW_ANY.yaml",
        _tcp("10.250.0.17", 22),
        ("virtualOutbound", "virtualOutbound-catchall-tcp", None, None, "PassthroughCluster"),
        "cluster",
    ),
    (
        "tcp22-noaddr-none-REGISTRY_ONLY.yaml",
        _tcp("10.250.0.17", 22),
        ("0.0.0.0_22", "{}", None, None, "outbound|22||github.com"),
        "cluster",
    ),
    (
        "wrongproto-only-REGISTRY_ONLY.yaml",
        _tls("http-on-443.example", address="10.250.0.15"),
        ("0.0.0.0_443", "PassthroughFilterChain", None, None, "BlackHoleCluster"),
        "cluster",
    ),
    (
        "wrongproto-only-REGISTRY_ONLY.yaml",
        _http("http-on-443.example", 443, address="10.250.0.15"),
        ("0.0.0.0_443", None, "443", "http-on-443.example:443", "outbound|443||http-on-443.example"),
        "cluster",
    ),
]


def _check(path: livepath.LivePath, want: tuple[str | None, ...], outcome: str) -> None:
    got = (path.listener, path.filter_chain, path.route, path.vhost, path.cluster)
    for field, g, w in zip(("listener", "filter_chain", "route", "vhost", "cluster"), got, want, strict=True):
        if w is not None:
            assert g == w, f"{field}: {g!r} != {w!r} ({path})"
    if want[4] is None and outcome != "cluster":
        assert path.cluster is None
    assert path.outcome == outcome, path


@pytest.mark.parametrize(
    ("name", "call", "want", "outcome"),
    PROTOTYPE_CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(PROTOTYPE_CASES)],
)
def test_prototype_configs(name: str, call: LiveCall, want: tuple[str | None, ...], outcome: str) -> None:
    _check(livepath.match(_load(name), call), want, outcome)


def test_block_all_is_the_envoy_summary_and_status_502() -> None:
    path = livepath.match(_load("main-REGISTRY_ONLY.yaml"), _http("nope.example", address="10.250.0.99"))
    assert (path.envoy, path.direct_status, path.route_entry) == ("block_all", 502, "block_all")
    assert path.as_dict()["cluster"] is None


DUMP_CASES = [
    (
        _http("api.example.com"),
        ("0.0.0.0_80", None, "80", "api.example.com:80", "outbound|80||api.example.com"),
        "cluster",
    ),
    (
        _http("api.example.com", 80, "1.2.3.4", version="2"),
        (None, None, None, "api.example.com:80", None),
        "cluster",
    ),
    (_http("x.wild.example.com"), (None, None, None, "*.wild.example.com:80", None), "cluster"),
    (_http("wild.example.com"), (None, None, None, "allow_any", "PassthroughCluster"), "cluster"),
    (_http("pre.example.net"), (None, None, None, "pre.example.net:80", "outbound|80||pre-wild"), "cluster"),
    (_http("api.example.com."), (None, None, None, "allow_any", "PassthroughCluster"), "cluster"),
    (
        _tls("a.example.org"),
        (
            "0.0.0.0_443",
            "{server_names=a.example.org,transport_protocol=tls}",
            None,
            None,
            "outbound|443||a.example.org",
        ),
        "cluster",
    ),
    (
        _tls("b.example.org"),
        (
            None,
            "{server_names=*.example.org,transport_protocol=tls}",
            None,
            None,
            "outbound|443||*.example.org",
        ),
        "cluster",
    ),
    (_tls("x.deep.example.org"), (None, None, None, None, "outbound|443||*.deep.example.org"), "cluster"),
    (_tls("example.org"), (None, "PassthroughFilterChain", None, None, "PassthroughCluster"), "cluster"),
    (
        _tls("anything.example.com", address="240.240.0.5"),
        ("240.240.0.5_443", "{}", None, None, "outbound|443||vip.example.net"),
        "cluster",
    ),
    (
        _tls(None, address="240.240.0.5"),
        ("240.240.0.5_443", None, None, None, "outbound|443||vip.example.net"),
        "cluster",
    ),
    (
        _tcp("10.20.30.40", 5432),
        ("0.0.0.0_5432", "{prefix_ranges=10.20.30.0/24}", None, None, "outbound|5432||db-narrow.example.net"),
        "cluster",
    ),
    (_tcp("10.20.99.1", 5432), (None, None, None, None, "outbound|5432||db-wide.example.net"), "cluster"),
    (_tcp("10.99.0.1", 5432), ("0.0.0.0_5432", None, None, None, None), "no_filter_chain"),
    (
        _tcp("10.99.0.1", 7777),
        ("virtualOutbound", "virtualOutbound-catchall-tcp", None, None, "PassthroughCluster"),
        "cluster",
    ),
    (
        _http("svc.example.com", 8080, path="/v1/x"),
        ("0.0.0.0_8080", None, "8080", "svc.example.com:8080", "outbound|8080|v1|svc.example.com"),
        "cluster",
    ),
    (
        _http("svc.example.com", 8080, path="/other"),
        (None, None, None, "svc.example.com:8080", None),
        "no_route",
    ),
    (_http("SVC.example.com", 8080), (None, None, None, "svc.example.com:8080", None), "no_route"),
    (
        LiveCall(8080, None, "raw_buffer", None, (), "svc.example.com", "1.1"),
        (None, None, None, "allow_any", "PassthroughCluster"),
        "cluster",
    ),
    (
        LiveCall(15001, "10.0.0.1"),
        ("virtualOutbound", "virtualOutbound-blackhole", None, None, "BlackHoleCluster"),
        "cluster",
    ),
]


@pytest.mark.parametrize(
    ("call", "want", "outcome"), DUMP_CASES, ids=[str(i) for i in range(len(DUMP_CASES))]
)
def test_dynamic_config_dump(call: LiveCall, want: tuple[str | None, ...], outcome: str) -> None:
    _check(livepath.match(_load("sidecar-config-dump-ALLOW_ANY.json"), call), want, outcome)


def _camel(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            (re.sub(r"_([a-z])", lambda m: m.group(1).upper(), k) if not k.startswith("@") else k): _camel(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


@pytest.mark.parametrize(("call", "want", "outcome"), DUMP_CASES[::3], ids=[str(i) for i in range(0, 21, 3)])
def test_istioctl_camel_case_gives_the_same_answers(
    call: LiveCall, want: tuple[str | None, ...], outcome: str
) -> None:
    doc = _camel(_load("sidecar-config-dump-ALLOW_ANY.json"))
    assert "dynamicListeners" in json.dumps(doc)
    _check(livepath.match(doc, call), want, outcome)


def test_missing_rds_route_config_and_unknown_cluster_are_reported() -> None:
    doc = _load("sidecar-config-dump-ALLOW_ANY.json")
    doc["configs"] = [c for c in doc["configs"] if "Routes" not in c["@type"]]
    path = livepath.match(doc, _http("api.example.com"))
    assert (path.outcome, path.route) == ("no_route_config", "80")
    full = livepath.match(_load("sidecar-config-dump-ALLOW_ANY.json"), _tls("b.deep.example.org"))
    assert full.cluster_known is False and any("not in the config" in n for n in full.notes)
    known = livepath.match(_load("sidecar-config-dump-ALLOW_ANY.json"), _tls("a.example.org"))
    assert known.cluster_known is True


def test_warming_listeners_are_not_active_and_error_states_are_rejections() -> None:
    doc = _load("sidecar-config-dump-ALLOW_ANY.json")
    cfg = livepath.load_config(doc)
    assert cfg.listener("0.0.0.0_7777") is None
    assert livepath.rejected_updates(doc) == ("listener 0.0.0.0_9999 in error state",)
    counters = {"listener_manager.lds.update_rejected": 2, "cluster_manager.cds.update_rejected": 0}
    assert livepath.rejected_updates(None, counters) == ("listener_manager.lds.update_rejected=2",)


@pytest.mark.parametrize(
    ("name", "mode", "cluster"),
    [
        ("main-REGISTRY_ONLY.yaml", "REGISTRY_ONLY", "BlackHoleCluster"),
        ("main-ALLOW_ANY.yaml", "ALLOW_ANY", "PassthroughCluster"),
        ("sidecar-config-dump-ALLOW_ANY.json", "ALLOW_ANY", "PassthroughCluster"),
    ],
)
def test_effective_mode_is_the_catchall_cluster(name: str, mode: str, cluster: str) -> None:
    assert livepath.effective_mode(_load(name)) == mode
    assert livepath.catchall_cluster(_load(name)) == cluster


def test_effective_mode_egress_proxy_and_unknown() -> None:
    doc = _load("main-REGISTRY_ONLY.yaml")
    outbound = next(li for li in doc["static_resources"]["listeners"] if li["name"] == "virtualOutbound")
    outbound["filter_chains"][1]["filters"][0]["typed_config"]["cluster"] = (
        "outbound|3128||proxy.corp.example"
    )
    assert livepath.effective_mode(doc) == "EGRESS_PROXY"
    doc["static_resources"]["listeners"].remove(outbound)
    assert livepath.effective_mode(doc) == "UNKNOWN"
    assert livepath.match(doc, _tcp("10.250.0.17", 22)).outcome == "no_listener"


def test_empty_clusters_only_for_clusters_that_should_have_hosts() -> None:
    doc = _load("main-REGISTRY_ONLY.yaml")
    members = [
        ClusterMembership("outbound|443||ghost.example"),  # STRICT_DNS, no hosts: Envoy cannot resolve
        ClusterMembership("outbound|443||pkgindex.example", ("10.250.0.11:443",)),
        ClusterMembership("outbound|443||github.com"),  # ORIGINAL_DST never lists hosts
        ClusterMembership("BlackHoleCluster"),
        ClusterMembership("outbound|443||unknown.example"),  # not in the filtered dump: EDS assumed
    ]
    assert livepath.empty_clusters(doc, members) == (
        "outbound|443||ghost.example",
        "outbound|443||unknown.example",
    )


class _Generated:
    def __init__(self, listeners: list[Any], clusters: list[Any]) -> None:
        self.listeners, self.clusters = listeners, clusters


def test_generator_objects_and_sidecar_evidence_shapes() -> None:
    static = _load("main-REGISTRY_ONLY.yaml")["static_resources"]
    gen = _Generated(static["listeners"], static["clusters"])
    assert livepath.match(gen, _tcp("10.250.0.16", 22)).cluster == "outbound|22||ssh.lab.example"
    from probes.model import SidecarEvidence

    evidence = SidecarEvidence(
        present=True,
        config={
            "dynamic_listeners": [{"name": "x", "active_state": {"listener": static["listeners"][0]}}],
            "clusters": static["clusters"],
        },
    )
    assert livepath.match(evidence, _tcp("10.250.0.16", 22)).listener == "10.250.0.16_22"


class _PredictCall:
    host = "pkgindex.example"
    port = 443
    protocol = "https"
    sni = None
    address = "10.250.0.11"
    http_version = None


def test_from_call_accepts_the_prediction_call_shape() -> None:
    live = LiveCall.from_call(_PredictCall())
    assert (live.transport, live.sni, live.alpn) == ("tls", "pkgindex.example", ("http/1.1",))
    path = livepath.match(_load("main-REGISTRY_ONLY.yaml"), _PredictCall())
    assert path.cluster == "outbound|443||pkgindex.example"
    ip_call = type(
        "C",
        (),
        {
            "host": "10.250.0.11",
            "port": 443,
            "protocol": "https",
            "sni": None,
            "address": "10.250.0.11",
            "http_version": None,
        },
    )()
    assert LiveCall.from_call(ip_call).sni is None
    plain = type(
        "C",
        (),
        {
            "host": "Dead.Example",
            "port": 8080,
            "protocol": "http",
            "sni": None,
            "address": None,
            "http_version": None,
        },
    )()
    assert LiveCall.from_call(plain).host == "dead.example:8080"


def test_require_tls_redirects_plaintext_before_any_route() -> None:
    vhost = {
        "name": "example.com:80",
        "domains": ["example.com"],
        "require_tls": "ALL",
        "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "outbound|80||b.default"}}],
    }
    hcm = {
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {"route_config": {"name": "http.80", "virtual_hosts": [vhost]}},
    }
    listener = {
        "name": "0.0.0.0_80",
        "address": {"socket_address": {"address": "0.0.0.0", "port_value": 80}},
        "filter_chains": [{"filters": [hcm]}],
    }
    path = livepath.match({"listeners": [listener]}, _http("example.com"))
    assert (path.outcome, path.vhost, path.cluster, path.local_status) == (
        "tls_redirect",
        "example.com:80",
        None,
        301,
    )
    del vhost["require_tls"]
    routed = livepath.match({"listeners": [listener]}, _http("example.com"))
    assert (routed.outcome, routed.cluster) == ("cluster", "outbound|80||b.default")
