"""The fixes ``meshprobe check`` writes for egress-gateway faults, applied through the lab's API
(``lab apply``, as ``kubectl apply`` would) and checked again: the check must then pass with
``--expect via-gateway`` (exit 0, no code, the path through the gateway). The faults are those of
Istio's egress-gateway tasks (``tests/lab/testdata/egress_gateway.py``): a host not on the Gateway,
the gateway subset without its DestinationRule subset, the sidecar↔gateway TLS mismatch both ways,
resolution NONE behind the gateway, a plaintext server redirecting to https
(``tls.httpsRedirect``), an AuthorizationPolicy at the gateway that allows another service account
only (over TLS origination and over mTLS passthrough), and the bypass: a mesh rule
for another port (HTTP, or the app's TLS), or a VirtualService not bound to ``mesh`` (the call goes
direct; the fix is the VirtualService with the call on its mesh route to the gateway). The fix is
taken from the report's JSON (``diagnoses[].fix.yaml``) — the predictor that wrote it does not
judge it: the real sidecar and gateway Envoys, fed from the API, do."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
import yaml

from tests.conftest import require_lab
from tests.lab.checkrun import codes, run_check
from tests.lab.testdata import egress_gateway as eg
from tests.lab.testdata.gateway_calls import replace_and_settle

pytestmark = pytest.mark.lab

NAMESPACE = {"apiVersion": "v1", "kind": "Namespace",
             "metadata": {"name": "shop", "labels": {"istio-injection": "enabled"}}}  # fmt: skip
HTTP = f"http://{eg.HOST}/"
HTTPS = f"https://{eg.HOST}/"
Obj = dict[str, Any]


def _denied(setup: Callable[[], list[Obj]]) -> Callable[[], list[Obj]]:
    """``setup`` with an ALLOW policy at the gateway for ``shop/builder`` (the probe is ``shop/default``)."""
    return lambda: [*setup(), eg.authorization_policy("shop", "builder")]


def _subset_not_in_rule() -> list[Obj]:
    """Plain HTTP whose gateway DestinationRule defines another subset only."""
    objects = eg.plain_http()
    rule = next(o for o in objects if o["kind"] == "DestinationRule")
    rule["spec"]["subsets"] = [{"name": "other"}]
    return objects


def _mesh_route_for_another_port() -> list[Obj]:
    """Plain HTTP whose mesh rule matches port 8080 only: the call on 80 goes direct."""
    objects = eg.plain_http()
    vs = next(o for o in objects if o["kind"] == "VirtualService")
    vs["spec"]["http"][0]["match"][0]["port"] = 8080
    return objects


def _tls_route_for_another_port() -> list[Obj]:
    """TLS passthrough whose mesh tls rule matches port 8443 only: the call on 443 goes direct."""
    objects = eg.https_passthrough()
    vs = next(o for o in objects if o["kind"] == "VirtualService")
    vs["spec"]["tls"][0]["match"][0]["port"] = 8443
    return objects


def _https_redirect() -> list[Obj]:
    """Plain HTTP whose Gateway server on 80 has ``tls.httpsRedirect``: the gateway answers 301."""
    objects = eg.plain_http()
    gw = next(o for o in objects if o["kind"] == "Gateway")
    gw["spec"]["servers"][0]["tls"] = {"httpsRedirect": True}
    return objects


def _vs_not_bound_to_mesh() -> list[Obj]:
    """Plain HTTP whose VirtualService keeps its mesh rule but lists the Gateway only."""
    objects = eg.plain_http()
    vs = next(o for o in objects if o["kind"] == "VirtualService")
    vs["spec"]["gateways"] = ["istio-egressgateway"]
    return objects


FAULTS: list[tuple[str, Callable[[], list[Obj]], str, str]] = [
    ("host-not-on-gateway", eg.host_not_on_gateway, HTTP, "MP0112"),
    ("subset-missing", eg.subset_without_rule, HTTP, "MP0112"),
    ("subset-not-in-rule", _subset_not_in_rule, HTTP, "MP0112"),
    ("plaintext-to-istio-mutual-server", eg.mtls_server_plain_client, HTTP, "MP0112"),
    ("istio-mutual-to-plaintext-server", eg.plain_server_mtls_client, HTTP, "MP0112"),
    ("resolution-none", eg.resolution_none, HTTP, "MP0112"),
    ("https-redirect", _https_redirect, HTTP, "MP0112"),
    ("bypass-mesh-route-for-another-port", _mesh_route_for_another_port, HTTP, "MP0112"),
    ("bypass-vs-not-bound-to-mesh", _vs_not_bound_to_mesh, HTTP, "MP0112"),
    ("bypass-tls-route-for-another-port", _tls_route_for_another_port, HTTPS, "MP0112"),
    ("policy-denies-caller-tls-origination", _denied(eg.tls_origination), HTTP, "MP0118"),
    ("policy-denies-caller-mtls-passthrough", _denied(eg.mtls_passthrough), HTTPS, "MP0118"),
]

KINDS = {
    "host-not-on-gateway": ("MP0112", "no-vhost", ""),
    "subset-missing": ("MP0112", "subset-missing", "no-rule"),
    "subset-not-in-rule": ("MP0112", "subset-missing", "rule"),
    "plaintext-to-istio-mutual-server": ("MP0112", "tls-mismatch", "ISTIO_MUTUAL"),
    "istio-mutual-to-plaintext-server": ("MP0112", "tls-mismatch", "plaintext"),
    "resolution-none": ("MP0112", "no-endpoints", ""),
    "https-redirect": ("MP0112", "tls-redirect", ""),
    "bypass-mesh-route-for-another-port": ("MP0112", "bypass", ""),
    "bypass-vs-not-bound-to-mesh": ("MP0112", "bypass", ""),
    "bypass-tls-route-for-another-port": ("MP0112", "bypass", ""),
    "policy-denies-caller-tls-origination": ("MP0118", "denied", ""),
    "policy-denies-caller-mtls-passthrough": ("MP0118", "denied", ""),
}
"""What each fault must be, read from the report's ``predicted.gateway`` (``fix_kind``)."""


