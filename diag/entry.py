"""The console scripts' entry point (`meshprobe`, `kubectl-meshprobe`): kept tiny so that its first
statements — a Ctrl-C handler — run before anything heavy is read or compiled. A Ctrl-C while the
CLI loads prints the usual one line and exits 130; once loaded, `diag.cli` handles Ctrl-C itself
(cleanup first)."""

import os
import signal


def _interrupted(signum: int, frame: object) -> None:
    os.write(2, b"error: interrupted\n")
    os._exit(130)


try:
    _previous = signal.signal(signal.SIGINT, _interrupted)
except ValueError:  # not the main thread: signals are not ours to handle
    _previous = None

from diag.cli import main  # noqa: E402

if _previous is not None:
    signal.signal(signal.SIGINT, _previous)


def run() -> None:
    """`sys.exit(main())`, as `diag.cli.run` (a second Ctrl-C during cleanup ends the same way).

    On the way out every object alive is frozen (``gc.freeze``): the process is ending, and the
    interpreter's last collection would otherwise walk everything the imports built (typer,
    pydantic, the kubernetes client, the model) — about 0.05 s of a `check` for nothing. Exit
    handlers still run; only that final collection is skipped."""
    import gc

    from diag.cli import run as cli_run

    try:
        cli_run()
    finally:
        gc.freeze()


__all__ = ["main", "run"]
