"""Text rendering of a `probes.model.ProbeReport` (``meshprobe probe -o text``): one table row per
target — target, ✓/✗, signature, time, short evidence — then the report's notes.

A connect to a destination the sidecar captures is labelled "to sidecar": it never proves the
host is reachable: the sidecar accepts every captured connect itself. On a terminal the table
takes the terminal's width (evidence folds, never cut); piped or with ``NO_COLOR`` the report is
plain aligned lines with nothing cut and no box drawing. `probe_report_text` gives either form as
a string (golden tests).
"""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table
from rich.text import Text

from probes.model import ProbeReport, ProbeResult, Signature, met_expectation

EVIDENCE_CHARS = 90


def _http_evidence(result: ProbeResult) -> list[str]:
    http = result.http
    if http is None or http.status is None:
        return []
    parts = [f"HTTP {http.status}"]
    if http.envoy_reason:
        parts.append(f"({http.envoy_reason})")
    if result.origin is not None:
        parts.append(f"from {result.origin.value}")
    return [" ".join(parts)]


def _tls_evidence(result: ProbeResult) -> list[str]:
    tls = result.tls
    if tls is None:
        return []
    parts: list[str] = []
    if tls.version:
        parts.append(tls.version)
    subject = (tls.peer_sans or (tls.peer_subject,))[0] if (tls.peer_sans or tls.peer_subject) else None
    if subject:
        parts.append(f"cert {subject}")
    if tls.verify_error:
        parts.append(f"verify: {tls.verify_error}")
    elif tls.openssl_reason:
        parts.append(tls.openssl_reason)
    return parts


def _tcp_evidence(result: ProbeResult) -> list[str]:
    tcp = result.tcp
    if tcp is None:
        return []
    parts = [f"connect {tcp.address}" + (" to sidecar" if tcp.captured else "")]
    if tcp.banner is not None:
        parts.append(f"banner {tcp.banner[:30]!r}")
    elif tcp.closed_by_peer:
        parts.append("closed after connect")
    elif tcp.silent:
        parts.append("silent (client-first?)")
    return parts


def short_evidence(result: ProbeResult, limit: int | None = EVIDENCE_CHARS) -> str:
    """One line: the evidence that matters most for this signature (cut at ``limit`` characters
    for the terminal table; never cut with ``limit=None``)."""
    parts: list[str] = []
    dns = result.dns
    if dns is not None and result.signature.value.startswith("DNS_"):
        parts.append(f"{dns.rcode or 'no answer'} after {len(dns.names_tried)} name(s)")
    parts += _tcp_evidence(result) if result.http is None or (result.tcp and result.tcp.captured) else []
    parts += _tls_evidence(result) if result.http is None or result.signature is not Signature.OK else []
    parts += _http_evidence(result)
    if result.redirects:
        parts.append(f"{len(result.redirects)} redirect(s)")
    if result.error and not parts:
        parts.append(result.error)
    text = ", ".join(parts)
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def _table(report: ProbeReport) -> Table:
    table = Table(show_edge=False, pad_edge=False)
    longest = max((len(r.target.raw) for r in report.results), default=6)
    table.add_column("target", overflow="fold", min_width=min(longest, 48))
    table.add_column("", no_wrap=True)
    table.add_column("signature", no_wrap=True)
    table.add_column("time", justify="right", no_wrap=True)
    table.add_column("evidence", ratio=1, overflow="fold")
    for result in report.results:
        mark = Text("✓", style="green") if met_expectation(result) else Text("✗", style="bold red")
        if result.expect == "blocked":
            mark.append(" blocked", style="dim")
        elapsed = f"{result.elapsed * 1000:.0f} ms"
        table.add_row(result.target.raw, mark, result.signature.value, elapsed, short_evidence(result))
    return table


def _footer(report: ProbeReport) -> list[tuple[str, str]]:
    out = []
    if report.sidecar is not None:
        sidecar = report.sidecar
        ready = "not ready" if sidecar.ready is False else f"ready after {sidecar.ready_after_s or 0:.1f} s"
        out.append((f"sidecar: {'present' if sidecar.present else 'absent'}, {ready}", "dim"))
    out.extend((f"note: {note}", "dim") for note in report.notes)
    passed = sum(1 for r in report.results if met_expectation(r))
    out.append((f"{passed} passed, {len(report.results) - passed} failed in {report.elapsed:.2f} s", "bold"))
    return out


def plain_probe_text(report: ProbeReport) -> str:
    """The plain form (piped, or NO_COLOR): aligned columns, no box drawing, nothing cut."""
    rows = []
    for result in report.results:
        mark = ("✓" if met_expectation(result) else "✗") + (" blocked" if result.expect == "blocked" else "")
        elapsed = f"{result.elapsed * 1000:.0f} ms"
        rows.append(
            (mark, result.target.raw, result.signature.value, elapsed, short_evidence(result, limit=None))
        )
    widths = [max((len(row[i]) for row in rows), default=0) for i in range(4)]
    lines = []
    for row in rows:
        cells = [
            row[0].ljust(widths[0]),
            row[1].ljust(widths[1]),
            row[2].ljust(widths[2]),
            row[3].rjust(widths[3]),
        ]
        lines.append("  ".join([*cells, row[4]]).rstrip())
    lines.extend(text for text, _ in _footer(report))
    return "\n".join(lines) + "\n"


def print_probe_report(report: ProbeReport, console: Console | None = None) -> None:
    """Print the report: a table at the terminal's width on a TTY, plain lines when piped or with
    NO_COLOR (see `diag.render.report.plain_output`)."""
    from diag.render.report import plain_output

    out = console or Console(highlight=False)
    if plain_output(out):
        out.file.write(plain_probe_text(report))
        out.file.flush()
        return
    _print_table(report, out)


def _print_table(report: ProbeReport, out: Console) -> None:
    out.print(_table(report))
    for text, style in _footer(report):
        out.print(Text(text, style=style))


def probe_report_text(
    report: ProbeReport, *, width: int = 120, color: bool = False, plain: bool = False
) -> str:
    """The text report as a string: the terminal table at a fixed width, or the plain form."""
    if plain:
        return plain_probe_text(report)
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=width,
        force_terminal=True,
        no_color=not color,
        color_system="standard" if color else None,
        highlight=False,
        legacy_windows=False,
    )
    _print_table(report, console)
    return buffer.getvalue()
