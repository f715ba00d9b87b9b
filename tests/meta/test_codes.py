"""Meta-tests for diagnosis codes (STYLE.md rule 5): every code in SPEC §4's table has exactly one
rule in `ALL_RULES` with the same name, a YAML test case, and a page under `docs/codes/`; codes
are unique; every rule module cites the Istio behaviour, versions and source; lint codes too."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from diag.rules import ALL_RULES, RULES_BY_CODE

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT.parent / "shared" / "SPEC.md"
CASES = ROOT / "tests" / "diag" / "testdata" / "rules"
DOCS = ROOT / "docs" / "codes"


def spec_codes() -> dict[str, str]:
    """code → name from SPEC §4's table (rows `| MP0101 | NoServiceEntry | ... |`)."""
    text = SPEC.read_text()
    return dict(re.findall(r"^\| (MP0[1-3]\d\d) \| (\w+) \|", text, re.M))


SPEC_CODES = spec_codes()


def test_the_spec_table_was_read() -> None:
    assert len(SPEC_CODES) >= 30
    assert SPEC_CODES["MP0101"] == "NoServiceEntry"


def test_codes_are_unique_and_well_formed() -> None:
    codes = [r.code for r in ALL_RULES]
    assert len(codes) == len(set(codes))
    assert all(re.fullmatch(r"MP0[1-3]\d\d", c) for c in codes)
    assert set(RULES_BY_CODE) == set(codes)


@pytest.mark.parametrize("code", sorted(SPEC_CODES))
def test_every_spec_code_has_rule_case_and_page(code: str) -> None:
    rule = RULES_BY_CODE.get(code)
    assert rule is not None, f"{code} has no rule in ALL_RULES"
    assert rule.name == SPEC_CODES[code]
    assert rule.level in ("error", "warning", "info")
    cases = sorted((CASES / code).glob("*.yaml"))
    assert cases, f"{code} has no test case in {CASES / code}"
    assert any(f"expect: {code}" in c.read_text() for c in cases)
    page = DOCS / f"{code}.md"
    assert page.exists(), f"docs/codes/{code}.md missing"
    text = page.read_text()
    assert text.startswith(f"# {code} {rule.name}\n")
    for section in ("## Symptom", "## Istio behaviour relied on", "## Fix", "## Example"):
        assert section in text, f"{page.name} lacks {section}"


def test_no_rule_without_a_spec_code() -> None:
    assert set(RULES_BY_CODE) <= set(SPEC_CODES)


@pytest.mark.parametrize("rule", ALL_RULES, ids=[r.code for r in ALL_RULES])
def test_rule_modules_cite_behaviour_versions_and_source(rule: object) -> None:
    code = rule.code  # type: ignore[attr-defined]
    module = importlib.import_module(f"diag.rules.{code.lower()}")
    doc = module.__doc__ or ""
    assert doc.startswith(f"{code} {rule.name}"), doc[:60]  # type: ignore[attr-defined]
    assert "Versions:" in doc and "Source:" in doc
    assert "istio" in doc.lower()
    assert module.RULE is rule


def test_non_mesh_codes_are_the_documented_ones() -> None:
    assert {r.code for r in ALL_RULES if not r.mesh} == {"MP0201", "MP0202", "MP0203"}


def test_root_cause_order() -> None:
    order = [r.code for r in ALL_RULES]
    for first in ("MP0115", "MP0105", "MP0104", "MP0103", "MP0114", "MP0107"):
        assert order.index(first) < order.index("MP0101")
    for first in ("MP0107", "MP0112", "MP0114", "MP0118"):
        assert order.index(first) < order.index("MP0202")


def test_lint_codes_are_mp04xx_unique_and_documented() -> None:
    from diag.lint import CODES

    assert all(re.fullmatch(r"MP04\d\d", c) for c in CODES)
    assert not set(CODES) & set(RULES_BY_CODE)
    assert len({c.name for c in CODES.values()}) == len(CODES)
    for code, spec in CODES.items():
        text = (DOCS / f"{code}.md").read_text()
        assert text.startswith(f"# {code} {spec.name}\n")
        for section in ("## Symptom", "## Istio behaviour relied on", "## Fix", "## Example"):
            assert section in text


def test_every_page_belongs_to_a_code() -> None:
    from diag.lint import CODES

    pages = {p.stem for p in DOCS.glob("*.md")}
    assert pages == set(RULES_BY_CODE) | set(CODES)
