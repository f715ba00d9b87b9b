"""``accept_4xx``: a preset's HTTP(S) target that reaches its origin passes even when the origin
answers 4xx — in the plan, in the probe's own verdict and exit code, and in explain's report
(outcome, no MP0202) — while Envoy's own 4xx replies and an origin's 5xx still fail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diag.commands.explain import run as explain
from diag.presets import Preset
from probes.model import HttpEvidence, ProbeResult, Protocol, Signature, TargetSpec, accepted, to_json
from probes.options import ProbeOptions
from probes.plan import Plan, PlanError, PlannedTarget, load_plan, plan_to_json
from probes.runner import exit_code, met_expectation, run_plan
from tests.probes import servers
from tests.probes.servers import Reply

REG = "registry.lab.example"


def _result(
    signature: Signature, status: int | None, *, accept: bool, expect: str | None = None
) -> ProbeResult:
    spec = TargetSpec("https://x.lab.example/", Protocol.HTTPS, "x.lab.example", 443, accept_4xx=accept)
    return ProbeResult(spec, signature, http=HttpEvidence(status=status) if status else None, expect=expect)


@pytest.mark.parametrize(
    ("signature", "status", "accept", "expected"),
    [
        (Signature.OK, 200, False, True),
        (Signature.HTTP_STATUS, 401, False, False),
        (Signature.HTTP_STATUS, 401, True, True),
        (Signature.HTTP_STATUS, 404, True, True),
        (Signature.HTTP_STATUS, 500, True, False),  # the origin's own error is not "reached as asked"
        (Signature.ENVOY_404_NR, 404, True, False),  # Envoy's reply, not the origin's
        (Signature.ENVOY_403_RBAC, 403, True, False),
        (Signature.RESET_BEFORE_RESPONSE, None, True, False),
    ],
)
def test_accepted(signature: Signature, status: int | None, accept: bool, expected: bool) -> None:
    result = _result(signature, status, accept=accept)
    assert accepted(result) is expected
    assert met_expectation(result) is expected
    assert met_expectation(_result(signature, status, accept=accept, expect="blocked")) is not expected


def test_plan_carries_accept_4xx_both_ways() -> None:
    text = json.dumps({"targets": [{"target": f"https://{REG}/v2/", "accept_4xx": True}, "a.lab.example"]})
    plan = load_plan(text)
    assert plan.targets == (PlannedTarget(f"https://{REG}/v2/", None, True), PlannedTarget("a.lab.example"))
    assert plan_to_json(plan)["targets"] == [
        {"target": f"https://{REG}/v2/", "accept_4xx": True},
        "a.lab.example",
    ]
    with pytest.raises(PlanError, match="accept_4xx"):
        load_plan(json.dumps({"targets": [{"target": REG, "accept_4xx": "yes"}]}))


def test_preset_plans_its_http_targets_with_accept_4xx() -> None:
    preset = Preset("x", (f"https://{REG}/v2/", f"http://{REG}/", f"tcp://{REG}:22"), (), ())
    assert [t.accept_4xx for t in preset.planned_targets()] == [True, True, False]


def _probe(tmp_path: Path, port: int) -> Path:
    targets = [
        PlannedTarget(f"http://{REG}:{port}/v2/", accept_4xx=True),  # 401 from the origin
        PlannedTarget(f"http://{REG}:{port}/plain", accept_4xx=False),  # 401 without accept_4xx
        PlannedTarget(f"http://{REG}:{port}/broken", accept_4xx=True),  # 500 from the origin
    ]
    options = ProbeOptions(timeout=3.0, resolve={REG: "127.0.0.1"}, sidecar_present=False)
    report = run_plan(Plan(targets=tuple(targets), options=options))
    assert [r.target.accept_4xx for r in report.results] == [True, False, True]
    assert [met_expectation(r) for r in report.results] == [True, False, False]
    assert exit_code(report) == 1
    path = tmp_path / "probe.json"
    path.write_text(json.dumps(to_json(report)))
    return path


def test_probe_and_explain_honour_accept_4xx(tmp_path: Path) -> None:
    routes = {
        ("*", "/v2/"): Reply(401, b'{"errors":[]}', {"x-envoy-upstream-service-time": "3"}),
        ("*", "/plain"): Reply(401, b'{"errors":[]}', {"x-envoy-upstream-service-time": "3"}),
        ("*", "/broken"): Reply(500, b"oops", {"x-envoy-upstream-service-time": "3"}),
    }
    with servers.serve_http(routes) as port:
        results = _probe(tmp_path, port)
        entry = {
            "apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
            "metadata": {"name": "registry", "namespace": "default"},
            "spec": {"hosts": [REG], "exportTo": ["."], "location": "MESH_EXTERNAL", "resolution": "DNS",
                     "ports": [{"number": port, "name": f"http-{port}", "protocol": "HTTP"}]},
        }  # fmt: skip
        config = tmp_path / "entry.yaml"
        config.write_text(json.dumps(entry))
        targets = [f"http://{REG}:{port}/v2/", f"http://{REG}:{port}/plain", f"http://{REG}:{port}/broken"]
        report = explain(targets, [config], mode="REGISTRY_ONLY", results=results)
    v2, plain, broken = report.targets
    assert (v2.outcome, [d.code for d in v2.diagnoses]) == ("pass", [])
    assert plain.outcome == "fail" and "MP0202" in [d.code for d in plain.diagnoses]
    assert broken.outcome == "fail" and "MP0202" in [d.code for d in broken.diagnoses]
    assert report.exit_code == 3  # the failures are the origin's, not the mesh's
