"""MP0112's "tls-redirect": a plaintext egress-gateway server with `tls.httpsRedirect` answers the
sidecar's plaintext request with a 301 to https. Reported offline and when the probe saw the 301,
not when the call got through; its fix (httpsRedirect removed from the servers on the port that
hold the host) re-predicts the call through the gateway."""

from __future__ import annotations

from typing import Any

from diag.model.loader import load_documents
from diag.model.snapshot import Snapshot
from diag.report import TargetResult
from diag.rules.base import Diagnosis
from diag.rules.fixcheck import check_fix
from probes.model import HttpEvidence, Origin, ProbeResult, RedirectHop, Signature
from probes.targets import parse_target
from tests.diag.test_gateway_report import SOURCE, assess, snapshot

TARGET = "http://api.example.com/"
REDIRECT = (
    "    hosts: [api.example.com]\n---",
    "    hosts: [api.example.com]\n    tls: {httpsRedirect: true}\n---",
)
FIRST_HOP = RedirectHop(
    url=TARGET, status=301, location="https://api.example.com/", signature=Signature.HTTP_STATUS
)
MESSAGE = (
    "via istio-egressgateway.istio-system: the server of Gateway istio-system/egress on port 80 "
    "redirects plaintext HTTP to https (tls.httpsRedirect): virtual host api.example.com:80 requires "
    "TLS (a server's tls.httpsRedirect): 301 to https; expect a 301 to https from the gateway "
    "(relayed: with x-envoy-upstream-service-time)"
)
FIXED_GATEWAY = """\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: egress
  namespace: istio-system
spec:
  selector:
    istio: egressgateway
  servers:
  - port:
      number: 80
      name: http
      protocol: HTTP
    hosts:
    - api.example.com
"""


def _mp0112(result: TargetResult) -> list[Diagnosis]:
    return [d for d in result.diagnoses if d.code == "MP0112"]


def _seen(signature: Signature, status: int | None, **extra: Any) -> ProbeResult:
    http = HttpEvidence(status=status, upstream_service_time="2") if status is not None else None
    return ProbeResult(parse_target(TARGET), signature, Origin.VIA_ROUTE, http=http, **extra)


def _apply(snap: Snapshot, objects: tuple[Any, ...]) -> Snapshot:
    loaded = load_documents(objects, "fix")
    assert not loaded.problems, loaded.problems
    new = {o.ref for o in loaded.objects}
    kept = [
        o
        for group in (
            snap.service_entries,
            snap.services,
            snap.destination_rules,
            snap.virtual_services,
            snap.gateways,
            snap.pods,
        )
        for o in group
        if o.ref not in new
    ]
    return Snapshot.build([*kept, *loaded.objects], snap.mesh)


def test_explain_offline_reports_the_redirect_with_the_fix() -> None:
    result = assess(snapshot("http.yaml", REDIRECT), TARGET)
    assert result.outcome == "fail"
    [found] = _mp0112(result)
    assert (found.level, found.message) == ("error", MESSAGE)
    assert "Gateway istio-system/egress" in found.resources
    assert found.fix is not None
    assert found.fix.summary == (
        "stop redirecting plaintext HTTP to https for api.example.com on port 80: Gateway istio-system/egress"
    )
    assert found.fix.yaml == FIXED_GATEWAY


def test_an_allowed_target_fails_on_the_redirect_too() -> None:
    result = assess(snapshot("http.yaml", REDIRECT), TARGET, expect="allowed")
    assert result.outcome == "fail"
    assert [d.level for d in _mp0112(result)] == ["error"]


def test_an_observed_301_is_still_diagnosed() -> None:
    seen = _seen(Signature.HTTP_STATUS, 301)
    result = assess(snapshot("http.yaml", REDIRECT), TARGET, observed=seen)
    assert result.outcome == "fail"
    [found] = _mp0112(result)
    assert found.message == MESSAGE and found.fix is not None
    assert "MP0203" in found.supersedes


def test_a_followed_301_is_diagnosed_whatever_the_https_hop_got() -> None:
    for signature, status in ((Signature.HTTP_STATUS, 403), (Signature.OK, 200)):
        seen = _seen(signature, status, redirects=(FIRST_HOP,))
        result = assess(snapshot("http.yaml", REDIRECT), TARGET, observed=seen)
        assert [d.message for d in _mp0112(result)] == [MESSAGE], signature
        assert result.outcome == "fail"


