"""`diag.cli.main` turns every way a command can end into the documented exit code, one line."""

from __future__ import annotations

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
        (["no-such-command"], 2, "error: No such command 'no-such-command'."),
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
