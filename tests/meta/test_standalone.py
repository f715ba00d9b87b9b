"""The repository stands alone: a clone with nothing beside it collects the whole test suite, and
no tracked file cites notes kept outside the repository (docs and docstrings cite Istio's source
by its path in istio/istio, or a page under `docs/`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Written in pieces so that this file does not match itself: the notes kept beside the project
# (the folder next to the checkout, the contract document and its sections, the reference notes
# and the style notes). None of them travels with a clone, so no tracked file may cite them.
OUTSIDE = (
    "../" + "shared",
    "SPEC" + ".md",
    "SPEC" + " §",
    "reference/" + "istio-",
    "reference/" + "lab-prototype",
    "istio-" + "review §",
    "STYLE" + ".md",
)


def tracked_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
    ).stdout.decode()
    return [p for p in out.split("\0") if p]


def citations(paths: list[str]) -> dict[str, list[str]]:
    """path → the outside references it contains (binary files are skipped)."""
    found: dict[str, list[str]] = {}
    for path in paths:
        try:
            text = (ROOT / path).read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue
        hits = [needle for needle in OUTSIDE if needle in text]
        if hits:
            found[path] = hits
    return found


def test_no_tracked_file_cites_notes_outside_the_repository() -> None:
    offenders = citations(tracked_files())
    assert offenders == {}, f"cite istio/istio paths or docs/ pages instead: {offenders}"


@pytest.mark.parametrize("needle", OUTSIDE)
def test_the_citation_check_can_fail(needle: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "a.md").write_text(f"as the notes say ({needle}3)\n")
    (tmp_path / "b.py").write_text("# nothing outside: docs/model.md, pilot/pkg/networking/core/tls.go\n")
    assert citations(["a.md", "b.py"]) == {"a.md": [needle]}


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_a_clone_with_nothing_beside_it_collects_the_suite(tmp_path: Path) -> None:
    alone = tmp_path / "alone"
    alone.mkdir()
    clone = alone / "meshprobe"
    subprocess.run(
        ["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    assert sorted(p.name for p in alone.iterdir()) == ["meshprobe"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["PYTHONPATH"] = str(clone)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=clone, env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    tail = (done.stdout + done.stderr)[-3000:]
    assert done.returncode == 0, tail
    assert " collected" in done.stdout or "tests collected" in done.stdout, tail
    assert "error" not in done.stdout.lower().splitlines()[-1], tail