@pytest.fixture(scope="module")
def lab() -> Iterator[Any]:
    require_lab()
    from lab.runtime import Lab

    objects = [NAMESPACE, *eg.in_namespace(eg.plain_http(), "shop")]
    with Lab(objects, egress_gateway=True, internet=[eg.HOST], api=True, pods=[], drain_seconds=0.1) as lab:
        yield lab


def fix_kind(code: str, hop: Mapping[str, Any] | None) -> tuple[str, str, str]:
    """(code, sub-reason, detail) of a gateway hop in the report's JSON shape (``predicted.gateway``):
    the kinds of fix the rules write — a host not on the Gateway (no vhost, or only the blackhole
    one), a subset missing from an existing DestinationRule or with none at all, a TLS mismatch
    toward an ISTIO_MUTUAL or a plaintext server, resolution NONE, a denying policy; no hop at all
    is the bypass (the call goes direct)."""
    if hop is None:
        return (code, "bypass", "")
    reason = str(hop["reason"])
    if reason == "no-route" and str(hop["path"]["vhost"] or "").startswith("blackhole:"):
        reason = "no-vhost"
    detail = ""
    if reason == "tls-mismatch":
        detail = hop["tls"]["server"] or "plaintext"
    if reason == "subset-missing":
        detail = "rule" if any(m.startswith("DestinationRule ") for m in hop["matched"]) else "no-rule"
    return (code, reason, detail)


def test_every_gateway_fix_kind_is_reprobed_here() -> None:
    """Each kind of fix the gateway rule cases carry (``tests/diag/test_fixes.py`` GATEWAY_FIXED) is
    one of the faults above; the lab test asserts each fault's kind from the real report."""
    from tests.diag.test_fixes import GATEWAY_FIXED
    from tests.diag.test_rules import run_case

    wanted = set()
    for case, code in GATEWAY_FIXED:
        result, _, _ = run_case(case)
        assert result.predicted is not None, case.name
        hop = result.predicted.gateway
        wanted.add(fix_kind(code, hop.to_json() if hop is not None else None))
    assert wanted == set(KINDS.values()), (
        sorted(wanted - set(KINDS.values())),
        sorted(set(KINDS.values()) - wanted),
    )


def _ref(obj: Obj) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    return (str(obj.get("kind")), str(meta.get("namespace")), str(meta.get("name")))


def _with_fix(objects: list[Obj], fix_yaml: str) -> list[Obj]:
    """``objects`` with each object of the fix applied over the one of the same kind and name."""
    fixed = {_ref(o): o for o in yaml.safe_load_all(fix_yaml) if isinstance(o, dict)}
    assert fixed, fix_yaml
    return [o for o in objects if _ref(o) not in fixed] + list(fixed.values())


def _check(lab: Any, capsys: pytest.CaptureFixture[str], objects: list[Obj], target: str) -> tuple[int, Any]:
    replace_and_settle(lab, [NAMESPACE, *objects])
    return run_check(lab, capsys, "-n", "shop", "--expect", "via-gateway", target)


@pytest.mark.parametrize(("fault", "target", "code"), [f[1:] for f in FAULTS], ids=[f[0] for f in FAULTS])
def test_the_reported_fix_turns_the_check_green(
    lab: Any,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
    fault: Callable[[], list[Obj]],
    target: str,
    code: str,
) -> None:
    objects = eg.in_namespace(fault(), "shop")
    exit_code, report = _check(lab, capsys, objects, target)
    before = report["targets"][0]
    assert exit_code == 1 and code in codes(report)[target], json.dumps(before["diagnoses"])[:3000]
    assert fix_kind(code, before["predicted"].get("gateway")) == KINDS[request.node.callspec.id]
    fix = next(d["fix"] for d in before["diagnoses"] if d["code"] == code and d.get("fix"))
    exit_code, report = _check(lab, capsys, _with_fix(objects, fix["yaml"]), target)
    after = report["targets"][0]
    assert (exit_code, codes(report)[target]) == (0, []), (fix["yaml"], json.dumps(after)[:3000])
    assert after["outcome"] == "pass" and after["via"]["kind"] == "gateway", after["via"]
    assert after["observed"]["signature"] == "OK", after["observed"]
