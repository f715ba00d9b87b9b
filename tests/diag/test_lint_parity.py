"""Parity with ``istioctl analyze`` for every IST code lint maps (IST0134, IST0177, IST0106).

Each table in ``testdata/parity/<IST code>/`` has the shape of a case istioctl is tested on — its
analyzer testdata (istio/istio ``pkg/config/analysis/analyzers/testdata``, expectations from
``analyzers_test.go``), its validation cases (``pkg/config/validation/validation_test.go``), or a
case reasoned from the analyzer's code — written with example names. Header comments give:

- ``# expect-istio: IST0134 ServiceEntry default/name`` — what istioctl reports (the istioctl
  expectation); a finding carrying that ``istio_code`` must name that object, and no finding may
  carry a checked code (the table's own, and any named in its expectations) for another object;
- ``# expect-meshprobe: MP0401 ServiceEntry default/name`` — a deliberate difference
  (``docs/codes/MP04xx.md``): meshprobe reports the data-plane effect without ``istio_code``.

Precision and recall per code over all tables must be what ``docs/lint-parity.md`` states.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from diag.lint.run import lint_loaded
from diag.model.loader import load_text
from diag.rules.base import Diagnosis

DATA = Path(__file__).parent / "testdata" / "parity"
DOC = Path(__file__).resolve().parents[2] / "docs" / "lint-parity.md"
CODES = ("IST0134", "IST0177", "IST0106")
_ISTIO = re.compile(r"^#\s*expect-istio:\s*(IST\d{4})\s+(.+?)\s*$", re.M)
_MESHPROBE = re.compile(r"^#\s*expect-meshprobe:\s*(MP\d{4})\s+(.+?)\s*$", re.M)


@dataclass
class Table:
    path: Path
    code: str
    istio: set[tuple[str, str]] = field(default_factory=set)
    meshprobe: set[tuple[str, str]] = field(default_factory=set)

    @property
    def name(self) -> str:
        return f"{self.code}/{self.path.stem}"

    @property
    def checked(self) -> set[str]:
        return {self.code} | {c for c, _ in self.istio}


def tables() -> list[Table]:
    out = []
    for path in sorted(DATA.glob("IST*/*.yaml")):
        text = path.read_text()
        table = Table(path, path.parent.name)
        table.istio = {(m.group(1), m.group(2)) for m in _ISTIO.finditer(text)}
        table.meshprobe = {(m.group(1), m.group(2)) for m in _MESHPROBE.finditer(text)}
        out.append(table)
    return out


TABLES = tables()


def findings(table: Table) -> list[Diagnosis]:
    loaded = load_text(table.path.read_text(), table.path.name)
    _, found, fatal = lint_loaded(loaded)
    assert not fatal, fatal
    return found


def reported(table: Table, found: list[Diagnosis]) -> set[tuple[str, str]]:
    """(istio_code, ref) pairs meshprobe claims istioctl reports, for the codes the table checks."""
    return {(f.istio_code, r) for f in found if f.istio_code in table.checked for r in f.resources}


def test_every_code_has_tables() -> None:
    assert {t.code for t in TABLES} == set(CODES)
    for code in CODES:
        assert sum(len(t.istio) for t in TABLES if t.code == code) >= 3, code


@pytest.mark.parametrize("table", TABLES, ids=[t.name for t in TABLES])
def test_table_matches_istioctl(table: Table) -> None:
    found = findings(table)
    got = reported(table, found)
    missing = table.istio - got
    extra = got - table.istio
    assert not missing and not extra, f"missing {sorted(missing)}, extra {sorted(extra)}"
    for code, ref in table.meshprobe:
        named = [f for f in found if f.code == code and ref in f.resources]
        assert named, f"{code} on {ref} missing: {[(f.code, f.resources) for f in found]}"
        assert all(f.istio_code is None for f in named), f"{code} on {ref}: a difference has no istio_code"


def measure() -> dict[str, tuple[int, int, int]]:
    """(true positives, false positives, false negatives) per IST code over every table."""
    counts: dict[str, Counter[str]] = {code: Counter() for code in CODES}
    for table in TABLES:
        got = reported(table, findings(table))
        for code in table.checked:
            expected = {p for p in table.istio if p[0] == code}
            claimed = {p for p in got if p[0] == code}
            counts[code]["tp"] += len(expected & claimed)
            counts[code]["fp"] += len(claimed - expected)
            counts[code]["fn"] += len(expected - claimed)
    return {code: (c["tp"], c["fp"], c["fn"]) for code, c in counts.items()}


def test_precision_and_recall_are_what_the_docs_say() -> None:
    text = DOC.read_text()
    for code, (tp, fp, fn) in measure().items():
        precision = 100.0 * tp / (tp + fp) if tp + fp else 100.0
        recall = 100.0 * tp / (tp + fn) if tp + fn else 100.0
        assert precision >= 95.0 and recall >= 95.0, (code, tp, fp, fn)
        pattern = rf"^\| {code} \| (\d+) \| (\d+) \| (\d+) \| ([\d.]+) % \| ([\d.]+) % \|$"
        row = re.search(pattern, text, re.M)
        assert row, f"no after row for {code} in {DOC.name}"
        assert (int(row.group(1)), int(row.group(2)), int(row.group(3))) == (tp, fp, fn), code
        assert (float(row.group(4)), float(row.group(5))) == (round(precision, 1), round(recall, 1)), code
