"""A fix that several diagnoses of one target share is printed once in the text report."""

from __future__ import annotations

from pathlib import Path

import pytest

from diag import cli

TOUR = Path(__file__).resolve().parents[2] / "manifests" / "samples" / "tour.yaml"


def test_shared_fix_yaml_is_shown_once(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["explain", "files.lab.example", "--config", str(TOUR), "-n", "shop", "--mode", "REGISTRY_ONLY"]
    assert cli.main(argv) == 1
    text = capsys.readouterr().out
    assert "MP0101" in text and "MP0113" in text
    assert text.count("kind: ServiceEntry") == 1
    assert "fix: the same as for MP0101 of files.lab.example above" in text
