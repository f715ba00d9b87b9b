"""The watch loop without a cluster: a fixed mesh snapshot, a prober that returns canned probe
reports (or fails), and check's diagnosis engine in between (docs/watch.md, What a cycle does)."""

from __future__ import annotations

import io
import json
import threading
from typing import Any

import pytest

from diag import errors
from diag.live.meshread import LiveMesh
from diag.watch.loop import Watcher, WatchOptions
from diag.watch.run import run_watch
from probes.model import PROBE_SCHEMA, Phases, ProbeReport, ProbeResult, SidecarEvidence, Signature
from probes.targets import parse_target

SE = {
    "apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
    "metadata": {"name": "pkg", "namespace": "shop"},
    "spec": {"hosts": ["pkg.example.com"], "location": "MESH_EXTERNAL", "resolution": "DNS",
             "ports": [{"number": 443, "name": "tls", "protocol": "TLS"}]},
}  # fmt: skip
MESH = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "istio", "namespace": "istio-system"},
        "data": {"mesh": "outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n"}}  # fmt: skip


RESET = Signature.RESET_BEFORE_RESPONSE


class _Cluster:
    namespace = "shop"
    context = "test"


class _Mesh:
    def __init__(self, objects: list[dict[str, Any]]) -> None:
        self.objects = objects
        self.reads = 0
        self.generation = 0

    def current(self) -> LiveMesh:
        self.reads += 1
        return LiveMesh(objects=list(self.objects))


def report(signatures: dict[str, Signature], sidecar: bool = True) -> ProbeReport:
    results = tuple(
        ProbeResult(parse_target(t), s, phases=Phases(resolve=0.001, connect=0.002), elapsed=0.01)
        for t, s in signatures.items()
    )
    evidence = SidecarEvidence(present=True, ready=True) if sidecar else None
    return ProbeReport(schema=PROBE_SCHEMA, probe_version="0", results=results, sidecar=evidence,
                       started_at="2026-01-01T00:00:00Z", elapsed=0.1, concurrency=2, notes=())  # fmt: skip


def watcher(objects: list[dict[str, Any]], prober: Any, out: io.StringIO) -> Watcher:
    options = WatchOptions(targets=("pkg.example.com", "other.example.com"), interval=1.0, timeout=1.0)
    w = Watcher(_Cluster(), options, prober=prober, out=out, events=False)  # type: ignore[arg-type]
    w.mesh = _Mesh(objects)  # type: ignore[assignment]
    return w


def test_a_cycle_diagnoses_with_checks_engine() -> None:
    plans: list[dict[str, Any]] = []

    def prober(plan: dict[str, Any]) -> ProbeReport:
        plans.append(plan)
        return report({"pkg.example.com": Signature.OK, "other.example.com": RESET})

    out = io.StringIO()
    w = watcher([SE, MESH], prober, out)
    verdicts = {v.target: v for v in w.cycle()}
    assert verdicts["pkg.example.com"].passed
    other = verdicts["other.example.com"]
    assert (other.passed, other.signature, other.code) == (False, "RESET_BEFORE_RESPONSE", "MP0101")
    assert [t["target"] for t in plans[0]["targets"]] == ["pkg.example.com", "other.example.com"]
    assert plans[0]["sidecar"]["quit"] is False  # never stop the watch pod's own sidecar
    assert w.ready.is_set() and w.cycles == 1
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert {x["target"]: x["code"] for x in lines} == {
        "pkg.example.com": "none", "other.example.com": "MP0101"
    }
    w.cycle()
    assert len(out.getvalue().splitlines()) == 2  # no change, no new line


def test_a_watch_pod_without_a_sidecar_says_so() -> None:
    """MP0302: without its sidecar the watch tests nothing of the mesh, and its metrics say that."""
    out = io.StringIO()
    both = {"pkg.example.com": RESET, "other.example.com": RESET}
    w = watcher([SE, MESH], lambda plan: report(both, sidecar=False), out)
    assert {v.code for v in w.cycle()} == {"MP0302"}


def test_a_failing_cycle_is_counted_and_the_loop_goes_on() -> None:
    calls = []
    stop = threading.Event()

    def prober(plan: dict[str, Any]) -> ProbeReport:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the probe crashed")
        stop.set()
        return report({"pkg.example.com": Signature.OK, "other.example.com": Signature.OK})

    out = io.StringIO()
    w = watcher([SE], prober, out)
    w.options = WatchOptions(targets=w.options.targets, interval=1.0, jitter=0.0, timeout=1.0)
    w.run(stop)
    assert len(calls) == 2 and w.cycles == 1
    first = json.loads(out.getvalue().splitlines()[0])
    assert first["msg"] == "cycle failed" and first["error"] == "RuntimeError: the probe crashed"
    assert "meshprobe_watch_cycle_errors_total 1.0" in w.metrics.scrape().decode()


def test_jitter_stays_within_its_fraction() -> None:
    w = watcher([], lambda plan: None, io.StringIO())
    w.options = WatchOptions(targets=("a.example.com",), interval=30.0, jitter=0.1)
    waits = [w.next_wait() for _ in range(200)]
    assert all(27.0 <= x <= 33.0 for x in waits) and len(set(waits)) > 100


@pytest.mark.parametrize(
    ("targets", "expect"), [([], "allowed"), (["bad target!"], "allowed"), (["a.example.com"], "x")]
)
def test_bad_usage_exits_2(targets: list[str], expect: str) -> None:
    with pytest.raises(errors.UsageError):
        run_watch(targets=targets, presets=[], targets_configmap=None, namespace=None, kubeconfig=None,
                  context=None, interval=30, jitter=0.1, timeout=5, expect=expect, listen=":9146",
                  events=True, once=True)  # fmt: skip
