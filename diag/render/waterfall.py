"""`--verbose` detail for the text report: each target's phase waterfall and evidence, and the
sidecar's own evidence, as plain strings (the report draws them).

The waterfall puts every phase of every target on one time axis (the slowest target's total), so
bars compare across targets: ``resolve``, ``connect``, ``tls``, ``request``, ``first_byte`` in
order, each starting where the previous ended. A connect to a destination the sidecar captures is
labelled "to sidecar": Envoy accepts every captured connect itself, so it never proves that the
host is reachable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from diag.render.probe import short_evidence
from diag.report import TargetResult

PHASES = ("resolve", "connect", "tls", "request", "first_byte")
BAR_CHARS = 32


def axis(targets: Iterable[TargetResult]) -> float:
    """Seconds the axis spans: the longest total of phases (at least 1 ms)."""
    totals = [sum(_durations(t).values()) for t in targets if t.observed is not None]
    return max([0.001, *totals])


def details(target: TargetResult, span: float) -> list[tuple[str, str]]:
    """(text, style) lines under a target: the waterfall, then the evidence."""
    out = [(row, "") for row in bars(target, span)]
    if target.observed is not None:
        evidence = short_evidence(target.observed, limit=None)
        if evidence:
            out.append((f"observed: {evidence}", "dim"))
    if target.actual is not None:
        live = dict(target.actual.as_dict())
        gateway = live.pop("gateway", None)  # the egress gateway's own config (diag.live.gateway)
        out.append((f"live path: {_path(live)}", "dim"))
        if gateway:
            hop = {k: gateway.get(k) for k in ("listener", "filter_chain", "route", "vhost", "cluster")}
            outcome = gateway.get("outcome")
            text = " → ".join(t for t in (_path(hop), outcome if outcome != "cluster" else "") if t)
            out.append((f"gateway live path ({gateway.get('pod')}): {text}", "dim"))
    if target.predicted is not None:
        out.append((f"predicted path: {_path(target.predicted.path.to_json())}", "dim"))
    return out


def bars(target: TargetResult, span: float) -> list[str]:
    """One row per phase that ran: name, bar on the shared axis, milliseconds."""
    durations = _durations(target)
    start = 0.0
    rows = []
    captured = (
        target.observed is not None and target.observed.tcp is not None and target.observed.tcp.captured
    )
    for phase, seconds in durations.items():
        offset = round(start / span * BAR_CHARS)
        width = max(1, round(seconds / span * BAR_CHARS)) if seconds > 0 else 0
        width = min(width, BAR_CHARS - offset) if offset < BAR_CHARS else 0
        bar = " " * offset + "█" * width
        label = "  to sidecar" if phase == "connect" and captured else ""
        rows.append(f"{phase:<10} |{bar:<{BAR_CHARS}}| {seconds * 1000:8.1f} ms{label}")
        start += seconds
    return rows


def sidecar_line(sidecar: Mapping[str, Any]) -> str:
    """The source's sidecar as the probe saw it."""
    if not sidecar.get("present"):
        return "sidecar: none"
    parts = ["present"]
    if sidecar.get("native") is not None:
        parts.append("native" if sidecar["native"] else "regular container")
    if sidecar.get("ready_after_s") is not None:
        parts.append(f"ready after {float(sidecar['ready_after_s']):.1f} s")
    if sidecar.get("proxy_version"):
        parts.append(f"proxy {sidecar['proxy_version']}")
    if sidecar.get("dns_capture") is not None:
        parts.append("DNS capture " + ("on" if sidecar["dns_capture"] else "off"))
    if sidecar.get("uid") is not None:
        parts.append(f"uid/gid {sidecar.get('uid')}/{sidecar.get('gid')}")
    return "sidecar: " + ", ".join(parts)


def _durations(target: TargetResult) -> dict[str, float]:
    if target.observed is None:
        return {}
    phases = target.observed.phases
    return {name: max(0.0, value) for name in PHASES if (value := getattr(phases, name)) is not None}


def _path(path: Mapping[str, Any]) -> str:
    return " → ".join(f"{key} {value}" for key, value in path.items() if value)
