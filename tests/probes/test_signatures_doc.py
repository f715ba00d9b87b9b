"""docs/signatures.md lists exactly the `Signature` members, and every test it cites exists."""

from __future__ import annotations

import re
from pathlib import Path

from probes.model import Signature

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "signatures.md"


def _rows() -> list[list[str]]:
    rows = []
    for line in DOC.read_text().splitlines():
        if line.startswith("| `"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_doc_table_lists_exactly_the_signatures() -> None:
    documented = [row[0].strip("`") for row in _rows()]
    assert len(documented) == len(set(documented))
    assert set(documented) == {s.value for s in Signature}
    assert documented == [s.value for s in Signature]  # same order as the enum


def test_every_row_is_filled_and_cites_existing_tests() -> None:
    for row in _rows():
        assert len(row) == 4 and all(row), row
        for file, test in re.findall(r"`(test_\w+\.py)::(test_\w+)", row[3]):
            source = (ROOT / "tests" / "probes" / file).read_text()
            assert f"def {test}(" in source, f"{row[0]} cites missing {file}::{test}"
