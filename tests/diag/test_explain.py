"""`meshprobe explain`: flags and bad input (exit 2, one line), JSON that validates against the
schema, exit codes, correlation with a saved probe result, and the text report (golden, fixed
width, no colour)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diag.cli import main
from diag.commands.explain import run
from diag.render.report import report_text
from probes.model import (
    PROBE_SCHEMA,
    HttpEvidence,
    Origin,
    ProbeReport,
    ProbeResult,
    Protocol,
    SidecarEvidence,
    Signature,
    TargetSpec,
    to_json,
)
from tests.diag.test_report import SCHEMA, validate

ENVOY = Path(__file__).parent / "testdata" / "envoy"

CONFIG = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: tools}
spec:
  hosts: [api.example.com]
  exportTo: ["."]
  ports: [{number: 443, name: https, protocol: HTTPS}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: pkg, namespace: apps}
spec:
  hosts: [pkgindex.example]
  exportTo: ["."]
  ports: [{number: 443, name: https, protocol: HTTPS}]
  resolution: DNS
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "mesh.yaml"
    path.write_text(CONFIG)
    return path


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["explain", "api.example.com", "--kubeconfig", "/nonexistent/kc"], "/nonexistent/kc: no such file"),
        (["explain", "api.example.com", "--config", "/nonexistent/x.yaml"], "/nonexistent/x.yaml"),
        (["explain", "bad target", "--config", "{cfg}"], "bad target"),
        (["explain", "api.example.com", "--config", "{cfg}", "--mode", "SOMETIMES"], "--mode"),
        (
            [
                "explain",
                "api.example.com",
                "--config",
                "{cfg}",
                "--mode",
                "ALLOW_ANY",
                "--mesh-config",
                "{cfg}",
            ],
            "mutually exclusive",
        ),
        (["explain", "api.example.com", "--config", "{cfg}", "--labels", "novalue"], "--labels"),
        (["explain", "api.example.com", "--config", "{cfg}", "-o", "yaml"], "-o"),
        (["explain", "api.example.com", "--config", "{cfg}", "--results", "{cfg}"], "not JSON"),
        (["explain", "api.example.com", "--config", "{bad}"], "bad.yaml"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(
    argv: list[str], needle: str, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [\n")
    argv = [a.format(cfg=config, bad=bad) for a in argv]
    code, out, err = _run(argv, capsys)
    assert code == 2
    assert err.startswith("error: ") and needle in err.splitlines()[0]
    assert "Traceback" not in err + out


def test_json_report_validates_and_exit_1(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        [
            "explain",
            "api.example.com",
            "pkgindex.example",
            "--config",
            str(config),
            "-n",
            "apps",
            "--mode",
            "REGISTRY_ONLY",
            "-o",
            "json",
        ],
        capsys,
    )
    doc = json.loads(out)
    assert validate(doc, SCHEMA) == []
    assert code == 1
    api, pkg = doc["targets"]
    assert [d["code"] for d in api["diagnoses"]] == ["MP0104"]
    assert api["predicted"]["envoy"] == "BlackHoleCluster" and api["actual"] is None
    assert pkg["outcome"] == "pass" and pkg["diagnoses"] == []
    assert doc["mesh"] == {"outbound_policy": "REGISTRY_ONLY", "from": "--mode", "istio_version": None}
    assert doc["summary"] == {"passed": 1, "failed": 1, "by_code": {"MP0104": 1}}


def test_exit_0_when_everything_meets_expectations(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = _run(
        ["explain", "pkgindex.example", "--config", str(config), "-n", "apps", "--mode", "REGISTRY_ONLY"],
        capsys,
    )
    assert code == 0
    code, _, _ = _run(
        [
            "explain",
            "nothing.example.org",
            "--config",
            str(config),
            "-n",
            "apps",
            "--mode",
            "REGISTRY_ONLY",
            "--expect",
            "blocked",
        ],
        capsys,
    )
    assert code == 0


def _probe_report(tmp_path: Path) -> Path:
    import yaml

    static = yaml.safe_load((ENVOY / "main-REGISTRY_ONLY.yaml").read_text())["static_resources"]
    spec = TargetSpec(
        "pkgindex.example",
        Protocol.HTTPS,
        "pkgindex.example",
        443,
        url="https://pkgindex.example:443/",
        sni="pkgindex.example",
    )
    other = TargetSpec(
        "api.example.com",
        Protocol.HTTPS,
        "api.example.com",
        443,
        url="https://api.example.com:443/",
        sni="api.example.com",
    )
    report = ProbeReport(
        PROBE_SCHEMA,
        "0.1.0",
        (
            ProbeResult(spec, Signature.OK, Origin.END_TO_END_TLS, http=HttpEvidence(status=200)),
            ProbeResult(other, Signature.RESET_BEFORE_RESPONSE, None),
        ),
        SidecarEvidence(
            present=True, config={"listeners": static["listeners"], "clusters": static["clusters"]}
        ),
    )
    path = tmp_path / "results.json"
    path.write_text(json.dumps(to_json(report)))
    return path


def test_results_are_correlated_with_the_live_path(config: Path, tmp_path: Path) -> None:
    report = run(
        ["pkgindex.example", "api.example.com"], [config], namespace="apps", results=_probe_report(tmp_path)
    )
    pkg, api = report.targets
    assert pkg.observed is not None and pkg.observed.signature is Signature.OK and pkg.outcome == "pass"
    assert pkg.actual is not None and pkg.actual.cluster == "outbound|443||pkgindex.example"
    assert api.actual is not None and api.actual.cluster == "BlackHoleCluster"
    assert api.outcome == "fail"
    assert report.mesh.outbound_policy == "REGISTRY_ONLY"  # the live catch-all decides (docs/model.md)
    assert report.mesh.source == "sidecar catch-all; declared: ALLOW_ANY from default MeshConfig"
    assert [d.code for d in api.diagnoses] == ["MP0104", "MP0120"]  # declared ALLOW_ANY, live REGISTRY_ONLY
    assert "live catch-all says REGISTRY_ONLY" in api.diagnoses[1].message
    assert api.predicted is not None and api.predicted.mode == "REGISTRY_ONLY"
    assert validate(report.to_json(), SCHEMA) == []


def test_results_without_the_target_is_usage_error(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(
        ["explain", "other.example.org", "--config", str(config), "--results", str(_probe_report(tmp_path))],
        capsys,
    )
    assert code == 2 and "no result for target" in err


GOLDEN = """\
meshprobe explain  namespace apps · sidecar · mode REGISTRY_ONLY (--mode)
✗ https://api.example.com:443/  predicted blocked → BlackHoleCluster  MP0104
✓ https://pkgindex.example:443/  predicted allowed → outbound|443||pkgindex.example
╭─ ✗ api.example.com ──────────────────────────────────────────────────────────────────────────────╮
│ MP0104 NotExported (error)                                                                       │
│ ServiceEntry tools/api matches api.example.com but is not exported to namespace apps (exportTo   │
│ ['.'] excludes apps)                                                                             │
│   • predicted: listener 0.0.0.0_443 → PassthroughFilterChain → BlackHoleCluster                  │
│   resources: ServiceEntry tools/api                                                              │
│   fix: export ServiceEntry tools/api to namespace apps                                           │
│ apiVersion: networking.istio.io/v1                                                               │
│ kind: ServiceEntry                                                                               │
│ metadata:                                                                                        │
│   name: api                                                                                      │
│   namespace: tools                                                                               │
│ spec:                                                                                            │
│   hosts:                                                                                         │
│   - api.example.com                                                                              │
│   exportTo:                                                                                      │
│   - .                                                                                            │
│   - apps                                                                                         │
│   ports:                                                                                         │
│   - number: 443                                                                                  │
│     name: https                                                                                  │
│     protocol: HTTPS                                                                              │
│   resolution: DNS                                                                                │
╰──────────────────────────────────────────────────────────────────────────────────────────────────╯
1 passed, 1 failed
"""


def test_text_report_golden(config: Path) -> None:
    report = run(["api.example.com", "pkgindex.example"], [config], namespace="apps", mode="REGISTRY_ONLY")
    text = report_text(report, title="meshprobe explain", width=100, plain=False)
    assert text == GOLDEN
    assert "\x1b[" not in text
    assert "\x1b[" in report_text(report, title="meshprobe explain", width=100, color=True, plain=False)


def test_invalid_objects_are_reported_and_left_out(tmp_path: Path) -> None:
    path = tmp_path / "mesh.yaml"
    path.write_text(
        CONFIG
        + """---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: wild, namespace: apps}
