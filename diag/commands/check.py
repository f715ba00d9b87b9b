"""The `meshprobe check` command: probe targets from inside the mesh and explain every failure.

The command line around ``diag.checkrun`` (what a run does for each context and namespace):
flags checked before any cluster call (bad input exits 2), SIGTERM unwinding like Ctrl-C so every
cleanup runs, the reports printed (text, JSON, JUnit) and the exit code. Only typer, the standard
library and the light ``diag.checkrun`` are imported at module level.
"""

from __future__ import annotations

import json
import re
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from diag.checkrun import WORKLOAD_KINDS, Options, run

if TYPE_CHECKING:
    from diag.report import Report

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def register(app: typer.Typer) -> None:
    """Add `meshprobe check` to the app."""
    app.command("check")(check)


def check(
    targets: Annotated[
        list[str] | None, typer.Argument(help="HOST, HOST:PORT, http(s)://..., tls://..., tcp://...")
    ] = None,
    preset: Annotated[
        list[str] | None, typer.Option("--preset", help="A preset's targets (NAME or NAME=URL).")
    ] = None,
    namespace: Annotated[
        list[str] | None, typer.Option("-n", "--namespace", help="Namespace to probe from (repeatable).")
    ] = None,
    context: Annotated[
        list[str] | None, typer.Option("--context", help="Kubeconfig context (repeatable).")
    ] = None,
    kubeconfig: Annotated[str | None, typer.Option("--kubeconfig", help="Path to the kubeconfig.")] = None,
    like: Annotated[
        str | None, typer.Option("--like", help="deploy/NAME or pod/NAME: probe as that workload.")
    ] = None,
    from_pod: Annotated[
        str | None, typer.Option("--from", help="pod/NAME: probe inside that pod (ephemeral container).")
    ] = None,
    image: Annotated[str | None, typer.Option("--image", help="The probe image.")] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Per-phase probe timeout, seconds.")] = 5.0,
    expect: Annotated[str, typer.Option("--expect", help="allowed, blocked or via-gateway.")] = "allowed",
    output: Annotated[str, typer.Option("-o", "--output", help="text, json or junit.")] = "text",
    output_file: Annotated[
        Path | None, typer.Option("--output-file", help="Also write the report here.")
    ] = None,
    write_fixes: Annotated[
        Path | None, typer.Option("--write-fixes", help="Write each fix as a YAML file here.")
    ] = None,
    keep_pod: Annotated[bool, typer.Option("--keep-pod", help="Leave the probe pod for inspection.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", help="Phase waterfall and sidecar evidence.")] = False,
) -> None:
    """Probe targets from a pod in the mesh and explain each failure.

    Example: meshprobe check pypi.example.com github.com:22 -n shop --like deploy/api
    """
    options = Options(
        targets or [],
        preset or [],
        namespace or [],
        context or [],
        kubeconfig,
        like,
        from_pod,
        image,
        timeout,
        expect,
        output,
        keep_pod,
    )
    _validate(options)
    reports = _with_signals(lambda: run(options))
    _emit(reports, output, output_file, write_fixes, verbose)
    raise SystemExit(_exit_code(reports))


def _validate(o: Options) -> None:
    from diag.errors import UsageError
    from probes.targets import TargetError, parse_target

    if not o.targets and not o.presets:
        raise UsageError(
            "no targets: give TARGET... or --preset NAME", hint="e.g. meshprobe check example.com"
        )
    for raw in o.targets:
        try:
            parse_target(raw)
        except TargetError as exc:
            raise UsageError(str(exc)) from None
    for ns in o.namespaces:
        if not DNS_LABEL.match(ns):
            raise UsageError(f"-n {ns!r}: a namespace is a DNS label (lower-case letters, digits, '-')")
    if o.expect not in ("allowed", "blocked", "via-gateway"):
        raise UsageError(f"--expect must be allowed, blocked or via-gateway, not {o.expect!r}")
    if o.output not in ("text", "json", "junit"):
        raise UsageError(f"-o must be text, json or junit, not {o.output!r}")
    if not 0 < o.timeout <= 300:
        raise UsageError("--timeout must be between 0 and 300 seconds")
    if o.like and o.from_pod:
        raise UsageError("--like and --from are mutually exclusive")
    for flag, value in (("--like", o.like), ("--from", o.from_pod)):
        if value is not None:
            kind, _, name = value.partition("/")
            if (
                kind.lower() not in WORKLOAD_KINDS
                or not name
                or (flag == "--from" and kind.lower() not in ("pod", "po"))
            ):
                allowed = "pod/NAME" if flag == "--from" else "deploy/NAME, sts/NAME, ds/NAME or pod/NAME"
                raise UsageError(f"{flag} {value!r}: expected {allowed}")


def _with_signals(work: Callable[[], list[Report]]) -> list[Report]:
    """SIGTERM unwinds like Ctrl-C (SystemExit), so every cleanup runs."""
    if threading.current_thread() is not threading.main_thread():
        return work()

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    old = signal.signal(signal.SIGTERM, on_term)
    try:
        return work()
    finally:
        signal.signal(signal.SIGTERM, old)


def _emit(
    reports: list[Report], output: str, output_file: Path | None, write_fixes: Path | None, verbose: bool
) -> None:
    if output == "json":
        data: Any = reports[0].to_json() if len(reports) == 1 else [r.to_json() for r in reports]
        text = json.dumps(data, indent=2) + "\n"
    elif output == "junit":
        render = _renderer("diag.render.junit", "report_junit", "-o junit")
        text = "\n".join(render(r) for r in reports)
    else:
        from diag.render.report import report_text

        text = ""
        for report in reports:
            title = f"meshprobe check · {report.source.context}/{report.source.namespace}"
            text += report_text(report, title=title, width=_width(), verbose=verbose)
    sys.stdout.write(text)
    if output_file is not None:
        output_file.write_text(text)
    if write_fixes is not None:
        write = _renderer("diag.render.fixes", "write_fixes", "--write-fixes")
        for report in reports:
            write(report, write_fixes)


def _renderer(module: str, name: str, flag: str) -> Callable[..., Any]:
    """A renderer shared with explain, looked up when the flag is used."""
    import importlib

    from diag.errors import UsageError

    try:
        found: Callable[..., Any] = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise UsageError(f"{flag} is not available in this build") from None
    return found


def _width() -> int:
    import shutil

    return shutil.get_terminal_size((100, 24)).columns if sys.stdout.isatty() else 100


def _exit_code(reports: list[Report]) -> int:
    codes = [r.exit_code for r in reports]
    for code in (4, 1, 3):
        if code in codes:
            return code
    return max(codes) if codes else 0
