"""Text rendering of a `diag.report.Report` (SPEC §4 "text"): a header with the source and the
effective mode, one line per target (✓/✗, signature or predicted verdict, decision, time), then a
panel per failed target with each diagnosis, its evidence and the fix YAML (syntax-highlighted),
then config findings.

Colour follows Rich's console detection: none when ``NO_COLOR`` is set or stdout is not a TTY.
`report_text(report, width)` gives the same output as a string (golden tests).
"""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.syntax import Syntax
from rich.text import Text

from diag.report import Report, TargetResult, unique
from diag.rules.base import Diagnosis

LEVEL_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def print_report(report: Report, *, title: str = "meshprobe", console: Console | None = None) -> None:
    """Print to stdout (or ``console``)."""
    out = console or Console(highlight=False)
    for renderable in _renderables(report, title):
        out.print(renderable)


def report_text(report: Report, *, title: str = "meshprobe", width: int = 100, color: bool = False) -> str:
    """The text report as a string at a fixed width."""
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=width,
        force_terminal=color,
        no_color=not color,
        color_system="standard" if color else None,
        highlight=False,
    )
    print_report(report, title=title, console=console)
    return buffer.getvalue()


def _renderables(report: Report, title: str) -> list[Any]:
    items: list[Any] = [_header(report, title)]
    items.extend(_target_line(t) for t in report.targets)
    for target in report.targets:
        if target.outcome != "pass" and unique(target.diagnoses):
            items.append(_panel(target))
        elif target.outcome != "pass":
            items.append(Text(f"  {target.target}: failed, no diagnosis (see the evidence with -o json)"))
    if report.findings:
        items.append(Text("config findings", style="bold"))
        items.extend(_finding_line(f) for f in report.findings)
    summary = report.to_json()["summary"]
    if report.targets:
        items.append(Text(f"{summary['passed']} passed, {summary['failed']} failed", style="bold"))
    else:
        items.append(
            Text(f"{len(report.findings)} findings" if report.findings else "no findings", style="bold")
        )
    return items


def _header(report: Report, title: str) -> Text:
    src, mesh = report.source, report.mesh
    line = Text(title, style="bold")
    if report.targets:
        line.append(f"  namespace {src.namespace} · {src.dataplane}")
    line.append(
        f" · mode {mesh.outbound_policy}" if report.targets else f"  mesh mode {mesh.outbound_policy}"
    )
    if mesh.source:
        line.append(f" ({mesh.source})")
    return line


def _target_line(target: TargetResult) -> Text:
    ok = target.outcome == "pass"
    line = Text("✓ " if ok else "✗ ", style="green" if ok else "red")
    line.append(target.url or target.target)
    if target.expect != "allowed":
        line.append(f"  expect {target.expect}")
    if target.observed is not None:
        line.append(f"  {target.observed.signature.value}", style="bold")
        line.append(f"  {target.observed.elapsed:.2f}s")
    if target.predicted is not None:
        line.append(f"  predicted {target.predicted.verdict} → {target.predicted.envoy}")
    if target.actual is not None:
        line.append(f"  live → {target.actual.envoy}")
    codes = [d.code for d in unique(target.diagnoses) if d.level != "info"]
    if codes:
        line.append("  " + " ".join(codes), style="bold")
    return line


def _panel(target: TargetResult) -> Panel:
    parts: list[Any] = []
    shown: dict[str, str] = {}  # fix YAML -> the code that showed it first
    for d in unique(target.diagnoses):
        parts.extend(_diagnosis(d, shown))
    return Panel(Group(*parts), title=f"✗ {target.target}", title_align="left", border_style="red")


def _diagnosis(d: Diagnosis, shown: dict[str, str]) -> list[Any]:
    head = Text(f"{d.code} {d.name}", style=LEVEL_STYLE.get(d.level, ""))
    head.append(f" ({d.level})")
    out: list[Any] = [head, Text(d.message)]
    for line in d.evidence:
        out.append(Text(f"  • {line}", style="dim"))
    if d.resources:
        out.append(Text("  resources: " + ", ".join(sorted(set(d.resources)))))
    if d.fix is not None and d.fix.yaml in shown:
        out.append(Text(f"  fix: the same as for {shown[d.fix.yaml]} above", style="green"))
    elif d.fix is not None:
        shown[d.fix.yaml] = d.code
        out.append(Text(f"  fix: {d.fix.summary}", style="green"))
        out.append(Syntax(d.fix.yaml.rstrip("\n"), "yaml", theme="ansi_dark", background_color="default"))
    out.append(Text(""))
    return out


def _finding_line(d: Diagnosis) -> Text:
    line = Text(f"  {d.code} ", style=LEVEL_STYLE.get(d.level, ""))
    line.append(f"{d.name}: {d.message}")
    if d.istio_code:
        line.append(f" [{d.istio_code}]")
    return line
