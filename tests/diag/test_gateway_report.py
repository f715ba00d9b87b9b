"""The report's view of the egress-gateway hop: `via` for every target, `predicted.gateway`,
`observed.answered_by`, and `--expect via-gateway` judged on the gateway hop."""

from __future__ import annotations

from pathlib import Path

from diag.model.loader import load_text
from diag.model.snapshot import Snapshot
from diag.predict.model import Source
from diag.report import Report, TargetResult, assess_target
from probes.model import HttpEvidence, Origin, ProbeResult, Signature
from probes.targets import parse_target
from tests.diag.test_report import SCHEMA, validate

DATA = Path(__file__).parent / "testdata" / "gateway"
SOURCE = Source(namespace="apps", mode_override="REGISTRY_ONLY", service_account="sleep")


def snapshot(setup: str, *changes: tuple[str, str]) -> Snapshot:
    text = (DATA / "common.yaml").read_text() + "\n---\n" + (DATA / setup).read_text()
    for old, new in changes:
        assert old in text
        text = text.replace(old, new)
    loaded = load_text(text)
    return Snapshot.build(loaded.objects, loaded.mesh)


def assess(
    snap: Snapshot,
    target: str,
    expect: str = "via-gateway",
    observed: ProbeResult | None = None,
) -> TargetResult:
    return assess_target(parse_target(target), snapshot=snap, source=SOURCE, expect=expect, observed=observed)


def test_via_gateway_target_passes_and_the_report_says_which_gateway() -> None:
    result = assess(snapshot("http.yaml"), "http://api.example.com/")
    assert result.outcome == "pass", [d.message for d in result.diagnoses]
    doc = result.to_json()
    assert doc["via"] == {
        "kind": "gateway",
        "gateway": "istio-egressgateway.istio-system",
        "inferred": False,
        "from": "predicted",
    }
    hop = doc["predicted"]["gateway"]
    assert hop["path"] == {
        "listener": "0.0.0.0_8080",
        "filter_chain": None,
        "route": "http.8080",
        "vhost": "api.example.com:80",
        "cluster": "outbound|80||api.example.com",
    }
    assert hop["verdict"] == "allowed" and hop["reason"] is None
    report = Report(targets=(result,)).to_json()
    assert validate(report, SCHEMA) == []


def test_direct_target_says_direct() -> None:
    snap = snapshot("http.yaml", ("gateways: [istio-system/egress, mesh]", "gateways: [istio-system/egress]"))
    result = assess(snap, "http://api.example.com/", expect="allowed")
    assert result.to_json()["via"] == {"kind": "direct", "gateway": None, "from": "predicted"}
    assert result.to_json()["predicted"]["gateway"] is None
    bypass = assess(snap, "http://api.example.com/")
    assert bypass.outcome == "fail" and "MP0112" in [d.code for d in bypass.diagnoses]


def test_a_gateway_that_blocks_fails_an_allowed_target_offline() -> None:
    snap = snapshot("http.yaml", ("resolution: DNS", "resolution: NONE"))
    result = assess(snap, "http://api.example.com/", expect="allowed")
    assert result.predicted.verdict == "allowed"  # the sidecar's own verdict is kept
    assert result.outcome == "fail"
    assert result.to_json()["predicted"]["gateway"]["reason"] == "no-endpoints"
    assert [d.code for d in result.diagnoses if d.level == "error"] == ["MP0112"]


def test_relayed_gateway_reply_is_answered_by_the_gateway() -> None:
    snap = snapshot("http.yaml", ("    hosts: [api.example.com]\n---", "    hosts: [other.example.com]\n---"))
    spec = parse_target("http://api.example.com/")
    relayed = ProbeResult(spec, Signature.ENVOY_404_NR, Origin.VIA_ROUTE, http=HttpEvidence(status=404))
    result = assess(snap, "http://api.example.com/", observed=relayed)
    doc = result.to_json()
    assert doc["observed"]["answered_by"] == "gateway"
    assert result.outcome == "fail"
    local = ProbeResult(
        spec, Signature.ENVOY_503_NO_CLUSTER, Origin.LOCAL_SIDECAR, http=HttpEvidence(status=503)
    )
    assert (
        assess(snap, "http://api.example.com/", observed=local).to_json()["observed"]["answered_by"]
        == "sidecar"
    )
    assert validate(Report(targets=(result,)).to_json(), SCHEMA) == []


def test_origin_reply_on_a_direct_path_is_answered_by_the_upstream() -> None:
    snap = snapshot("http.yaml", ("gateways: [istio-system/egress, mesh]", "gateways: [istio-system/egress]"))
    spec = parse_target("http://api.example.com/")
    reply = ProbeResult(spec, Signature.ENVOY_404_NR, Origin.VIA_ROUTE, http=HttpEvidence(status=404))
    doc = assess(snap, "http://api.example.com/", expect="allowed", observed=reply).to_json()
    assert doc["observed"]["answered_by"] == "upstream"


def test_text_report_line_names_the_gateway_hop() -> None:
    from diag.render.report import report_text

    snap = snapshot("http.yaml", ("subsets: [{name: api}]", "subsets: [{name: other}]"))
    result = assess(snap, "http://api.example.com/")
    text = report_text(Report(targets=(result,)), width=200, plain=True)
    line = next(ln for ln in text.splitlines() if "api.example.com" in ln and "predicted" in ln)
    assert "via gateway istio-egressgateway.istio-system → subset-missing" in line
    direct = assess(
        snapshot("http.yaml", ("gateways: [istio-system/egress, mesh]", "gateways: [istio-system/egress]")),
        "http://api.example.com/",
        expect="allowed",
    )
    assert "via gateway" not in report_text(Report(targets=(direct,)), width=200, plain=True)


def test_gateway_reply_relayed_as_http_status_is_the_gateways() -> None:
    """The probe reads a relayed reply as HTTP_STATUS (it has x-envoy-upstream-service-time); its
    status and Envoy's body still say the gateway made it."""
    snap = snapshot("tls-origination.yaml")
    spec = parse_target("http://api.example.com/")
    rbac = HttpEvidence(status=403, body_excerpt="RBAC: access denied", upstream_service_time="3")
    seen = ProbeResult(spec, Signature.HTTP_STATUS, Origin.VIA_ROUTE, http=rbac)
    assert (
        assess(snap, "http://api.example.com/", observed=seen).to_json()["observed"]["answered_by"]
        == "gateway"
    )
    origin = HttpEvidence(status=403, body_excerpt="<html>Forbidden</html>", upstream_service_time="3")
    other = ProbeResult(spec, Signature.HTTP_STATUS, Origin.VIA_ROUTE, http=origin)
    assert (
        assess(snap, "http://api.example.com/", observed=other).to_json()["observed"]["answered_by"]
        == "upstream"
    )
