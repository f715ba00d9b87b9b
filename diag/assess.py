"""Targets assessed: observed, actual and predicted correlated into one report row each.

The one pipeline behind `meshprobe explain` (offline or from the live cluster), `meshprobe check`
(``build_report``, after the probe pod ran) and `meshprobe watch` (each cycle). It sits after the
model, predictions, live path, rules and report stages and before the commands (docs/model.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from diag.errors import UsageError
from diag.predict.model import Call, Source
from diag.predict.visibility import effective_mode, service_visible
from probes.targets import TargetError, parse_target

if TYPE_CHECKING:  # the rest loads once a report is built, after the probe Job was created (diag/checkrun.py)
    from diag.model.resources import MeshConfig, Resource
    from diag.model.snapshot import Snapshot
    from diag.report import MeshInfo, Report, TargetResult
    from diag.rules.base import Diagnosis
    from probes.model import ProbeReport, ProbeResult, SidecarEvidence, TargetSpec

def assess_targets(
    raw_targets: Sequence[str], snapshot: Snapshot, source: Source, objects: Sequence[Resource],
    probe: ProbeReport | None, results: Path | None, expect: str, dataplane: str,
) -> list[TargetResult]:
    """One report row per target: its prediction, and what the probe saw when ``probe`` is given
    (``results`` names the file it came from, for the error when a target has no result)."""
    from diag.report import assess_target

    invalid_refs = {getattr(m, "ref", "") for m in snapshot.invalid}
    invalid = tuple(o for o in objects if o.ref in invalid_refs)
    specs = parse_targets(raw_targets, snapshot, source)
    calls = tuple(Call(host=s.host, port=s.port, protocol=s.protocol.value, sni=s.sni) for s in specs)
    rows = []
    for index, spec in enumerate(specs):
        observed = find_result(probe, spec) if probe else None
        if probe is not None and observed is None:
            raise UsageError(f"--results {results}: no result for target {spec.raw!r}")
        wanted = observed.expect if observed is not None and observed.expect else expect
        rows.append(assess_target(
            spec, snapshot=snapshot, source=source, expect=wanted,
            observed=observed, sidecar=probe.sidecar if probe else None, dataplane=dataplane,
            address=observed_address(observed), invalid_objects=invalid,
            report_calls=calls[:index] + calls[index + 1:],
        ))  # fmt: skip
    return rows


def live_dns(live: SidecarEvidence | None) -> bool | None:
    """The sidecar's own DNS capture, when the probe saw a sidecar."""
    return live.dns_capture if live is not None and live.present else None


def mesh_info(snapshot: Snapshot, source: Source, live: SidecarEvidence | None) -> MeshInfo:
    """The declared mode and its source; the live catch-all wins when known (docs/model.md, Visibility)."""
    from diag.live.path import effective_mode as live_mode
    from diag.report import MeshInfo

    decided = effective_mode(
        snapshot, source.namespace, source.labels, source.mode_override, source.mesh_mode
    )
    if live is not None and live.config and (observed := live_mode(live.config)) != "UNKNOWN":
        differs = decided.mode != observed
        explained = f"; declared: {decided.mode} from {decided.decided_by}" if differs else ""
        return MeshInfo(observed, f"sidecar catch-all{explained}", live.istio_version)
    return MeshInfo(decided.mode, decided.decided_by, snapshot.istio_version)


def parse_targets(raw: Sequence[str], snapshot: Snapshot, source: Source) -> list[TargetSpec]:
    """Parse targets (docs/targets.md); ``HOST:PORT`` takes the protocol a visible entry declares on
    that port."""
    specs = []
    for item in raw:
        try:
            first = parse_target(item)
            hints = {
                p.number: p.protocol
                for s in snapshot.services_for_host(first.host)
                if service_visible(snapshot, s, source.namespace, source.labels).allowed
                for p in s.ports
                if p.protocol
            }
            specs.append(parse_target(item, hints) if hints else first)
        except TargetError as exc:
            raise UsageError(str(exc)) from None
    return specs


