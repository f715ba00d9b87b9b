"""The probe runner: one registry of probers, many targets concurrently, the sidecar around them.

    PROBERS[protocol](spec, ctx) -> ProbeResult      one prober per protocol, one signature

`run_probes` runs specs on a bounded thread pool (``concurrency`` workers; results keep the
input order). Everything expensive is shared through one `ProbeContext` (SSL contexts, the
resolver, one HTTP client): a probe allocates only its socket, its TLS session and its result.

`run_plan` is what ``python -m probes`` does (docs/probe-pod.md): with ``sidecar.mode == "auto"``
it detects the sidecar (`probes.sidecar.detect`), waits (bounded) for readiness, snapshots the
attribution counters, probes, collects the sidecar's evidence (deltas are attributed only when the
probes ran alone, i.e. one at a time) and, when asked, requests quit. ``off`` leaves it alone.
"""

from __future__ import annotations

import dataclasses
import datetime
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from probes import __version__, http, sidecar, tcp, tls
from probes.model import (
    PROBE_SCHEMA,
    ProbeReport,
    ProbeResult,
    Protocol,
    SidecarEvidence,
    Signature,
    TargetSpec,
)
from probes.model import met_expectation as met_expectation  # re-exported: where callers have found it
from probes.options import ProbeContext
from probes.plan import Plan, SidecarPlan
from probes.targets import parse_target

Prober = Callable[[TargetSpec, ProbeContext], ProbeResult]

PROBERS: Mapping[Protocol, Prober] = {
    Protocol.HTTP: http.probe,
    Protocol.HTTPS: http.probe,
    Protocol.TLS: tls.probe,
    Protocol.TCP: tcp.probe,
}
MAX_CONCURRENCY = 256


def probe_one(spec: TargetSpec, ctx: ProbeContext) -> ProbeResult:
    """Run the prober for ``spec``; a bug or a local failure becomes PROBE_ERROR, never an exception."""
    started = time.perf_counter()
    try:
        return PROBERS[spec.protocol](spec, ctx)
    except Exception as exc:  # the probe must report, not crash, whatever happened
        return ProbeResult(
            target=spec,
            signature=Signature.PROBE_ERROR,
            error=f"{type(exc).__name__}: {exc}"[:300],
            error_class=type(exc).__qualname__,
            elapsed=time.perf_counter() - started,
        )


def run_probes(specs: Sequence[TargetSpec], ctx: ProbeContext, concurrency: int) -> list[ProbeResult]:
    """Probe every spec with at most ``concurrency`` at a time; results in input order."""
    workers = max(1, min(concurrency, MAX_CONCURRENCY, len(specs)))
    if workers == 1:
        return [probe_one(spec, ctx) for spec in specs]
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="probe")
    try:
        return list(pool.map(lambda spec: probe_one(spec, ctx), specs))
    except BaseException:  # Ctrl-C: drop the queued probes, wait only for the running ones
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True)


def exit_code(report: ProbeReport) -> int:
    """0 when every target met its expectation, else 1 (``python -m probes``)."""
    return 0 if all(met_expectation(r) for r in report.results) else 1


@dataclasses.dataclass
class _SidecarSession:
    plan: SidecarPlan
    present: bool = False
    ready_after: float | None = None
    before: sidecar.CounterSnapshot | None = None
    notes: list[str] = dataclasses.field(default_factory=list)

    def start(self, specs: Sequence[TargetSpec]) -> None:
        self.present = sidecar.detect(self.plan.admin, timeout=1.0, agent=self.plan.agent)
        if not self.present:
            return
        self.ready_after = sidecar.wait_ready(self.plan.ready_timeout, agent=self.plan.agent)
        if self.ready_after is None:
            self.notes.append(f"sidecar not ready after {self.plan.ready_timeout:g} s: probing anyway")
        self.before = sidecar.snapshot_counters(specs, admin=self.plan.admin)

    def finish(self, results: Sequence[ProbeResult], ran_alone: bool) -> SidecarEvidence:
        evidence = sidecar.collect(
            results,
            ran_alone=ran_alone,
            before=self.before,
            admin=self.plan.admin,
            timeout=self.plan.collect_timeout,
            ready_after_s=self.ready_after,
            native=self.plan.native,
        )
        if self.plan.quit:
            evidence = sidecar.record_quit(
                evidence, sidecar.request_quit(self.plan.native, status=self.plan.status)
            )
        return evidence


def run_plan(plan: Plan, specs: Sequence[TargetSpec] | None = None) -> ProbeReport:
    """Probe a plan's targets (parsed already, or parsed here: `TargetError` on a bad one)."""
    started_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    started = time.perf_counter()
    options = plan.options
    if specs is None:
        specs = [parse_target(t.raw, options.port_protocols) for t in plan.targets]
    if len(plan.targets) == len(specs):
        specs = [
            dataclasses.replace(s, accept_4xx=True) if t.accept_4xx else s
            for s, t in zip(specs, plan.targets, strict=True)
        ]
    expectations = [t.expect or plan.expect for t in plan.targets] if len(plan.targets) == len(specs) else []
    session = _SidecarSession(plan.sidecar) if plan.sidecar.mode == "auto" else None
    if session is not None:
        session.start(specs)
        if options.sidecar_present is None:
            options = dataclasses.replace(options, sidecar_present=session.present)
    with ProbeContext(options) as ctx:
        results = run_probes(specs, ctx, options.concurrency)
    if expectations:
        results = [dataclasses.replace(r, expect=e) for r, e in zip(results, expectations, strict=True)]
    evidence = None
    notes = list(session.notes) if session else []
    if session is not None and session.present:
        ran_alone = options.concurrency == 1 or len(specs) == 1
        evidence = session.finish(results, ran_alone)
    elif session is not None:
        notes.append("no sidecar detected (Envoy admin and the agent's readiness port did not answer)")
    return ProbeReport(
        schema=PROBE_SCHEMA,
        probe_version=__version__,
        results=tuple(results),
        sidecar=evidence,
        started_at=started_at,
        elapsed=time.perf_counter() - started,
        concurrency=max(1, min(options.concurrency, MAX_CONCURRENCY, len(specs) or 1)),
        notes=tuple(notes),
    )