def test_an_observed_200_outranks_the_config() -> None:
    ok = _seen(Signature.OK, 200)
    result = assess(snapshot("http.yaml", REDIRECT), TARGET, observed=ok)
    assert _mp0112(result) == []
    assert result.outcome == "pass"


def test_another_status_from_beyond_the_gateway_is_not_the_redirect() -> None:
    seen = _seen(Signature.HTTP_STATUS, 302)
    assert _mp0112(assess(snapshot("http.yaml", REDIRECT), TARGET, observed=seen)) == []


def test_the_fix_goes_through_the_gateway() -> None:
    snap = snapshot("http.yaml", REDIRECT)
    [found] = _mp0112(assess(snap, TARGET))
    assert found.fix is not None
    call = assess(snap, TARGET).predicted
    assert call is not None and call.gateway is not None and call.gateway.reason == "tls-redirect"
    from diag.predict.sidecar import Call

    verdict = check_fix(found.fix, snap, SOURCE, Call(host="api.example.com", port=80, protocol="http"))
    assert verdict.reason == ""
    after = _apply(snap, found.fix.objects)
    again = assess(after, TARGET)
    assert again.outcome == "pass", [d.message for d in again.diagnoses]
    assert again.predicted is not None and again.predicted.gateway is not None
    hop = again.predicted.gateway
    assert (hop.verdict, hop.reason, hop.cluster) == ("allowed", "", "outbound|80||api.example.com")
    assert _mp0112(again) == []


def test_the_fix_leaves_servers_not_holding_the_host_and_other_ports() -> None:
    extra = (
        "    hosts: [api.example.com]\n    tls: {httpsRedirect: true}\n"
        "  - port: {number: 80, name: http-other, protocol: HTTP}\n"
        "    hosts: [other.example.com]\n    tls: {httpsRedirect: true}\n"
        "  - port: {number: 8081, name: http-alt, protocol: HTTP}\n"
        "    hosts: [api.example.com]\n    tls: {httpsRedirect: true}\n---"
    )
    snap = snapshot("http.yaml", (REDIRECT[0], extra))
    [found] = _mp0112(assess(snap, TARGET))
    assert found.fix is not None
    [gateway] = found.fix.objects
    assert [s.get("tls") for s in gateway["spec"]["servers"]] == [
        None,
        {"httpsRedirect": True},
        {"httpsRedirect": True},
    ]


def test_the_fix_patches_the_other_gateway_whose_server_redirects() -> None:
    """Every Gateway's plaintext servers on the port share one route configuration: a second
    Gateway selecting the same workload that redirects the host is the one patched."""
    second = (
        "\n---\napiVersion: networking.istio.io/v1\nkind: Gateway\n"
        "metadata: {name: egress-redirect, namespace: istio-system}\n"
        "spec:\n  selector: {istio: egressgateway}\n  servers:\n"
        "  - port: {number: 80, name: http, protocol: HTTP}\n"
        "    hosts: [api.example.com]\n    tls: {httpsRedirect: true}\n"
    )
    snap = snapshot(
        "http.yaml",
        (
            "route: [{destination: {host: api.example.com, port: {number: 80}}}]",
            ("route: [{destination: {host: api.example.com, port: {number: 80}}}]" + second),
        ),
    )
    assert [g.ref for g in snap.gateways] == [
        "Gateway istio-system/egress",
        "Gateway istio-system/egress-redirect",
    ]
    result = assess(snap, TARGET)
    assert result.predicted is not None and result.predicted.gateway is not None
    assert result.predicted.gateway.gateway_ref == "Gateway istio-system/egress"  # the server picked
    [found] = _mp0112(result)
    assert "the server of Gateway istio-system/egress-redirect on port 80 redirects" in found.message
    assert found.resources[-1] == "Gateway istio-system/egress-redirect"
    assert found.fix is not None
    assert [(o["metadata"]["name"], o["spec"]["servers"][0].get("tls")) for o in found.fix.objects] == [
        ("egress-redirect", None)
    ]
    again = assess(_apply(snap, found.fix.objects), TARGET)
    assert again.outcome == "pass" and _mp0112(again) == []
