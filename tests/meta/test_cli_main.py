"""`diag.cli.main` turns every way a command can end into the documented exit code, one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import typer

from diag import cli, errors


@pytest.fixture
def scratch_app(monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    app = typer.Typer()

    @app.command()
    def exit_with(code: int) -> None:
        raise typer.Exit(code)

    @app.command()
    def fail_with(kind: str) -> None:
        if kind == "usage":
            raise errors.UsageError("bad target 'x y'")
        if kind == "lab":
            raise errors.LabError("no netns")
        if kind == "interrupt":
            raise KeyboardInterrupt
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(cli, "app", app)
    monkeypatch.delenv("MESHPROBE_DEBUG", raising=False)
    return app


@pytest.mark.parametrize(
    ("argv", "code", "first_line"),
    [
        (["exit-with", "0"], 0, None),
        (["exit-with", "1"], 1, None),
        (["exit-with", "3"], 3, None),
        (["fail-with", "usage"], 2, "error: bad target 'x y'"),
        (["fail-with", "lab"], 4, "error: no netns"),
        (["fail-with", "interrupt"], 130, "error: interrupted"),
        (["fail-with", "other"], 4, "error: internal error: RuntimeError: boom second line"),
        (["no-such-command"], 2, "error: No such command 'no-such-command'. Commands: exit-with, fail-with."),
        (["exit-with", "not-a-number"], 2, None),
    ],
)
def test_exit_codes_and_one_line_errors(
    scratch_app: typer.Typer,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    code: int,
    first_line: str | None,
) -> None:
    assert cli.main(argv) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if first_line is not None:
        assert err.splitlines()[0] == first_line


def test_real_app_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("meshprobe ")
    assert cli.main([]) == 2


def test_an_unknown_command_lists_the_commands_there_are(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["chek", "api.example.com"]) == 2
    first, hint = capsys.readouterr().err.splitlines()
    assert first.startswith("error: No such command 'chek'.")
    for name in ("probe", "explain", "lint", "lab"):
        assert name in first.split("Commands:")[1]
    assert hint == "hint: see `meshprobe --help`"
    assert cli.main(["lab", "upp"]) == 2
    first = capsys.readouterr().err.splitlines()[0]
    assert first.endswith("Commands: up, apply, exec, status, down.")


# Delivers a real SIGINT to the process at the moment `typer` is first imported, i.e. while the
# console script's `from diag.cli import run` is still loading (no timing involved).
SIGINT_DURING_IMPORT = """
import builtins, os, signal, sys
real_import = builtins.__import__
def importing(name, *args, **kwargs):
    if name == "typer":
        builtins.__import__ = real_import
        os.kill(os.getpid(), signal.SIGINT)
    return real_import(name, *args, **kwargs)
builtins.__import__ = importing
from diag.cli import run
run()
"""


# The console script's own code (`from diag.entry import run; run()`), after a marker byte on stdout
# that tells the test the interpreter has started (a Ctrl-C during Python's own start-up, before any
# of meshprobe's code runs, is the interpreter's business).
CONSOLE = "import os, diag; os.write(1, b'>'); from diag.entry import run; run()"


def _console(args: list[str], code: str = CONSOLE) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "MESHPROBE_DEBUG"}
    argv = [sys.executable, "-c", code, *args]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_ctrl_c_while_the_imports_load_prints_one_line_and_exits_130() -> None:
    proc = _console(["--help"], SIGINT_DURING_IMPORT)
    out, err = proc.communicate(timeout=60)
    assert (proc.returncode, err, out) == (130, "error: interrupted\n", "")


@pytest.mark.parametrize("delay", [0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5])
def test_ctrl_c_at_any_moment_never_gives_a_traceback(delay: float) -> None:
    proc = _console(["lint", "--config", "/nonexistent-meshprobe-dir"])
    assert proc.stdout is not None and proc.stdout.read(1) == ">"
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert "Traceback" not in err
    if proc.returncode == 130:
        assert err == "error: interrupted\n"
    else:  # finished before the signal arrived
        assert proc.returncode == 2 and err.startswith("error: "), (proc.returncode, err)
