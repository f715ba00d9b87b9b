"""`meshprobe probe` (diag/commands/probe.py) and its text rendering (diag/render/probe.py)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from diag.cli import main
from diag.render.probe import probe_report_text, short_evidence
from probes.model import (
    DnsEvidence,
    HttpEvidence,
    Origin,
    ProbeReport,
    ProbeResult,
    Signature,
    TcpEvidence,
    TlsEvidence,
)
from probes.targets import parse_target
from tests.probes import servers
from tests.probes.servers import Reply

GOLDEN = Path(__file__).parent / "testdata" / "probe_report.txt"


def _report() -> ProbeReport:
    results = (
        ProbeResult(
            target=parse_target("pypi.lab.example"),
            signature=Signature.OK,
            origin=Origin.END_TO_END_TLS,
            tcp=TcpEvidence(address="10.0.0.5:443", captured=True, note="..."),
            tls=TlsEvidence(
                sni="pypi.lab.example", version="TLSv1.3", peer_sans=("DNS:pypi.lab.example",), verified=True
            ),
            http=HttpEvidence(status=200),
            elapsed=0.0421,
        ),
        ProbeResult(
            target=parse_target("http://blocked.lab.example/"),
            signature=Signature.ENVOY_BLACKHOLE_502,
            origin=Origin.LOCAL_SIDECAR,
            tcp=TcpEvidence(address="10.0.0.6:80", captured=True),
            http=HttpEvidence(status=502, envoy_reason="block_all"),
            elapsed=0.0032,
        ),
        ProbeResult(
            target=parse_target("tcp://ssh.lab.example:22"),
            signature=Signature.TCP_CLOSED_AFTER_CONNECT,
            tcp=TcpEvidence(address="10.0.0.7:22", captured=True, closed_by_peer=True),
            elapsed=0.0011,
            expect="blocked",
        ),
        ProbeResult(
            target=parse_target("nx.lab.example"),
            signature=Signature.DNS_NXDOMAIN,
            dns=DnsEvidence(query="nx.lab.example", names_tried=("a.", "b."), rcode="NXDOMAIN"),
            elapsed=0.0105,
        ),
        ProbeResult(
            target=parse_target("tls://bad.lab.example:8443"),
            signature=Signature.TLS_HOSTNAME_MISMATCH,
            tcp=TcpEvidence(address="10.0.0.8:8443", captured=False),
            tls=TlsEvidence(
                sni="bad.lab.example",
                version="TLSv1.3",
                peer_sans=("DNS:other.lab.example",),
                verify_error="Hostname mismatch",
            ),
            elapsed=0.02,
        ),
    )
    return ProbeReport(
        schema="meshprobe.probe/v1",
        probe_version="0.1.0",
        results=results,
        elapsed=0.05,
        notes=("no sidecar detected",),
    )


def test_text_report_matches_golden() -> None:
    text = probe_report_text(_report(), width=120)
    if os.environ.get("MESHPROBE_UPDATE_GOLDEN"):  # regenerate on purpose, then review the diff
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()


def test_captured_connects_say_to_sidecar_and_never_reachable() -> None:
    report = _report()
    assert "to sidecar" in short_evidence(report.results[2])
    assert "to sidecar" not in short_evidence(report.results[4])
    text = probe_report_text(report, width=160)
    assert "reachable" not in text.lower()
    assert "2 passed, 3 failed" in text  # the closed connect met its "blocked" expectation


def test_color_only_when_asked() -> None:
    assert "\x1b[" not in probe_report_text(_report())
    assert "\x1b[" in probe_report_text(_report(), color=True)


@pytest.fixture(scope="module")
def web() -> Iterator[int]:
    with servers.serve_http({("*", "/"): Reply(200, b"ok"), ("*", "/bh"): Reply(502)}) as port:
        yield port


def test_meshprobe_probe_text_output_non_tty(
    web: int, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    code = main(
        [
            "probe",
            "--sidecar",
            "off",
            "--timeout",
            "2",
            f"http://127.0.0.1:{web}/",
            f"http://127.0.0.1:{web}/bh",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "\x1b[" not in out  # captured stdout is not a TTY: no colour
    assert "ENVOY_BLACKHOLE_502" in out and "HTTP 502 (block_all)" in out and "1 passed, 1 failed" in out


def test_meshprobe_probe_json_output(web: int, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "probe",
            "-o",
            "json",
            "--sidecar",
            "off",
            "--resolve",
            "web.lab.example:127.0.0.1",
            f"http://web.lab.example:{web}/",
        ]
    )
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["results"][0]["signature"] == "OK"
    assert data["results"][0]["dns"]["source"] == "resolve-flag"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["probe", "bad target"], "invalid target 'bad target'"),
        (["probe", "-o", "yaml", "x.lab.example"], "invalid --output"),
        (["probe", "--sidecar", "on", "x.lab.example"], "invalid --sidecar"),
        (["probe", "--resolve", "x", "x.lab.example"], "invalid --resolve"),
        (["probe", "--sidecar-native", "maybe", "x.lab.example"], "invalid --sidecar-native"),
    ],
)
def test_meshprobe_probe_usage_errors_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


@pytest.mark.parametrize(("no_color", "escapes"), [(False, True), (True, False)])
def test_no_color_is_honoured_even_on_a_terminal(
    no_color: bool, escapes: bool, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from diag.render.probe import print_probe_report

    monkeypatch.setenv("FORCE_COLOR", "1")  # pretend stdout is a terminal
    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    else:
        monkeypatch.delenv("NO_COLOR", raising=False)
    print_probe_report(_report())
    colour = re.compile(r"\x1b\[(?:\d+;)*3\d(?:;\d+)*m")  # a foreground colour (bold/dim are not colours)
    assert bool(colour.search(capsys.readouterr().out)) is escapes