spec:
  hosts: ["*.example.com"]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DNS
"""
    )
    report = run(["api.example.com"], [path], namespace="apps", mode="REGISTRY_ONLY")
    assert [(f.code, f.resources) for f in report.findings] == [("MP0403", ("ServiceEntry apps/wild",))]
    (target,) = report.targets
    assert target.predicted is not None and "ServiceEntry apps/wild" not in target.predicted.matched
    assert "MP0111" in [d.code for d in target.diagnoses]


def test_results_without_a_sidecar_mean_no_sidecar(config: Path, tmp_path: Path) -> None:
    spec = TargetSpec(
        "api.example.com",
        Protocol.HTTPS,
        "api.example.com",
        443,
        url="https://api.example.com:443/",
        sni="api.example.com",
    )
    report = ProbeReport(
        PROBE_SCHEMA,
        "0.1.0",
        (ProbeResult(spec, Signature.OK, Origin.DIRECT),),
        SidecarEvidence(present=False),
    )
    path = tmp_path / "results.json"
    path.write_text(json.dumps(to_json(report)))
    out = run(["api.example.com"], [config], namespace="apps", mode="REGISTRY_ONLY", results=path)
    assert out.source.dataplane == "none"
    assert [d.code for d in out.targets[0].diagnoses] == ["MP0302"]


def test_no_color_and_non_tty(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    from rich.console import Console

    from diag.render.report import print_report

    report = run(["api.example.com"], [config], namespace="apps", mode="REGISTRY_ONLY")
    monkeypatch.setenv("NO_COLOR", "1")
    buffer = io.StringIO()
    print_report(report, console=Console(file=buffer, force_terminal=True, width=100))
    assert "\x1b[31m" not in buffer.getvalue() and "\x1b[91m" not in buffer.getvalue()
    monkeypatch.delenv("NO_COLOR")
    code = main(
        ["explain", "api.example.com", "--config", str(config), "-n", "apps", "--mode", "REGISTRY_ONLY"]
    )
    out = capsys.readouterr().out
    assert code == 1 and "✗ https://api.example.com:443/" in out and "\x1b[" not in out


SSH = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: github-ssh, namespace: apps}
spec:
  hosts: [github.com]
  ports: [{number: 22, name: ssh, protocol: TCP}]
  resolution: DNS
"""


