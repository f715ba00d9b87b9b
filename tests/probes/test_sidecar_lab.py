"""``python -m probes`` inside a lab pod (netns, Istio's iptables capture, Envoy as 1337, pilot's
config from ``lab.istiod``): the sidecar evidence it prints is the sidecar's own view — filtered
config, cluster membership, the effective mode, and (opted-in pod, probes run alone) the
BlackHoleCluster counters a blocked connection moves; a stock pod shows none of them."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from diag.live import path as livepath
from probes.model import ProbeReport, from_json

pytestmark = pytest.mark.lab

PKG = "pkg.lab.example"
BLOCKED = "blocked.lab.example"
OPT_IN = {
    "proxyStatsMatcher": {
        "inclusionPrefixes": [
            "cluster.BlackHoleCluster",
            "cluster.PassthroughCluster",
            "tcp.BlackHoleCluster",
            "tcp.PassthroughCluster",
        ],
        "inclusionRegexps": [r"cluster\.outbound\|[0-9]+\|[^|]*\|pkg\.lab\.example;?\..*"],
    }
}
SERVICE_ENTRY = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "ServiceEntry",
    "metadata": {"name": "pkg", "namespace": "default"},
    "spec": {
        "hosts": [PKG],
        "location": "MESH_EXTERNAL",
        "resolution": "DNS",
        "ports": [{"number": 443, "name": "https", "protocol": "HTTPS"}],
    },
}


@pytest.fixture(scope="module")
def lab() -> Iterator[Any]:
    from lab.pod import PodSpec
    from lab.runtime import Lab

    pods = [PodSpec(), PodSpec(namespace="stats", proxy_config=OPT_IN)]
    lab = Lab([SERVICE_ENTRY], mode="REGISTRY_ONLY", internet=[PKG, BLOCKED], pods=pods, drain_seconds=0.1)
    with lab as running:
        yield running


def _probe(lab: Any, namespace: str, *targets: str) -> ProbeReport:
    pod = lab.pod(namespace)
    argv = [sys.executable, "-m", "probes", "--concurrency", "1", "--timeout", "3", "--read-window", "0.3"]
    argv += ["--ca-file", str(lab.ca_file), "--compact", *targets]
    done = pod.exec(argv, timeout=60)
    assert done.stdout, done.stderr
    return from_json(ProbeReport, json.loads(done.stdout))


def _delta(deltas: dict[str, int] | Any, cluster_prefix: str, counter: str) -> int | None:
    for delimiter in (";.", "."):
        if f"{cluster_prefix}{delimiter}{counter}" in deltas:
            return int(deltas[f"{cluster_prefix}{delimiter}{counter}"])
    return None


def test_opted_in_pod_shows_the_path_and_the_blackholed_connection(lab: Any) -> None:
    report = _probe(lab, "stats", PKG, f"tcp://{BLOCKED}:22")
    assert [r.signature.value for r in report.results] == ["OK", "TCP_CLOSED_AFTER_CONNECT"]
    evidence = report.sidecar
    assert evidence is not None and evidence.present and evidence.ready_after_s is not None
    listeners = {e["name"] for e in evidence.config["dynamic_listeners"]}
    assert {"virtualOutbound", "0.0.0.0_443"} <= listeners
    assert livepath.effective_mode(evidence.config) == "REGISTRY_ONLY"
    members = {m.cluster: m for m in evidence.clusters}
    assert members[f"outbound|443||{PKG}"].hosts  # the lab's DNS resolved it for Envoy
    assert evidence.stats_opted_in is True
    assert evidence.counter_deltas is not None
    assert evidence.counter_deltas.get("tcp.BlackHoleCluster.downstream_cx_total") == 1
    # pilot sets alt_stat_name "<cluster>;" (cluster_builder.go, util.DelimitedStatsPrefix); accept both
    assert _delta(evidence.counter_deltas, f"cluster.outbound|443||{PKG}", "upstream_cx_total") == 1


def test_stock_pod_has_the_path_but_no_attribution_counters(lab: Any) -> None:
    report = _probe(lab, "default", f"tcp://{BLOCKED}:22")
    evidence = report.sidecar
    assert evidence is not None and evidence.present
    assert evidence.stats_opted_in is False and evidence.counter_deltas is None
    assert livepath.effective_mode(evidence.config) == "REGISTRY_ONLY"
    assert evidence.update_rejected == {
        "listener_manager.lds.update_rejected": 0,
        "cluster_manager.cds.update_rejected": 0,
    }
