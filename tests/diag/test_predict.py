"""predict(): the paths a real Envoy took in an early prototype of the lab's main scenario
(`testdata/model/prototype-main.yaml`), and variants.

Each row: call → (verdict, envoy summary, listener, filter chain). That Envoy's access log is
the oracle for the main scenario; the variants follow `TestPassthroughTraffic`'s comments
(pilot/pkg/networking/core/sidecar_simulation_test.go) and the listener rules in docs/model.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from diag.model.loader import load_paths
from diag.model.resources import MeshConfig, OutboundTrafficPolicy
from diag.model.snapshot import Snapshot
from diag.predict.sidecar import Call, Source, predict

MAIN = Path(__file__).parent / "testdata" / "model" / "prototype-main.yaml"
HTTP_CHAIN = "{transport_protocol=raw_buffer,application_protocols=http/1.1|h2c}"
PT = "PassthroughFilterChain"
VO = ("virtualOutbound", "virtualOutbound-catchall-tcp")


def _snapshot(mode: str) -> Snapshot:
    loaded = load_paths([MAIN])
    assert loaded.problems == ()
    return Snapshot.build(loaded.objects, MeshConfig(outbound=OutboundTrafficPolicy(mode=mode)))


SNAPSHOTS = {mode: _snapshot(mode) for mode in ("REGISTRY_ONLY", "ALLOW_ANY")}

# (call, REGISTRY_ONLY expectation, ALLOW_ANY expectation); expectation = (verdict, envoy, listener, chain)
MAIN_CASES = [
    (
        Call(host="pkg.lab.example", port=80, protocol="http"),
        ("allowed", "outbound|80||pkg.lab.example", "0.0.0.0_80", HTTP_CHAIN),
        ("allowed", "outbound|80||pkg.lab.example", "0.0.0.0_80", HTTP_CHAIN),
    ),
    (
        Call(host="example.com", port=80, protocol="http"),
        ("blocked", "block_all", "0.0.0.0_80", HTTP_CHAIN),
        ("passthrough", "PassthroughCluster", "0.0.0.0_80", HTTP_CHAIN),
    ),
    (
        Call(host="example.com", port=8081, protocol="http"),
        ("blocked", "BlackHoleCluster", *VO),
        ("passthrough", "PassthroughCluster", *VO),
    ),
    (
        Call(host="pkg.lab.example", port=443, protocol="https"),
        ("allowed", "outbound|443||pkg.lab.example", "0.0.0.0_443", "{server_names=pkg.lab.example}"),
        ("allowed", "outbound|443||pkg.lab.example", "0.0.0.0_443", "{server_names=pkg.lab.example}"),
    ),
    (
        Call(host="github.com", port=443, protocol="https"),
        ("allowed", "outbound|443||github.com", "0.0.0.0_443", "{server_names=github.com}"),
        ("allowed", "outbound|443||github.com", "0.0.0.0_443", "{server_names=github.com}"),
    ),
    (
        Call(host="example.com", port=443, protocol="https"),
        ("blocked", "BlackHoleCluster", "0.0.0.0_443", PT),
        ("passthrough", "PassthroughCluster", "0.0.0.0_443", PT),
    ),
    (
        Call(host="10.250.0.14", port=443, protocol="https"),  # IP literal: no SNI
        ("blocked", "BlackHoleCluster", "0.0.0.0_443", PT),
        ("passthrough", "PassthroughCluster", "0.0.0.0_443", PT),
    ),
    (
        Call(host="http-on-443.example", port=443, protocol="https"),  # wrong protocol: TLS to an HTTP port
        ("blocked", "BlackHoleCluster", "0.0.0.0_443", PT),
        ("passthrough", "PassthroughCluster", "0.0.0.0_443", PT),
    ),
    (
        Call(host="http-on-443.example", port=443, protocol="http"),
        ("allowed", "outbound|443||http-on-443.example", "0.0.0.0_443", HTTP_CHAIN),
        ("allowed", "outbound|443||http-on-443.example", "0.0.0.0_443", HTTP_CHAIN),
    ),
    (
        Call(host="ghost.example", port=443, protocol="tls"),
        ("allowed", "outbound|443||ghost.example", "0.0.0.0_443", "{server_names=ghost.example}"),
        ("allowed", "outbound|443||ghost.example", "0.0.0.0_443", "{server_names=ghost.example}"),
    ),
    (
        Call(host="ssh.lab.example", port=22, protocol="tcp", address="10.250.0.16"),
        ("allowed", "outbound|22||ssh.lab.example", "10.250.0.16_22", "{}"),
        ("allowed", "outbound|22||ssh.lab.example", "10.250.0.16_22", "{}"),
    ),
    (
        Call(host="ssh-other.lab.example", port=22, protocol="tcp", address="10.250.0.17"),
        ("blocked", "BlackHoleCluster", *VO),
        ("passthrough", "PassthroughCluster", *VO),
    ),
    (
        Call(host="example.com", port=80, protocol="tcp"),  # non-HTTP bytes to :80
        ("blocked", "BlackHoleCluster", "0.0.0.0_80", PT),
        ("passthrough", "PassthroughCluster", "0.0.0.0_80", PT),
    ),
    (
        Call(host="pkg.lab.example", port=80, protocol="http", http_version="1.0"),  # PILOT_HTTP10 off
        ("blocked", "BlackHoleCluster", "0.0.0.0_80", PT),
        ("passthrough", "PassthroughCluster", "0.0.0.0_80", PT),
    ),
    (
        Call(host="pkg.lab.example", port=80, protocol="http", http_version="2"),  # h2c prior knowledge
        ("allowed", "outbound|80||pkg.lab.example", "0.0.0.0_80", HTTP_CHAIN),
        ("allowed", "outbound|80||pkg.lab.example", "0.0.0.0_80", HTTP_CHAIN),
    ),
]


@pytest.mark.parametrize("mode", ["REGISTRY_ONLY", "ALLOW_ANY"])
@pytest.mark.parametrize(("call", "registry_only", "allow_any"), MAIN_CASES, ids=lambda v: str(v)[:60])
def test_prototype_main_scenario(
    mode: str, call: Call, registry_only: tuple[str, ...], allow_any: tuple[str, ...]
) -> None:
    expected = registry_only if mode == "REGISTRY_ONLY" else allow_any
    p = predict(SNAPSHOTS[mode], Source(namespace="default"), call)
    assert (p.verdict, p.envoy, p.path.listener, p.path.filter_chain) == expected
    assert p.mode == mode and p.mode_from == "default MeshConfig"
    if p.verdict == "allowed":
        assert p.matched and p.matched[0].startswith("ServiceEntry default/")


def test_http_path_names_route_and_vhost() -> None:
    p = predict(
        SNAPSHOTS["REGISTRY_ONLY"],
        Source(namespace="default"),
        Call(host="example.com", port=80, protocol="http"),
    )
    assert (p.path.route, p.path.vhost, p.path.cluster) == ("80", "block_all", None)
    assert p.to_json()["path"]["vhost"] == "block_all" and p.catch_all
    ok = predict(
        SNAPSHOTS["ALLOW_ANY"],
        Source(namespace="default"),
        Call(host="PKG.lab.example", port=80, protocol="http"),
    )
    assert (ok.path.route, ok.path.vhost) == ("80", "pkg.lab.example:80")  # Host case never matters


def test_http10_enabled_matches_http_chain() -> None:
    source = Source(namespace="default", http10=True)
    p = predict(
        SNAPSHOTS["REGISTRY_ONLY"],
        source,
        Call(host="pkg.lab.example", port=80, protocol="http", http_version="1.0"),
    )
    assert p.verdict == "allowed"
    assert (
        p.path.filter_chain == "{transport_protocol=raw_buffer,application_protocols=http/1.1|http/1.0|h2c}"
    )
