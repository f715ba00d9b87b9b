"""Text rendering of a `diag.report.Report`: a header with the source and the effective mode, one
line per target (✓/✗, signature or predicted verdict, decision, time), then a section per group of
failed targets with each diagnosis, its evidence and the fix YAML, then config findings. What is
said is built once (`diag.render.document`); this module draws it in one of two forms:

- on a terminal: Rich panels at the terminal's width, the fix syntax-highlighted;
- piped, or with ``NO_COLOR`` set: plain lines, no box drawing, no wrapping (long lines stay
  long, nothing is cut), and each fix at column 0 after a ``---`` line, so it can be copied into
  ``kubectl apply -f -`` as it is.

`report_text(report, width=..., plain=...)` gives either form as a string (golden tests).
"""

from __future__ import annotations

import io
import os
import sys
from typing import Any

from rich.console import Console, Group
from rich.padding import Padding
from rich.panel import Panel
from rich.syntax import Syntax
from rich.text import Text

from diag.render.document import Block, Line, Section, Yaml, build
from diag.report import Report


def plain_output(console: Console | None = None) -> bool:
    """Plain lines rather than panels: the output is not a terminal, or NO_COLOR is set."""
    if os.environ.get("NO_COLOR"):
        return True
    if console is not None:
        return not console.is_terminal
    return not sys.stdout.isatty()


def print_report(
    report: Report, *, title: str = "meshprobe", console: Console | None = None, verbose: bool = False
) -> None:
    """Print to stdout (or ``console``): panels on a terminal, plain lines otherwise."""
    out = console or Console(highlight=False)
    if plain_output(out):
        out.file.write(plain_text(report, title=title, verbose=verbose))
        out.file.flush()
        return
    _draw(report, out, title=title, verbose=verbose)


def report_text(
    report: Report,
    *,
    title: str = "meshprobe",
    width: int | None = 100,
    color: bool = False,
    plain: bool | None = None,
    verbose: bool = False,
) -> str:
    """The report as a string: the terminal form at ``width`` (``plain=False``), the plain form
    (``plain=True``), or, by default, the form `print_report` would choose for stdout."""
    if plain is None:
        plain = plain_output()
    if plain:
        return plain_text(report, title=title, verbose=verbose)
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=width or 100,
        force_terminal=True,
        no_color=not color,
        color_system="standard" if color else None,
        highlight=False,
        legacy_windows=False,
    )
    _draw(report, console, title=title, verbose=verbose)
    return buffer.getvalue()


def plain_text(report: Report, *, title: str = "meshprobe", verbose: bool = False) -> str:
    """The plain form: every block as unwrapped lines; a section's body indented by two spaces,
    its fixes at column 0."""
    lines: list[str] = []
    was_section = False
    for block in build(report, title=title, verbose=verbose):
        if isinstance(block, Section):
            lines.extend(["", block.title])
            for item in block.body:
                lines.extend(_plain(item, indent=2))
        else:
            if lines and lines[-1] and was_section:
                lines.append("")
            lines.extend(_plain(block))
        was_section = isinstance(block, Section)
    return "\n".join(lines) + "\n"


def _plain(block: Line | Yaml, indent: int = 0) -> list[str]:
    if isinstance(block, Yaml):
        return ["---", *block.text.rstrip("\n").split("\n")]
    return [(" " * indent + block.text).rstrip()]


def _draw(report: Report, console: Console, *, title: str, verbose: bool) -> None:
    for block in build(report, title=title, verbose=verbose):
        console.print(_rich(block))


def _rich(block: Block) -> Any:
    if isinstance(block, Section):
        body = [_rich(item) for item in block.body]
        return Panel(Group(*body), title=block.title, title_align="left", border_style="red")
    if isinstance(block, Yaml):
        return Syntax(block.text.rstrip("\n"), "yaml", theme="ansi_dark", background_color="default")
    text = Text()
    for part, style in block.spans:
        text.append(part, style=style)
    return Padding(text, (0, 0, 0, block.indent)) if block.indent else text