def target_specs(
    raw: Sequence[str], snapshot: Snapshot, namespace: str, labels: dict[str, str]
) -> list[TargetSpec]:
    """Parse targets as explain does, for a source in ``namespace`` with ``labels`` (used by check)."""
    return parse_targets(raw, snapshot, Source(namespace=namespace, labels=labels))


def find_result(report: ProbeReport, spec: TargetSpec) -> ProbeResult | None:
    """The probe's result for a target: by its text first, then by host, port and protocol."""
    for result in report.results:
        if result.target.raw == spec.raw:
            return result
    for result in report.results:
        t = result.target
        if (t.host, t.port, t.protocol) == (spec.host, spec.port, spec.protocol):
            return result
    return None


def observed_address(observed: ProbeResult | None) -> str | None:
    """The address the probe dialled (its TCP peer, else its first DNS answer)."""
    if observed is None:
        return None
    if observed.tcp is not None and observed.tcp.address:
        return observed.tcp.address.rsplit(":", 1)[0].strip("[]")
    if observed.dns is not None and observed.dns.a:
        return observed.dns.a[0]
    return None


def sidecar_json(probe: ProbeReport | None) -> dict[str, Any] | None:
    """The report's ``source.sidecar``: what the probe learnt of its own sidecar."""
    if probe is None or probe.sidecar is None:
        return None
    sc = probe.sidecar
    return {
        "present": sc.present,
        "native": sc.native,
        "ready_after_s": sc.ready_after_s,
        "proxy_version": sc.proxy_version,
        "dns_capture": getattr(sc, "dns_capture", None),
    }


def findings(snapshot: Snapshot, objects: Sequence[Resource]) -> list[Diagnosis]:
    """Objects Istio's validation rejects are left out of predictions: say so (docs/model.md)."""
    from diag.lint.run import invalid_entries

    return invalid_entries(snapshot, objects)


def build_report(
    specs: list[TargetSpec],
    objects: list[Resource],
    mesh: MeshConfig | None,
    *,
    source_kind: str,
    context: str | None,
    namespace: str,
    labels: dict[str, str],
    probe: ProbeReport,
    expect: str,
    dataplane: str,
    notes: list[str],
    native: bool,
    mesh_unknown: bool = False,
    service_account: str | None = None,
    gateway_configs: Any = None,
) -> Report:
    """The report of a live run (``meshprobe check``): the probe's results, the live sidecar's
    config it read, and predictions from the live objects, through the same pipeline as explain.
    ``mesh_unknown``: the mesh config could not be read, so the mesh-wide mode is the sidecar's own
    (its catch-all) rather than a default that would contradict it. ``service_account``: the
    source pod's (its identity at an egress gateway, MP0118). ``gateway_configs``
    (``diag.live.gateway.GatewayConfigs``): read the gateways' own config for ``actual.gateway``."""
    from dataclasses import replace

    from diag.live.path import effective_mode as live_mode
    from diag.model.snapshot import Snapshot
    from diag.report import Report, SourceInfo

    snapshot = Snapshot.build(objects, mesh)
    live = probe.sidecar
    mesh_mode = None
    if mesh_unknown and live is not None and live.config:
        observed = live_mode(live.config)
        mesh_mode = observed if observed != "UNKNOWN" else None
    source = Source(namespace=namespace, labels=labels, dns_capture=live_dns(live), mesh_mode=mesh_mode,
                    istio_version=live.istio_version if live is not None else None,
                    service_account=service_account)  # fmt: skip
    raw = [s.raw for s in specs]
    rows = assess_targets(raw, snapshot, source, objects, probe, None, expect, dataplane)
    if gateway_configs is not None:
        from diag.live.gateway import attach

        rows = attach(rows, specs, snapshot, source, gateway_configs)
        notes = [*notes, *gateway_configs.notes]
    sidecar = sidecar_json(probe)
    if sidecar is not None:
        sidecar = {**sidecar, "native": native}
    report = Report(
        source=SourceInfo(source_kind, namespace, context=context, dataplane=dataplane, sidecar=sidecar),
        mesh=mesh_info(snapshot, source, live),
        targets=tuple(rows),
        findings=tuple(findings(snapshot, objects)),
    )
    return replace(report, notes=tuple(notes))
