"""The runner, the plan format and `python -m probes`: ordering, concurrency, expectations, exit
codes, plan validation, and the sidecar lifecycle around probing (with P2's real-Envoy fixture)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from probes import runner
from probes.cli import main
from probes.model import ProbeReport, ProbeResult, Protocol, Signature, TargetSpec, from_json
from probes.options import ProbeContext, ProbeOptions
from probes.plan import Plan, PlanError, PlannedTarget, SidecarPlan, load_plan, plan_from_json, plan_to_json
from probes.targets import parse_target
from tests.probes import servers
from tests.probes.servers import Reply

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def web() -> Iterator[int]:
    routes = {("*", "/"): Reply(200, b"ok"), ("*", "/slow"): Reply(200, b"ok"), ("*", "/bh"): Reply(502)}
    with servers.serve_http(routes) as port:
        yield port


def test_results_keep_input_order_under_concurrency(web: int) -> None:
    refused = servers.refused_port()
    raws = [f"http://127.0.0.1:{web}/" if i % 3 else f"http://127.0.0.1:{refused}/" for i in range(30)]
    specs = [parse_target(r) for r in raws]
    with ProbeContext(ProbeOptions(timeout=2.0)) as ctx:
        results = runner.run_probes(specs, ctx, concurrency=8)
    assert [r.target.raw for r in results] == raws
    assert [r.signature for r in results] == [
        Signature.OK if i % 3 else Signature.TCP_REFUSED for i in range(30)
    ]


def test_a_crashing_prober_becomes_probe_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(spec: TargetSpec, ctx: ProbeContext) -> ProbeResult:
        raise RuntimeError("bug in a prober")

    monkeypatch.setitem(runner.PROBERS, Protocol.TCP, boom)  # type: ignore[arg-type]
    with ProbeContext(ProbeOptions()) as ctx:
        result = runner.probe_one(parse_target("tcp://127.0.0.1:9"), ctx)
    assert result.signature is Signature.PROBE_ERROR and result.error == "RuntimeError: bug in a prober"


def test_every_protocol_has_a_prober() -> None:
    assert set(runner.PROBERS) == set(Protocol)


@pytest.mark.parametrize(
    ("expect", "signature", "met"),
    [
        (None, Signature.OK, True),
        ("allowed", Signature.ENVOY_BLACKHOLE_502, False),
        ("blocked", Signature.ENVOY_BLACKHOLE_502, True),
        ("blocked", Signature.OK, False),
        ("via-gateway", Signature.OK, True),
    ],
)
def test_expectations(expect: str | None, signature: Signature, met: bool) -> None:
    result = ProbeResult(target=parse_target("x.lab.example"), signature=signature, expect=expect)
    assert runner.met_expectation(result) is met
    report = ProbeReport(schema="s", probe_version="v", results=(result,))
    assert runner.exit_code(report) == (0 if met else 1)


def test_plan_round_trip() -> None:
    plan = Plan(
        targets=(PlannedTarget("a.lab.example"), PlannedTarget("http://b.lab.example/", "blocked")),
        options=ProbeOptions(
            timeout=2.5,
            resolve={"a.lab.example": "10.0.0.1"},
            port_protocols={8080: "HTTP"},
            capture_excluded_ports=(15020,),
        ),
        sidecar=SidecarPlan(mode="off", quit=True, native=False),
        expect="allowed",
    )
    assert plan_from_json(json.loads(json.dumps(plan_to_json(plan)))) == plan


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("not json", "not JSON"),
        ("[]", "must be a JSON object"),
        ('{"targets": "x"}', "'targets' must be a list"),
        ('{"targets": [1]}', "targets[0]"),
        ('{"targets": [], "extra": 1}', "unknown key extra"),
        ('{"targets": [], "schema": "other/v9"}', "schema must be"),
        ('{"targets": [], "options": {"timout": 3}}', "unknown key options.timout"),
        ('{"targets": [], "options": {"timeout": "3"}}', "options.timeout has the wrong type"),
        ('{"targets": [], "options": {"timeout": 0}}', "timeout must be > 0"),
        ('{"targets": [], "options": {"resolve": {"a": "not-an-ip"}}}', "bad option value"),
        ('{"targets": [], "options": {"expect": "maybe"}}', "options.expect must be one of"),
        ('{"targets": [{"target": "a", "expect": "never"}]}', "targets[0].expect"),
        ('{"targets": [], "sidecar": {"mode": "on"}}', "sidecar.mode must be auto or off"),
        ('{"targets": [], "sidecar": {"quit": "yes"}}', "sidecar.quit has the wrong type"),
        ('{"targets": [], "sidecar": {"admin": "localhost"}}', "sidecar.admin must be IP:PORT"),
        ('{"targets": [], "options": {"capture_excluded_cidrs": ["10.0.0.0/33"]}}', "bad option value"),
        ('{"targets": [], "options": {"read_window": -1}}', "read_window must be > 0"),
    ],
)
def test_bad_plans_are_named(document: str, message: str) -> None:
    with pytest.raises(PlanError) as info:
        load_plan(document)
    assert message in str(info.value) and "\n" not in str(info.value)


def _run_cli(args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "probes", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def test_cli_prints_the_report_and_exits_0(web: int) -> None:
    proc = _run_cli(
        [
            f"http://web.lab.example:{web}/",
            "--resolve",
            "web.lab.example:127.0.0.1",
            "--sidecar",
            "off",
            "--timeout",
            "2",
        ]
    )
    assert proc.returncode == 0, proc.stderr
    report = from_json(ProbeReport, json.loads(proc.stdout))
    assert report.schema == "meshprobe.probe/v1" and report.sidecar is None
    (result,) = report.results
    assert result.signature is Signature.OK and result.dns is not None and result.dns.bypassed_pod_dns


def test_cli_exit_1_when_a_target_fails_and_plan_from_stdin(web: int) -> None:
    plan = {
        "targets": [
            f"http://127.0.0.1:{web}/",
            {"target": f"http://127.0.0.1:{web}/bh", "expect": "allowed"},
        ],
        "options": {"timeout": 2},
        "sidecar": {"mode": "off"},
    }
    proc = _run_cli(["--plan", "-", "--compact"], stdin=json.dumps(plan))
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.count("\n") == 1
    data = json.loads(proc.stdout)
    assert [r["signature"] for r in data["results"]] == ["OK", "ENVOY_BLACKHOLE_502"]
    assert data["results"][1]["expect"] == "allowed"
    blocked = {
        **plan,
        "options": {"timeout": 2, "expect": "blocked"},
        "targets": [f"http://127.0.0.1:{web}/bh"],
    }
    assert _run_cli(["--plan", "-"], stdin=json.dumps(blocked)).returncode == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["exa mple.com"], "invalid target 'exa mple.com'"),
        (["ftp://x.lab.example"], "unsupported scheme"),
        ([], "no targets"),
        (["x.lab.example", "--resolve", "nocolon"], "invalid --resolve 'nocolon'"),
        (["x.lab.example", "--resolver", "dns.lab.example"], "invalid --resolver"),
        (["x.lab.example", "--timeout", "0"], "--timeout must be > 0"),
        (["x.lab.example", "--port-protocol", "http"], "invalid --port-protocol"),
        (["--plan", "/nonexistent/plan.json"], "cannot read plan"),
    ],
)
def test_cli_usage_errors_exit_2_with_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("error: ")


def test_cli_bad_flag_value_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["x.lab.example", "--concurrency", "many"]) == 2
    err = capsys.readouterr().err
    assert "invalid int value" in err and err.count("\n") == 1 and err.startswith("error: ")


def test_auto_sidecar_with_nothing_listening_says_so(web: int) -> None:
    plan = Plan(
        targets=(PlannedTarget(f"http://127.0.0.1:{web}/"),),
        options=ProbeOptions(timeout=2),
        sidecar=SidecarPlan(
            admin=f"127.0.0.1:{servers.refused_port()}", agent=f"127.0.0.1:{servers.refused_port()}"
        ),
    )
    started = time.perf_counter()
    report = runner.run_plan(plan)
    assert time.perf_counter() - started < 2.0
    assert report.sidecar is None and any("no sidecar detected" in n for n in report.notes)
    assert report.results[0].tcp is not None and report.results[0].tcp.captured is False


@pytest.mark.lab
def test_auto_sidecar_lifecycle_with_a_real_envoy(tmp_path: Path, web: int) -> None:
    from tests.probes.sidecar_fixtures import agent_emulator, envoy_sidecar

    with envoy_sidecar(tmp_path, opted_in=False) as envoy, agent_emulator(ready_after=0.2) as (agent, state):
        plan = Plan(
            targets=(PlannedTarget(f"http://127.0.0.1:{web}/"), PlannedTarget("tls://api.lab.example:443")),
            options=ProbeOptions(timeout=2, resolve={"api.lab.example": "127.0.0.1"}),
            sidecar=SidecarPlan(
                admin=envoy.admin, agent=agent, status=agent, quit=True, native=False, ready_timeout=5
            ),
        )
        report = runner.run_plan(plan)
        assert state.quit_posts == ["127.0.0.1"]
    evidence = report.sidecar
    assert evidence is not None and evidence.present and evidence.quit_requested
    assert evidence.ready and evidence.ready_after_s is not None  # the agent turned ready after ~0.2 s
    assert evidence.config  # filtered config_dump sections for the targets
    assert report.results[0].signature is Signature.OK
    assert report.results[0].tcp is not None and report.results[0].tcp.captured is False  # loopback


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
PLAN_KEYS = st.sampled_from(
    ["targets", "options", "sidecar", "schema", "timeout", "resolve", "mode", "expect"]
)
PLANISH = st.fixed_dictionaries(
    {},
    optional={
        "targets": st.lists(st.text(max_size=12) | JSON, max_size=3),
        "options": st.dictionaries(
            st.sampled_from([*ProbeOptions.__dataclass_fields__, "expect", "x"]), JSON, max_size=4
        ),
        "sidecar": st.dictionaries(
            st.sampled_from([*SidecarPlan.__dataclass_fields__, "x"]), JSON, max_size=3
        ),
        "schema": st.text(max_size=20) | st.just("meshprobe.plan/v1"),
    },
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(JSON, PLANISH, st.dictionaries(PLAN_KEYS, JSON, max_size=4)))
def test_fuzzed_plans_give_a_plan_or_a_plan_error(document: object) -> None:
    try:
        plan = load_plan(json.dumps(document))
    except PlanError as exc:
        assert str(exc).startswith("plan: ") and "\n" not in str(exc)
        return
    assert isinstance(plan, Plan)
    with ProbeContext(plan.options) as ctx:  # a loaded plan always builds a context
        assert ctx.captured("10.0.0.1", 80) in (True, False, None)
