"""`meshprobe lint`: each MP04xx check on its YAML cases (``testdata/rules/MP04xx``, ``# expect:``
beside the object), a clean config has no findings, ``istio_code`` only where istioctl agrees,
SARIF 2.1.0 shape, JSON against the report schema, exit codes and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diag.cli import main
from diag.lint.run import CODES, sarif, static_findings
from diag.model.loader import load_text
from diag.model.snapshot import Snapshot
from tests.diag.test_report import SCHEMA, validate
from tests.diag.test_rules import DATA, Case, read_case

LINT_CASES = [read_case(p) for p in sorted(DATA.glob("MP04*/*.yaml"))]

CLEAN = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: apps}
spec:
  hosts: [api.example.com]
  exportTo: ["."]
  ports: [{number: 443, name: https, protocol: HTTPS}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: apps}
spec:
  hosts: [db.example.net]
  addresses: [203.0.113.9/32]
  ports: [{number: 5432, name: pg, protocol: TCP}]
  resolution: NONE
"""


def _findings(text: str) -> list:  # type: ignore[type-arg]
    loaded = load_text(text, "case.yaml")
    return static_findings(Snapshot.build(loaded.objects, loaded.mesh), loaded.objects)


@pytest.mark.parametrize("case", LINT_CASES, ids=[c.name for c in LINT_CASES])
def test_lint_case(case: Case) -> None:
    found = _findings(case.text)
    pairs = {(f.code, r) for f in found for r in f.resources}
    for code, ref in case.expect:
        assert (code, ref) in pairs, f"{code} on {ref} missing: {[(f.code, f.resources) for f in found]}"
    unexpected = {f.code for f in found if f.level != "info"} - {c for c, _ in case.expect}
    assert not unexpected, [f.message for f in found]
    if case.header.get("istio-code") == "none":
        assert all(f.istio_code is None for f in found if f.code == case.path.parent.name)


def test_every_lint_code_has_a_case_and_a_page() -> None:
    root = Path(__file__).resolve().parents[2]
    for code, spec in CODES.items():
        assert any(c.path.parent.name == code for c in LINT_CASES), code
        page = root / "docs" / "codes" / f"{code}.md"
        assert page.exists() and page.read_text().startswith(f"# {code} {spec.name}\n"), code


def test_clean_config_has_no_findings() -> None:
    assert _findings(CLEAN) == []


def test_istio_codes_where_istioctl_agrees() -> None:
    found = _findings((DATA / "MP0401" / "tcp-entry-without-address.yaml").read_text())
    assert [(f.code, f.istio_code) for f in found] == [("MP0401", "IST0134")]
    silent = _findings((DATA / "MP0401" / "silent-istioctl-with-status-addresses.yaml").read_text())
    assert [(f.code, f.istio_code) for f in silent] == [("MP0401", None)]
    assert any("IST0134" in e for e in silent[0].evidence)


def test_sarif_shape() -> None:
    found = _findings((DATA / "MP0402" / "http-and-tls-on-one-port.yaml").read_text())
    doc = sarif(found, {"ServiceEntry apps/api-http": "mesh/api.yaml#1"}, "0.1.0")
    assert doc["version"] == "2.1.0" and len(doc["runs"]) == 1
    driver = doc["runs"][0]["tool"]["driver"]
    assert driver["name"] == "meshprobe" and {r["id"] for r in driver["rules"]} == set(CODES)
    (result,) = doc["runs"][0]["results"]
    assert result["ruleId"] == "MP0402" and result["level"] == "warning"
    assert result["properties"] == {"istio_code": "IST0177"}
    uris = [
        loc.get("physicalLocation", {}).get("artifactLocation", {}).get("uri") for loc in result["locations"]
    ]
    assert "mesh/api.yaml" in uris
    assert all(loc["logicalLocations"][0]["kind"] == "resource" for loc in result["locations"])


@pytest.mark.parametrize(("fmt", "check"), [("json", "report"), ("sarif", "sarif"), ("text", "text")])
def test_cli_outputs_and_exit_1(
    fmt: str, check: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "mesh.yaml"
    path.write_text((DATA / "MP0407" / "export-to-other-only.yaml").read_text())
    code = main(["lint", "--config", str(path), "-o", fmt])
    out = capsys.readouterr().out
    assert code == 1
    if check == "report":
        doc = json.loads(out)
        assert validate(doc, SCHEMA) == [] and [f["code"] for f in doc["findings"]] == ["MP0407"]
    elif check == "sarif":
        assert json.loads(out)["runs"][0]["results"][0]["ruleId"] == "MP0407"
    else:
        assert "MP0407 ExportHidesOwnNamespace" in out


def test_cli_exit_0_on_clean_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mesh.yaml"
    path.write_text(CLEAN)
    assert main(["lint", "--config", str(path)]) == 0
    assert "no findings" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["lint", "--kubeconfig", "/nonexistent/kubeconfig"], "/nonexistent/kubeconfig: no such file"),
        (["lint", "--config", "/nonexistent.yaml"], "/nonexistent.yaml"),
        (["lint", "--config", "{bad}"], "bad.yaml"),
        (["lint", "--config", "{bad}", "-o", "xml"], "-o"),
    ],
)
def test_cli_bad_input(
    argv: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("spec: [\n")
    code = main([a.format(bad=bad) for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and needle in err.splitlines()[0]


def test_conflicts_only_within_overlapping_export_scopes() -> None:
    found = _findings((DATA / "MP0402" / "separate-scopes-do-not-conflict.yaml").read_text())
    (conflict,) = [f for f in found if f.code == "MP0402"]
    assert "ServiceEntry tools/api-tls" not in conflict.resources


def test_cli_keeps_going_past_an_unreadable_object(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``ports: [null]`` is an IST0106 finding, not the end of the run; the rest is still linted."""
    (tmp_path / "bad.yaml").write_text(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: broken, namespace: a}\n"
        "spec: {hosts: [x.example.com], ports: [null], resolution: DNS}\n"
    )
    (tmp_path / "wide.yaml").write_text(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: wide, namespace: a}\n"
        "spec: {hosts: ['*.com'], ports: [{number: 443, name: tls, protocol: TLS}], resolution: NONE}\n"
    )
    code = main(["lint", "--config", str(tmp_path), "-o", "json"])
    report = json.loads(capsys.readouterr().out)
    found = {(f["code"], f.get("istio_code")) for f in report["findings"]}
    assert ("MP0403", "IST0106") in found
    assert any(code_ != "MP0403" for code_, _ in found), "the readable entry was linted too"
    assert code == 1
