"""The watch's Prometheus metrics, in a registry of their own (docs/watch.md, Metrics).

Names follow blackbox_exporter where they overlap (``probe_success``, ``probe_duration_seconds``);
the rest are ``meshprobe_*``. Label values come from closed sets so that the series count is
bounded by the target list: ``signature`` from ``probes.model.Signature``, ``code`` from the
diagnosis codes (``diag.rules.RULES_BY_CODE``) or ``none``, ``phase`` from the five phase names.
A verdict gauge keeps one series per target: the previous (signature, code) series is removed
when the verdict changes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from diag.watch.verdict import NO_CODE, PHASE_NAMES, Verdict

PHASE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def known_signatures() -> frozenset[str]:
    from probes.model import Signature

    return frozenset(s.value for s in Signature)


def known_codes() -> frozenset[str]:
    from diag.rules import RULES_BY_CODE

    return frozenset({*RULES_BY_CODE, NO_CODE})


class WatchMetrics:
    """Every metric the watch exports; ``record`` applies one cycle's verdicts."""

    def __init__(self, *, version: str, istio_version: str | None) -> None:
        # No ``*_created`` series: half the output, and nothing alerts on them.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.signatures = known_signatures()
        self.codes = known_codes()
        self.success = Gauge("probe_success", "Whether the target met its expectation (1) or not (0).",
                             ["target"], registry=r)  # fmt: skip
        self.duration = Gauge("probe_duration_seconds", "How long the last probe of the target took.",
                              ["target"], registry=r)  # fmt: skip
        self.phase = Histogram(
            "meshprobe_probe_phase_duration_seconds",
            "Time spent in each probe phase (resolve, connect, tls, request, first_byte).",
            ["target", "phase"], buckets=PHASE_BUCKETS, registry=r,
        )  # fmt: skip
        self.verdict = Gauge(
            "meshprobe_probe_verdict",
            "1 for the target's current verdict: the observed signature and the primary diagnosis code.",
            ["target", "signature", "code"], registry=r,
        )  # fmt: skip
        self.changed = Gauge(
            "meshprobe_probe_verdict_change_timestamp_seconds",
            "Unix time the target's verdict (pass/fail, signature, code) last changed.",
            ["target"], registry=r,
        )  # fmt: skip
        self.failures = Counter(
            "meshprobe_probe_failures", "Probes of the target that did not meet its expectation.",
            ["target"], registry=r,
        )  # fmt: skip
        self.cycles = Counter("meshprobe_watch_cycles", "Probe cycles run.", registry=r)
        self.cycle_errors = Counter(
            "meshprobe_watch_cycle_errors", "Probe cycles that failed as a whole (probe or API error).",
            registry=r,
        )  # fmt: skip
        self.cycle_seconds = Histogram(
            "meshprobe_watch_cycle_duration_seconds", "Wall time of one probe cycle (all targets).",
            buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0), registry=r,
        )  # fmt: skip
        self.mesh_reads = Counter(
            "meshprobe_mesh_reads", "Reads of the mesh config (the first, then one per batch of changes).",
            registry=r,
        )  # fmt: skip
        self.build = Gauge("meshprobe_build_info", "meshprobe's and istiod's versions (value 1).",
                           ["version", "istio_version"], registry=r)  # fmt: skip
        self._version = version
        self.set_istio_version(istio_version)
        self._current: dict[str, Verdict] = {}

    def set_istio_version(self, istio_version: str | None) -> None:
        self.build.clear()
        self.build.labels(version=self._version, istio_version=istio_version or "unknown").set(1)

    def record(self, verdicts: Iterable[Verdict], now: float) -> list[tuple[Verdict | None, Verdict]]:
        """Apply one cycle's verdicts; return the (previous, new) pairs whose verdict changed
        (previous ``None``: the target's first verdict)."""
        changes: list[tuple[Verdict | None, Verdict]] = []
        for v in verdicts:
            signature = v.signature if v.signature in self.signatures else "PROBE_ERROR"
            code = v.code if v.code in self.codes else NO_CODE
            self.success.labels(v.target).set(1 if v.passed else 0)
            self.duration.labels(v.target).set(v.duration)
            for name, seconds in v.phases:
                if name in PHASE_NAMES:
                    self.phase.labels(v.target, name).observe(seconds)
            if not v.passed:
                self.failures.labels(v.target).inc()
            before = self._current.get(v.target)
            if before is None or before.key != v.key:
                if before is not None:
                    self._remove_verdict(before)
                self.verdict.labels(v.target, signature, code).set(1)
                self.changed.labels(v.target).set(now)
                changes.append((before, v))
            self._current[v.target] = v
        return changes

    def forget(self, targets: Iterable[str]) -> None:
        """Drop every series of targets no longer watched (a ConfigMap edit removed them)."""
        for target in targets:
            before = self._current.pop(target, None)
            if before is not None:
                self._remove_verdict(before)
            for metric in (self.success, self.duration, self.changed, self.failures):
                _remove(metric, target)
            for name in PHASE_NAMES:
                _remove(self.phase, target, name)

    def _remove_verdict(self, v: Verdict) -> None:
        signature = v.signature if v.signature in self.signatures else "PROBE_ERROR"
        code = v.code if v.code in self.codes else NO_CODE
        _remove(self.verdict, v.target, signature, code)

    def scrape(self) -> bytes:
        """The text exposition format, as ``/metrics`` serves it."""
        return generate_latest(self.registry)


def _remove(metric: Gauge | Counter | Histogram, *labels: str) -> None:
    with contextlib.suppress(KeyError):
        metric.remove(*labels)
