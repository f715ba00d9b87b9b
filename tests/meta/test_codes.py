"""Meta-tests for diagnosis and lint codes. The published table is
`docs/codes/README.md`; it, the rule registry (`diag.rules.ALL_RULES`, `diag.lint.run.CODES`) and the
pages under `docs/codes/` must agree: every code in the registry has exactly one row (same name,
level and one-line meaning as its page), a YAML test case (diagnosis codes) and a page with the
four sections; codes are unique, and a published code never changes its name or disappears.
Every rule module cites the Istio behaviour, versions and source."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from diag.lint.run import CODES as LINT_CODES
from diag.rules import ALL_RULES, RULES_BY_CODE

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "tests" / "diag" / "testdata" / "rules"
DOCS = ROOT / "docs" / "codes"
TABLE = DOCS / "README.md"
SECTIONS = ("## Symptom", "## Istio behaviour relied on", "## Fix", "## Example")
ROW = re.compile(r"^\| \[(MP0\d{3})\]\((MP0\d{3})\.md\) \| (\w+) \| (error|warning|info) \| (.+) \|$", re.M)

# Codes are stable: once published, a code keeps its name and is never removed or reused.
PUBLISHED = {
    "MP0101": "NoServiceEntry", "MP0102": "PortNotDeclared", "MP0103": "ProtocolMismatch",
    "MP0104": "NotExported", "MP0105": "HiddenBySidecar", "MP0106": "RedirectTargetBlocked",
    "MP0107": "PortCapturedByTcpEntry", "MP0108": "DoubleTls", "MP0109": "IstioMtlsToExternalHost",
    "MP0110": "EntryUnresolvableBySidecar", "MP0111": "WildcardWithDnsResolution",
    "MP0112": "EgressGatewayMisrouted", "MP0113": "HostNameMismatch", "MP0114": "AddressMismatch",
    "MP0115": "OutsideDiscoverySelectors", "MP0116": "TlsOriginationBroken",
    "MP0117": "ServerFirstOnSniffedPort", "MP0118": "DeniedByAuthorizationPolicy",
    "MP0119": "VirtualServiceNoRoute", "MP0120": "SidecarConfigStale", "MP0121": "UnmodelledConfig",
    "MP0201": "DnsFailure", "MP0202": "UpstreamError", "MP0203": "UpstreamUnreachable",
    "MP0204": "BypassedSidecar", "MP0301": "AllowAnyMode", "MP0302": "NoSidecar", "MP0303": "AmbientMode",
    "MP0304": "UnexpectedlyAllowed", "MP0305": "SidecarNotListening",
    "MP0401": "PortCapturedForProxies", "MP0402": "ConflictingProtocols", "MP0403": "InvalidEntry",
    "MP0404": "MixedCaseHost", "MP0405": "MeshInternalExternalHost", "MP0406": "DoubleTlsConfig",
    "MP0407": "ExportHidesOwnNamespace", "MP0408": "OverBroadEgress",
}  # fmt: skip


def table_rows(text: str) -> dict[str, tuple[str, str, str]]:
    """code → (name, level, meaning) from the table's rows; a code listed twice is an error."""
    rows: dict[str, tuple[str, str, str]] = {}
    for code, link, name, level, meaning in ROW.findall(text):
        assert code == link, f"{code} links to {link}.md"
        assert code not in rows, f"{code} has two rows"
        rows[code] = (name, level, meaning.strip())
    return rows


def registry() -> dict[str, tuple[str, str]]:
    """code → (name, level) of every diagnosis rule and lint code."""
    out = {r.code: (r.name, r.level) for r in ALL_RULES}
    out.update({c.code: (c.name, c.level) for c in LINT_CODES.values()})
    return out


ROWS = table_rows(TABLE.read_text())


def test_the_table_was_read() -> None:
    assert len(ROWS) >= 38
    assert ROWS["MP0101"][0] == "NoServiceEntry"


def test_table_and_registry_list_the_same_codes() -> None:
    assert sorted(ROWS) == sorted(registry()), "docs/codes/README.md and the registry differ"


@pytest.mark.parametrize("code", sorted(registry()))
def test_each_registered_code_has_a_matching_row(code: str) -> None:
    name, level = registry()[code]
    assert code in ROWS, f"{code} has no row in docs/codes/README.md"
    assert ROWS[code][:2] == (name, level), f"{code}: row {ROWS[code][:2]} != registry {(name, level)}"
    summary = (DOCS / f"{code}.md").read_text().splitlines()[2]
    assert ROWS[code][2] == summary, f"{code}: the row's meaning differs from its page's first line"


def test_published_codes_keep_their_names() -> None:
    current = registry()
    for code, name in PUBLISHED.items():
        assert code in current, f"{code} {name} was published and must not disappear"
        assert current[code][0] == name, f"{code} was published as {name}"


def test_the_checks_above_can_fail() -> None:
    row = "| [MP0102](MP0102.md) | PortNotDeclared |"
    broken = TABLE.read_text().replace(row, "| [MP0102](MP0102.md) | Other |")
    assert table_rows(broken)["MP0102"][0] == "Other"
    dropped = "\n".join(line for line in TABLE.read_text().splitlines() if "[MP0110]" not in line)
    assert set(registry()) - set(table_rows(dropped)) == {"MP0110"}


def test_codes_are_unique_and_well_formed() -> None:
    codes = [r.code for r in ALL_RULES]
    assert len(codes) == len(set(codes))
    assert all(re.fullmatch(r"MP0[1-3]\d\d", c) for c in codes)
    assert set(RULES_BY_CODE) == set(codes)


@pytest.mark.parametrize("code", sorted(RULES_BY_CODE))
def test_every_diagnosis_code_has_a_case_and_a_page(code: str) -> None:
    rule = RULES_BY_CODE[code]
    assert rule.level in ("error", "warning", "info")
    cases = sorted((CASES / code).glob("*.yaml"))
    assert cases, f"{code} has no test case in {CASES / code}"
    assert any(f"expect: {code}" in c.read_text() for c in cases)
    page = DOCS / f"{code}.md"
    assert page.exists(), f"docs/codes/{code}.md missing"
    text = page.read_text()
    assert text.startswith(f"# {code} {rule.name}\n")
    for section in SECTIONS:
        assert section in text, f"{page.name} lacks {section}"


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
    from diag.lint.run import CODES

    assert all(re.fullmatch(r"MP04\d\d", c) for c in CODES)
    assert not set(CODES) & set(RULES_BY_CODE)
    assert len({c.name for c in CODES.values()}) == len(CODES)
    for code, spec in CODES.items():
        text = (DOCS / f"{code}.md").read_text()
        assert text.startswith(f"# {code} {spec.name}\n")
        for section in SECTIONS:
            assert section in text


def test_every_page_belongs_to_a_code() -> None:
    from diag.lint.run import CODES

    pages = {p.stem for p in DOCS.glob("*.md")} - {"README"}
    assert pages == set(RULES_BY_CODE) | set(CODES)
