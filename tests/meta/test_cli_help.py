"""The CLI's help and shell completion: every command's `--help` has an Examples section whose
`meshprobe ...` lines parse with that command's own options, and `--show-completion` /
`--install-completion` / the completion protocol work."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from diag import cli

EXAMPLE_LINE = re.compile(r"^\s*(?:Examples?:\s*)?(meshprobe\s.*)$")


def _commands() -> Iterator[tuple[tuple[str, ...], Any]]:
    root = typer.main.get_command(cli.app)
    ctx = root.make_context("meshprobe", [], resilient_parsing=True)
    todo: list[tuple[tuple[str, ...], Any, Any]] = [((), root, ctx)]
    while todo:
        path, group, parent = todo.pop(0)
        for name in group.list_commands(parent):
            command = group.get_command(parent, name)
            yield (*path, name), command
            if hasattr(command, "list_commands"):
                sub = command.make_context(name, [], parent=parent, resilient_parsing=True)
                todo.append(((*path, name), command, sub))


COMMANDS = sorted(path for path, _ in _commands())


def test_the_walk_finds_every_command() -> None:
    assert {("presets",), ("probe",), ("explain",), ("lint",), ("lab",), ("lab", "exec")} <= set(COMMANDS)


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_help_has_examples(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([*path, "--help"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^\s*Examples?:", out, re.MULTILINE), out
    examples = _examples(path)
    assert examples and all(e[1 : 1 + len(path)] == list(path) for e in examples), examples


def _examples(path: tuple[str, ...]) -> list[list[str]]:
    """The `meshprobe ...` lines of a command's help text, as argv (comments, pipes, redirects cut)."""
    command = dict(_commands())[path]
    out = []
    for line in (command.help or "").splitlines():
        found = EXAMPLE_LINE.match(line)
        if found:
            words = shlex.split(found.group(1), comments=True)
            cut = next((i for i, w in enumerate(words) if w in ("|", ">", ">>")), len(words))
            out.append(words[:cut])
    return out


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_examples_parse_with_the_commands_options(path: tuple[str, ...]) -> None:
    command = dict(_commands())[path]
    if hasattr(command, "list_commands"):
        return  # a group's examples are its subcommands' (checked there)
    for argv in _examples(path):
        args = argv[1 + len(path) :]
        command.make_context(" ".join(argv[: 1 + len(path)]), args)  # raises on an unknown option


def test_an_example_with_a_wrong_option_is_caught() -> None:
    command = dict(_commands())[("lint",)]
    with pytest.raises(Exception, match="--no-such-flag"):
        command.make_context("meshprobe lint", ["--no-such-flag"])


# ---- completion ----------------------------------------------------------------------------------


def _meshprobe() -> str:
    return str(Path(sys.executable).with_name("meshprobe"))


def _complete(words: str, cword: int, tmp_path: Path) -> list[str]:
    env = {**os.environ, "COMP_WORDS": words, "COMP_CWORD": str(cword), "XDG_CONFIG_HOME": str(tmp_path)}
    env["_MESHPROBE_COMPLETE"] = "complete_bash"
    done = subprocess.run([_meshprobe()], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_root_help_offers_completion(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "--install-completion" in out and "--show-completion" in out


def test_show_completion_prints_a_bash_script() -> None:
    done = subprocess.run(
        [_meshprobe(), "--show-completion", "bash"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    assert "_MESHPROBE_COMPLETE=complete_bash" in done.stdout and "complete -o default" in done.stdout


def test_completion_completes_commands_options_and_preset_names(tmp_path: Path) -> None:
    assert _complete("meshprobe pre", 1, tmp_path) == ["presets"]
    assert "--output" in _complete("meshprobe presets -", 2, tmp_path)
    assert _complete("meshprobe presets g", 2, tmp_path) == ["git", "ghcr", "go"]


def test_install_completion_writes_the_shells_startup_file(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path), "SHELL": "/bin/bash"}
    done = subprocess.run([_meshprobe(), "--install-completion", "bash"], env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "completion installed" in done.stdout
    assert "meshprobe" in (tmp_path / ".bashrc").read_text()
