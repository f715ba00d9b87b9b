"""Every file under manifests/ loads without problems and gives the results its header documents.

A manifest documents its expected results with lines ``# expect: HOST VERDICT [CODE...]``; the
test runs ``meshprobe explain HOST... --config FILE -n NS --mode REGISTRY_ONLY -o json`` (the
namespace is the first Namespace object in the file, else ``default``) and compares.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from diag import cli
from diag.loader import load_paths

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = sorted((ROOT / "manifests").rglob("*.yaml"))
EXPECT = re.compile(r"^#\s*expect:\s*(\S+)\s+(allowed|blocked|passthrough)((?:\s+MP\d{4})*)\s*$", re.M)


def test_there_are_manifests() -> None:
    assert MANIFESTS, "manifests/ is empty"


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_manifest_loads_cleanly(path: Path) -> None:
    result = load_paths([path])
    assert result.problems == () or list(result.problems) == []
    assert result.objects


def _namespace(path: Path) -> str:
    match = re.search(r"kind:\s*Namespace\s*\nmetadata:\s*\n\s+name:\s*(\S+)", path.read_text())
    return match.group(1) if match else "default"


@pytest.mark.parametrize(
    "path", [p for p in MANIFESTS if EXPECT.search(p.read_text())], ids=lambda p: p.name
)
def test_manifest_gives_its_documented_result(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = {m[0]: (m[1], sorted(m[2].split())) for m in EXPECT.findall(path.read_text())}
    argv = ["explain", *expected, "--config", str(path), "-n", _namespace(path)]
    code = cli.main([*argv, "--mode", "REGISTRY_ONLY", "-o", "json"])
    report = json.loads(capsys.readouterr().out)
    got = {}
    for target in report["targets"]:
        codes = {d["code"] for d in target["diagnoses"]} & set(expected[target["host"]][1])
        got[target["host"]] = (target["predicted"]["verdict"], sorted(codes))
    assert got == expected
    assert code == (1 if any(v == "blocked" for v, _ in expected.values()) else 0)
