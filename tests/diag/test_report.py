"""The report document: schema conformance (a small validator for the JSON Schema subset
`docs/schema/report.schema.json` uses), determinism, de-duplication and exit codes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from diag.live.path import LivePath
from diag.predict.model import EnvoyPath, Prediction
from diag.report import MeshInfo, Report, SourceInfo, TargetResult, outcome
from diag.rules.base import Diagnosis, Fix
from probes.model import HttpEvidence, Origin, Phases, ProbeResult, Protocol, Signature, TargetSpec

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "schema" / "report.schema.json").read_text())
ANNOTATIONS = {"$schema", "$id", "title", "description", "examples", "$defs"}
TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "null": type(None),
}


def validate(value: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """Errors of `value` against `schema` (the keywords below; anything else is refused)."""
    unknown = (
        set(schema)
        - ANNOTATIONS
        - {
            "type",
            "enum",
            "const",
            "pattern",
            "minLength",
            "minimum",
            "maximum",
            "required",
            "properties",
            "additionalProperties",
            "items",
            "anyOf",
            "$ref",
        }
    )
    assert not unknown, f"validator does not know {unknown} at {path}"
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        return validate(value, SCHEMA["$defs"][name], path)
    if "anyOf" in schema:
        if any(not validate(value, s, path) for s in schema["anyOf"]):
            return []
        return [f"{path}: matches none of anyOf"]
    errors: list[str] = []
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        ok = any(
            isinstance(value, TYPES[t]) and not (t in ("integer", "number") and isinstance(value, bool))
            for t in types
        )
        if not ok:
            return [f"{path}: {value!r} is not {types}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} not in {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        errors.append(f"{path}: {value!r} != {schema['const']!r}")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{path}: {value!r} !~ {schema['pattern']}")
        if len(value) < schema.get("minLength", 0):
            errors.append(f"{path}: too short")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{path}: {value} < {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{path}: {value} > {schema['maximum']}")
    if isinstance(value, dict):
        errors += [f"{path}: missing {k}" for k in schema.get("required", []) if k not in value]
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                errors += validate(item, props[key], f"{path}.{key}")
            elif extra is False:
                errors.append(f"{path}: unexpected {key}")
            elif isinstance(extra, dict):
                errors += validate(item, extra, f"{path}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors += validate(item, schema["items"], f"{path}[{i}]")
    return errors


def _diag(code: str, level: str = "error", message: str = "m", resources: tuple[str, ...] = ()) -> Diagnosis:
    return Diagnosis(
        code, "NoServiceEntry", level, message, resources, ("e",), Fix("add an entry", "kind: ServiceEntry\n")
    )


def _observed(sig: Signature, status: int | None = None) -> ProbeResult:
    spec = TargetSpec("api.example.com", Protocol.HTTPS, "api.example.com", 443, sni="api.example.com")
    http = HttpEvidence(status=status) if status else None
    return ProbeResult(spec, sig, Origin.END_TO_END_TLS, Phases(resolve=0.01, connect=0.02), http=http)


def _report(*targets: TargetResult, findings: tuple[Diagnosis, ...] = ()) -> Report:
    return Report(
        SourceInfo(kind="offline", namespace="apps"),
        MeshInfo("REGISTRY_ONLY", "MeshConfig x", "1.26"),
        targets,
        findings,
    )


PRED = Prediction(
    verdict="blocked",
    envoy="BlackHoleCluster",
    path=EnvoyPath(listener="0.0.0.0_443", filter_chain="PassthroughFilterChain", cluster="BlackHoleCluster"),
    matched=(),
    mode="REGISTRY_ONLY",
)


def _target(
    diags: tuple[Diagnosis, ...] = (), result: str = "fail", obs: ProbeResult | None = None
) -> TargetResult:
    return TargetResult(
        "api.example.com",
        "api.example.com",
        443,
        "https",
        "https://api.example.com:443/",
        "allowed",
        result,
        obs,
        LivePath("cluster", "0.0.0.0_443", "PassthroughFilterChain", cluster="BlackHoleCluster"),
        PRED,
        diags,
    )


def test_a_full_report_validates_against_the_schema() -> None:
    report = _report(
        _target((_diag("MP0101"),), obs=_observed(Signature.RESET_BEFORE_RESPONSE)),
        _target((), "pass", _observed(Signature.OK)),
        findings=(
            Diagnosis(
                "MP0401", "CaptureByTcpEntry", "warning", "w", ("ServiceEntry a/b",), (), None, "IST0134"
            ),
        ),
    )
    doc = report.to_json()
    assert validate(doc, SCHEMA) == []
    assert json.loads(json.dumps(doc)) == doc


def test_the_validator_rejects_bad_documents() -> None:
    doc = _report(_target((_diag("MP0101"),))).to_json()
    bad = json.loads(json.dumps(doc))
    bad["targets"][0]["diagnoses"][0]["code"] = "X1"
    bad["targets"][0]["protocol"] = "ftp"
    del bad["summary"]["by_code"]
    bad["extra"] = 1
    errors = validate(bad, SCHEMA)
    assert len(errors) == 4, errors


def test_deterministic_sorted_and_deduplicated() -> None:
    d1 = _diag("MP0105", resources=("Sidecar a/b",))
    d2 = _diag("MP0101")
    findings = (
        _diag("MP0402", "info", "z"),
        _diag("MP0401", "warning", "b"),
        _diag("MP0401", "warning", "a"),
        _diag("MP0401", "warning", "a"),
    )
    doc = _report(_target((d1, d2, d1)), findings=findings).to_json()
    assert [d["code"] for d in doc["targets"][0]["diagnoses"]] == ["MP0105", "MP0101"]
    assert [(f["code"], f["message"]) for f in doc["findings"]] == [
        ("MP0401", "a"),
        ("MP0401", "b"),
        ("MP0402", "z"),
    ]
    assert doc["summary"] == {
        "passed": 0,
        "failed": 1,
        "by_code": {"MP0101": 1, "MP0105": 1, "MP0401": 2, "MP0402": 1},
    }
    again = _report(_target((d1, d2, d1)), findings=tuple(reversed(findings))).to_json()
    assert json.dumps(doc, sort_keys=True) == json.dumps(again, sort_keys=True)


@pytest.mark.parametrize(
    ("targets", "code"),
    [
        ((_target((), "pass"),), 0),
        ((_target((_diag("MP0101"),)),), 1),
        ((_target((_diag("MP0202"),)), _target((), "pass")), 3),
        ((_target((_diag("MP0201"), _diag("MP0301", "info"))),), 3),
        ((_target((_diag("MP0202"),)), _target((_diag("MP0104", "warning"),))), 1),
        ((_target(()),), 3),
        ((_target((_diag("MP0103", "warning"), _diag("MP0202"))),), 3),
        ((_target((_diag("MP0120", "warning"),)),), 1),
    ],
)
def test_exit_codes(targets: tuple[TargetResult, ...], code: int) -> None:
    assert _report(*targets).exit_code == code


def test_findings_alone_do_not_fail_explain() -> None:
    assert _report(_target((), "pass"), findings=(_diag("MP0401"),)).exit_code == 0


@pytest.mark.parametrize(
    ("expect", "obs", "verdict", "gw", "want"),
    [
        ("allowed", None, "allowed", False, "pass"),
        ("allowed", None, "passthrough", False, "pass"),
        ("allowed", None, "blocked", False, "fail"),
        ("allowed", _observed(Signature.OK), "blocked", False, "pass"),
        ("allowed", _observed(Signature.HTTP_STATUS, 500), "allowed", False, "fail"),
        ("blocked", _observed(Signature.HTTP_STATUS, 404), "blocked", False, "fail"),
        ("blocked", _observed(Signature.RESET_BEFORE_RESPONSE), "allowed", False, "pass"),
        ("blocked", None, "blocked", False, "pass"),
        ("via-gateway", None, "allowed", False, "fail"),
        ("via-gateway", None, "allowed", True, "pass"),
    ],
)
def test_outcome(expect: str, obs: ProbeResult | None, verdict: str, gw: bool, want: str) -> None:
    assert outcome(expect, obs, verdict, gw) == want
