"""The `meshprobe` command: one Typer app; each command lives in `diag/commands/<name>.py` and
registers itself through an explicit `register(app)` call below (no import-time magic).

Command modules import only typer at module level so that `meshprobe --help` stays fast; the
work (httpx, kubernetes, rich, the lab) is imported inside the command functions.

`main()` is the only place that turns errors into exit codes: a `MeshprobeError` prints one
`error:` line (plus a `hint:` line) and exits with its code; Ctrl-C exits 130 with the one line
`error: interrupted`, even while this module's imports load; an unknown command lists the
commands there are; anything else is an internal error, printed on one line (set
MESHPROBE_DEBUG=1 for the traceback), exit 4.
"""

from __future__ import annotations

import os
import signal


def _interrupted_while_loading(signum: int, frame: object) -> None:
    """Ctrl-C before `main()` runs (the imports below take a few hundred milliseconds): the same
    one line as later, and no traceback. Nothing has been started yet, so there is nothing to
    clean up."""
    os.write(2, b"error: interrupted\n")
    os._exit(130)


try:
    _default_sigint = signal.signal(signal.SIGINT, _interrupted_while_loading)
except ValueError:  # imported outside the main thread: signals are not ours to handle
    _default_sigint = None

import sys  # noqa: E402
from typing import Any  # noqa: E402

import typer  # noqa: E402

from diag import errors  # noqa: E402
from diag.commands import check, cleanup, demo, explain, lab, lint, manifests, presets, probe, watch  # noqa: E402

app = typer.Typer(
    name="meshprobe",
    help="Why can't my pod reach that host? Probe through the Istio sidecar, read its config, explain.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion, --show-completion (typer loads its completion code anyway)
    pretty_exceptions_enable=False,
    # Plain (click) help: typer's Rich help loads rich.markdown/pygments (~0.1 s), which would
    # break the `--help` budget (≤ 1.5x a bare `import typer, rich`; see docs/benchmarks.md).
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from probes import __version__

        typer.echo(f"meshprobe {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """meshprobe: egress diagnosis for Istio meshes."""


check.register(app)
probe.register(app)
explain.register(app)
lint.register(app)
presets.register(app)
lab.register(app)
manifests.register(app)
cleanup.register(app)
demo.register(app)
watch.register(app)

if _default_sigint is not None:  # loaded: from here on Ctrl-C is a KeyboardInterrupt for main()
    signal.signal(signal.SIGINT, _default_sigint)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `meshprobe` and `kubectl-meshprobe`; returns the process exit code."""
    try:
        returned = app(args=argv, prog_name="meshprobe", standalone_mode=False)
    except errors.MeshprobeError as exc:
        _fail(exc.message, exc.hint)
        return exc.exit_code
    except KeyboardInterrupt:
        _fail("interrupted", None)
        return 130
    except SystemExit as exc:  # typer.Exit inside commands
        return int(exc.code or 0) if not isinstance(exc.code, str) else errors.EXIT_USAGE
    except Exception as exc:  # click's (typer's vendored click) usage errors, then the unexpected
        name = type(exc).__name__
        if name == "NoArgsIsHelpError":
            ctx = getattr(exc, "ctx", None)
            sys.stderr.write((ctx.get_help() if ctx is not None else "") + "\n")
            return errors.EXIT_USAGE
        if name == "Exit":
            return int(getattr(exc, "exit_code", 0))
        if name == "Abort":
            _fail("interrupted", None)
            return 130
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            _usage_error(exc)
            return errors.EXIT_USAGE
        if os.environ.get("MESHPROBE_DEBUG"):
            raise
        _fail(f"internal error: {name}: {exc}", "set MESHPROBE_DEBUG=1 for the traceback")
        return errors.EXIT_INFRA
    # With standalone_mode=False, click returns the code of a `typer.Exit(n)` raised in a command,
    # and typer turns Ctrl-C into a silent 130.
    if returned == 130:
        _fail("interrupted", None)
    return returned if isinstance(returned, int) else 0


def _usage_error(exc: Exception) -> None:
    """Click's usage error, plus the commands there are when the command was unknown."""
    message = str(exc.format_message())  # type: ignore[attr-defined]
    ctx: Any = getattr(exc, "ctx", None)
    group: Any = getattr(ctx, "command", None)
    path = getattr(ctx, "command_path", None) or "meshprobe"
    if message.startswith("No such command") and hasattr(group, "list_commands"):
        names = group.list_commands(ctx)
        visible = [n for n in names if not getattr(group.get_command(ctx, n), "hidden", False)]
        message = f"{message} Commands: {', '.join(visible)}."
    _fail(message, f"see `{path} --help`")


def _fail(message: str, hint: str | None) -> None:
    first = " ".join(message.split()) if message else "failed"
    sys.stderr.write(f"error: {first}\n")
    if hint:
        sys.stderr.write(f"hint: {hint}\n")


def run() -> None:
    """Console-script shim: `sys.exit(main())`. A second Ctrl-C while the first one's cleanup runs
    ends the process the same way."""
    try:
        code = main()
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        code = 130
    sys.exit(code)