@pytest.mark.parametrize(("flags", "codes"), [([], ["MP0107"]), (["--dns-capture"], ["MP0101"])])
def test_dns_capture_flag_changes_the_proxy(
    flags: list[str], codes: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ssh.yaml"
    path.write_text(SSH)
    code = main(
        [
            "explain",
            "tcp://gitlab.example.com:22",
            "--config",
            str(path),
            "-n",
            "apps",
            "--mode",
            "REGISTRY_ONLY",
            "-o",
            "json",
            *flags,
        ]
    )
    doc = json.loads(capsys.readouterr().out)
    assert code == 1
    assert [d["code"] for d in doc["targets"][0]["diagnoses"]] == codes


@pytest.mark.parametrize(("namespace", "protocol"), [("tools", "tls"), ("apps", "tcp")])
def test_host_port_takes_the_protocol_of_a_visible_entry(
    namespace: str, protocol: str, tmp_path: Path
) -> None:
    path = tmp_path / "mesh.yaml"
    path.write_text("""\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: tools}
spec:
  hosts: [api.example.com]
  exportTo: ["."]
  ports: [{number: 8443, name: tls, protocol: TLS}]
  resolution: DNS
""")
    report = run(["api.example.com:8443"], [path], namespace=namespace, mode="REGISTRY_ONLY")
    assert report.targets[0].protocol == protocol
