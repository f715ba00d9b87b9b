"""What the text report says, before it is drawn: a list of `Line`s, `Yaml` blocks and
`Section`s (one per group of failed targets), built from a `diag.report.Report` without Rich, so
that the terminal form (`diag.render.report`, Rich panels) and the plain form (piped, or with
NO_COLOR: plain lines, no box drawing, no wrapping) say exactly the same things.

Reports stay short with many targets: failed targets whose diagnoses are identical share one
section ("3 targets: a, b, c"); a fix shown once is referred to afterwards ("the same as for
MP0101 of a.example.com above"); past `DETAIL_LIMIT` sections the rest is summed up by code, and
`--fixes-only` or `--write-fixes` give every fix. `verbose` adds, under each target, its phase
waterfall and evidence (`diag.render.waterfall`), and the sidecar's own evidence in the header.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from diag.render import waterfall
from diag.report import Report, TargetResult, unique
from diag.rules.base import Diagnosis

DETAIL_LIMIT = 20  # sections shown in full without --verbose
NAMES_SHOWN = 5  # target names in a section's title
LEVEL_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


@dataclass(frozen=True)
class Line:
    """One line: styled spans (style names are Rich's), indented by ``indent`` spaces."""

    spans: tuple[tuple[str, str], ...]
    indent: int = 0

    @property
    def text(self) -> str:
        return " " * self.indent + "".join(text for text, _ in self.spans)


@dataclass(frozen=True)
class Yaml:
    """A fix, exactly as it applies (never wrapped, never indented)."""

    text: str


@dataclass(frozen=True)
class Section:
    """A group of failed targets with identical diagnoses."""

    title: str
    body: tuple[Line | Yaml, ...]


Block = Line | Yaml | Section


def line(text: str, style: str = "", indent: int = 0) -> Line:
    return Line(((text, style),), indent)


def build(report: Report, *, title: str, verbose: bool = False) -> list[Block]:
    """The report's blocks, in order."""
    blocks: list[Block] = [_header(report, title)]
    if verbose and report.source.sidecar:
        blocks.append(line(waterfall.sidecar_line(report.source.sidecar), "dim"))
    axis = waterfall.axis(report.targets)
    for target in report.targets:
        blocks.append(_target_line(target))
        blocks.extend(line(text, "dim", 4) for text in _prediction_caveats(target))
        if verbose:
            blocks.extend(line(text, style, 4) for text, style in waterfall.details(target, axis))
    groups = failure_groups(report.targets)
    shown = groups if verbose else groups[:DETAIL_LIMIT]
    seen_fixes: dict[str, str] = {}
    blocks.extend(_section(targets, diagnoses, seen_fixes) for targets, diagnoses in shown)
    if len(groups) > len(shown):
        blocks.append(_omitted(groups[len(shown) :]))
    if report.findings:
        blocks.append(line("config findings", "bold"))
        blocks.extend(_finding_line(f) for f in report.findings)
    blocks.extend(line(f"note: {note}", "dim") for note in getattr(report, "notes", ()))
    blocks.append(line(_summary(report), "bold"))
    return blocks


def failure_groups(targets: tuple[TargetResult, ...]) -> list[tuple[list[TargetResult], list[Diagnosis]]]:
    """Failed targets grouped by identical diagnoses (order of first appearance)."""
    groups: dict[tuple[Any, ...], tuple[list[TargetResult], list[Diagnosis]]] = {}
    for target in targets:
        if target.outcome == "pass":
            continue
        diagnoses = unique(target.diagnoses)
        key = tuple(_identity(d) for d in diagnoses)
        groups.setdefault(key, ([], diagnoses))[0].append(target)
    return list(groups.values())


def _identity(d: Diagnosis) -> tuple[Any, ...]:
    return (
        d.code,
        d.level,
        d.message,
        tuple(sorted(set(d.resources))),
        d.evidence,
        d.fix.yaml if d.fix else None,
    )


def _header(report: Report, title: str) -> Line:
    src, mesh = report.source, report.mesh
    spans = [(title, "bold")]
    if report.targets:
        spans.append((f"  namespace {src.namespace} · {src.dataplane} · mode {mesh.outbound_policy}", ""))
    else:
        spans.append((f"  mesh mode {mesh.outbound_policy}", ""))
    if mesh.source:
        spans.append((f" ({mesh.source})", ""))
    return Line(tuple(spans))


def _target_line(target: TargetResult) -> Line:
    ok = target.outcome == "pass"
    spans = [("✓ " if ok else "✗ ", "green" if ok else "red"), (target.url or target.target, "")]
    if target.expect != "allowed":
        spans.append((f"  expect {target.expect}", ""))
    if target.observed is not None:
        spans.append((f"  {target.observed.signature.value}", "bold"))
        spans.append((f"  {target.observed.elapsed:.2f}s", ""))
    if target.predicted is not None:
        spans.append((f"  predicted {target.predicted.verdict} → {target.predicted.envoy}", ""))
        hop = getattr(target.predicted, "gateway", None)
        if hop is not None:  # the egress-gateway hop (diag.predict.gateway)
            inferred = " (inferred)" if hop.inferred else ""
            outcome = hop.reason or hop.cluster or hop.verdict
            spans.append((f"  via gateway {hop.gateway}{inferred} → {outcome}", ""))
    if target.actual is not None:
        spans.append((f"  live → {target.actual.envoy}", ""))
    codes = [d.code for d in unique(target.diagnoses) if d.level != "info"]
    if codes:
        spans.append(("  " + " ".join(codes), "bold"))
    return Line(tuple(spans))


def _prediction_caveats(target: TargetResult) -> list[str]:
    """What the prediction assumed or noted (an address taken from DNS, a route taken without a
    match): shown for every target, passing ones included, since the verdict rests on it."""
    predicted = target.predicted
    if predicted is None:
        return []
    assumed = [f"assumed: {a}" for a in getattr(predicted, "assumptions", ()) or ()]
    return assumed + [f"prediction note: {n}" for n in getattr(predicted, "notes", ()) or ()]


def _section(targets: list[TargetResult], diagnoses: list[Diagnosis], seen_fixes: dict[str, str]) -> Section:
    names = [t.target for t in targets]
    if len(names) == 1:
        title = f"✗ {names[0]}"
    else:
        more = f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else ""
        title = f"✗ {len(names)} targets: {', '.join(names[:NAMES_SHOWN])}{more}"
    body: list[Line | Yaml] = []
    if not diagnoses:
        body.append(line("failed, no diagnosis (see the evidence with -o json or --verbose)"))
    for index, d in enumerate(diagnoses):
        if index:
            body.append(line(""))
        body.extend(_diagnosis(d, names[0], seen_fixes))
    return Section(title, tuple(body))


def _diagnosis(d: Diagnosis, target: str, seen_fixes: dict[str, str]) -> list[Line | Yaml]:
    out: list[Line | Yaml] = [
        Line(((f"{d.code} {d.name}", LEVEL_STYLE.get(d.level, "")), (f" ({d.level})", ""))),
        line(d.message),
    ]
    out.extend(line(f"• {item}", "dim", 2) for item in d.evidence)
    if d.resources:
        out.append(line("resources: " + ", ".join(sorted(set(d.resources))), "", 2))
    if d.fix is not None and d.fix.yaml in seen_fixes:
        out.append(line(f"fix: the same as for {seen_fixes[d.fix.yaml]} above", "green", 2))
    elif d.fix is not None:
        seen_fixes[d.fix.yaml] = f"{d.code} of {target}"
        out.append(line(f"fix: {d.fix.summary}", "green", 2))
        out.append(Yaml(d.fix.yaml if d.fix.yaml.endswith("\n") else d.fix.yaml + "\n"))
    return out


def _omitted(rest: list[tuple[list[TargetResult], list[Diagnosis]]]) -> Line:
    targets = sum(len(targets) for targets, _ in rest)
    codes: Counter[str] = Counter()
    for group_targets, diagnoses in rest:
        for d in diagnoses:
            if d.level != "info":
                codes[d.code] += len(group_targets)
    by_code = ", ".join(f"{code} ×{n}" for code, n in sorted(codes.items()))
    return line(
        f"… {targets} more failed target(s) not shown in detail ({by_code or 'no diagnosis'}): "
        "--verbose shows them all, --fixes-only prints every fix",
        "bold",
    )


def _finding_line(d: Diagnosis) -> Line:
    text = f"{d.name}: {d.message}" + (f" [{d.istio_code}]" if d.istio_code else "")
    return Line(((f"{d.code} ", LEVEL_STYLE.get(d.level, "")), (text, "")), 2)


def _summary(report: Report) -> str:
    if report.targets:
        passed = sum(1 for t in report.targets if t.outcome == "pass")
        return f"{passed} passed, {len(report.targets) - passed} failed"
    return f"{len(report.findings)} findings" if report.findings else "no findings"
