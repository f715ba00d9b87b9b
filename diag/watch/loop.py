"""The watch loop: every interval (with jitter), probe the target list from this pod, diagnose
each result with check's engine, and update metrics, logs and Events (docs/watch.md).

A cycle is one probe plan for all targets (run concurrently, each bounded by the probe timeout,
so one failing target never delays the others) and one report through
``diag.assess.build_report``: the same codes as ``meshprobe check``. The prober is a
function from a plan (``meshprobe.plan/v1``) to a ``ProbeReport``: in a pod it is the probe engine
in this process (``probes.runner.run_plan``), behind the pod's own sidecar; tests pass another.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from diag import errors
from diag.cluster import Cluster
from diag.watch.mesh import MeshWatch, configmap_targets
from diag.watch.metrics import WatchMetrics
from diag.watch.notify import Notifier
from diag.watch.verdict import Verdict, verdicts_of
from probes.model import ProbeReport

Prober = Callable[[dict[str, Any]], ProbeReport]


@dataclass(frozen=True)
class WatchOptions:
    """What to probe and how often. ``jitter``: each wait is ``interval`` ± this fraction."""

    targets: tuple[str, ...] = ()
    presets: tuple[str, ...] = ()
    targets_configmap: str | None = None
    interval: float = 30.0
    jitter: float = 0.1
    timeout: float = 5.0
    expect: str = "allowed"
    labels: dict[str, str] = field(default_factory=dict)


def in_process_prober(plan: dict[str, Any]) -> ProbeReport:
    """Probe in this process, behind this pod's sidecar (the watch's own pod is the source)."""
    from probes.plan import plan_from_json
    from probes.runner import run_plan

    return run_plan(plan_from_json(plan))


class Watcher:
    """One watch: ``cycle()`` probes once; ``run(stop)`` cycles until ``stop`` is set."""

    def __init__(
        self,
        cluster: Cluster,
        options: WatchOptions,
        *,
        prober: Prober = in_process_prober,
        pod: tuple[str, str] | None = None,
        out: IO[str] | None = None,
        events: bool = True,
    ) -> None:
        from probes import __version__

        self.cluster = cluster
        self.namespace = cluster.namespace
        self.options = options
        self.prober = prober
        configmaps = (options.targets_configmap,) if options.targets_configmap else ()
        self.mesh = MeshWatch(cluster, self.namespace, configmaps=configmaps)
        self.metrics = WatchMetrics(version=__version__, istio_version=None)
        self.notifier = Notifier(cluster if events else None, pod, out)
        self.ready = threading.Event()
        self.last_cycle_end = 0.0
        self.cycles = 0
        self._targets: tuple[int, list[str]] | None = None  # (mesh generation, targets)
        self._watched: set[str] = set()

    def start(self) -> None:
        self.mesh.start()
        self.metrics.mesh_reads.inc(self.mesh.reads)

    def run(self, stop: threading.Event) -> None:
        """Cycle until ``stop`` is set; a failed cycle is logged and counted, never fatal (the
        loop must outlive an unreachable API or a probe that crashed)."""
        while not stop.is_set():
            started = time.monotonic()
            try:
                self.cycle()
            except Exception as exc:  # any failure: log it, try again next cycle
                self.metrics.cycle_errors.inc()
                message = (
                    exc.message if isinstance(exc, errors.MeshprobeError) else f"{type(exc).__name__}: {exc}"
                )
                self.notifier.log({"time": _now_iso(), "msg": "cycle failed", "error": message})
            stop.wait(max(0.0, self.next_wait() - (time.monotonic() - started)))

    def next_wait(self) -> float:
        spread = self.options.interval * self.options.jitter
        return max(0.5, self.options.interval + random.uniform(-spread, spread))

    def cycle(self) -> list[Verdict]:
        """Probe every target once; returns the verdicts (metrics, logs and Events are updated)."""
        from diag.assess import build_report, target_specs
        from diag.model.loader import load_documents
        from diag.model.snapshot import Snapshot

        started = time.monotonic()
        reads = self.mesh.reads
        live = self.mesh.current()
        self.metrics.mesh_reads.inc(self.mesh.reads - reads)
        loaded = load_documents(live.objects, origin="cluster")
        objects = list(loaded.objects)
        snapshot = Snapshot.build(objects, loaded.mesh)
        raw = self.target_list()
        specs = target_specs(raw, snapshot, self.namespace, dict(self.options.labels))
        probe = self.prober(self._plan(specs))
        report = build_report(
            specs, objects, loaded.mesh, source_kind="pod", context=self.cluster.context,
            namespace=self.namespace, labels=dict(self.options.labels), probe=probe,
            expect=self.options.expect, dataplane="sidecar" if probe.sidecar is not None else "none",
            notes=list(live.notes), native=False, mesh_unknown=live.mesh_unreadable,
        )  # fmt: skip
        verdicts = verdicts_of(report)
        now = time.time()
        self.metrics.set_istio_version(report.mesh.istio_version)
        for before, after in self.metrics.record(verdicts, now):
            self.notifier.changed(before, after, now)
        current = {v.target for v in verdicts}
        self.metrics.forget(self._watched - current)
        self._watched = current
        self.metrics.cycles.inc()
        self.metrics.cycle_seconds.observe(time.monotonic() - started)
        self.cycles += 1
        self.last_cycle_end = time.monotonic()
        self.ready.set()
        return verdicts

    def target_list(self) -> list[str]:
        """Arguments, then presets, then the ConfigMap's (re-read when a watch saw a change)."""
        generation = self.mesh.generation
        if self._targets is not None and self._targets[0] == generation:
            return self._targets[1]
        raw = list(self.options.targets)
        for t in _preset_targets(self.options.presets):
            if t not in raw:
                raw.append(t)
        if self.options.targets_configmap:
            for t in configmap_targets(self.cluster, self.namespace, self.options.targets_configmap):
                if t not in raw:
                    raw.append(t)
        self._targets = (generation, raw)
        return raw

    def _plan(self, specs: list[Any]) -> dict[str, Any]:
        ports = {str(s.port): s.protocol.upper() for s in specs if s.protocol in ("http", "https", "tls")}
        return {
            "schema": "meshprobe.plan/v1",
            "targets": [{"target": s.raw, "expect": self.options.expect} for s in specs],
            "options": {"timeout": self.options.timeout, "port_protocols": ports},
            "sidecar": {"mode": "auto", "ready_timeout": 10.0, "quit": False},
        }

    def healthy(self) -> bool:
        """Alive: a cycle ended within three intervals (or none is due yet)."""
        if not self.cycles:
            return True
        return time.monotonic() - self.last_cycle_end < 3 * self.options.interval + 2 * self.options.timeout


def _preset_targets(presets: tuple[str, ...]) -> list[str]:
    if not presets:
        return []
    from diag.presets import PresetError, expand_preset

    out: list[str] = []
    for spec in presets:
        try:
            preset = expand_preset(spec, env=None)
        except PresetError as exc:
            raise errors.UsageError(str(exc)) from None
        out.extend(p.raw for p in preset.planned_targets())
    return out


def _now_iso() -> str:
    from diag.watch.notify import iso_time

    return iso_time(time.time())
