"""``meshprobe check`` against the lab's API with the egress gateway running (``Lab(api=True,
egress_gateway=True)``): the probe pod in ``shop`` (service account ``default``) calls through the
real gateway, and the report names the gateway fault — MP0112 for a subset without its
DestinationRule (503 NC at the sidecar), a host not on the Gateway (404 NR relayed), a
sidecar↔gateway TLS mismatch either way and resolution NONE behind the gateway (503 UH relayed);
MP0118 for an AuthorizationPolicy at the gateway that allows another service account only (403
relayed over HTTP, a reset for TLS inside mTLS, everyone denied over plaintext); and the working
setups are clean, and pass ``--expect via-gateway``; a VirtualService that sends the host to the
gateway but not this call is MP0112's bypass: a warning while the call works directly, a failure
with ``--expect via-gateway``. Each reply is attributed to the hop that made it
(``observed.answered_by``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import require_lab
from tests.lab.checkrun import codes, run_check, wait_clean
from tests.lab.testdata import egress_gateway as eg
from tests.lab.testdata.gateway_calls import replace_and_settle

pytestmark = pytest.mark.lab

NAMESPACE = {"apiVersion": "v1", "kind": "Namespace",
             "metadata": {"name": "shop", "labels": {"istio-injection": "enabled"}}}  # fmt: skip
TARGET = f"http://{eg.HOST}/"
Capture = pytest.CaptureFixture[str]


@pytest.fixture(scope="module")
def lab() -> Iterator[Any]:
    require_lab()
    from lab.runtime import Lab

    objects = [NAMESPACE, *eg.in_namespace(eg.plain_http(), "shop")]
    with Lab(objects, egress_gateway=True, internet=[eg.HOST], api=True, pods=[], drain_seconds=0.1) as lab:
        yield lab


def _check(lab: Any, capsys: pytest.CaptureFixture[str], objects: list[dict[str, Any]]) -> tuple[int, Any]:
    replace_and_settle(lab, [NAMESPACE, *eg.in_namespace(objects, "shop")])
    return run_check(lab, capsys, "-n", "shop", TARGET)


def test_working_setup_is_clean(lab: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = _check(lab, capsys, eg.plain_http())
    assert code == 0, json.dumps(report["targets"][0])[:2000]
    assert wait_clean(lab) == []


def test_subset_without_destination_rule_is_mp0112(lab: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = _check(lab, capsys, eg.subset_without_rule())
    target = report["targets"][0]
    assert target["observed"]["signature"] == "ENVOY_503_NO_CLUSTER", target["observed"]
    assert "MP0112" in codes(report)[TARGET], json.dumps(target["diagnoses"])[:2000]
    assert code == 1
    assert wait_clean(lab) == []


@pytest.mark.parametrize(
    ("setup", "target"),
    [("plain_http", TARGET), ("tls_origination", TARGET), ("https_passthrough", f"https://{eg.HOST}/")],
)
def test_working_setups_are_clean(lab: Any, capsys: Capture, setup: str, target: str) -> None:
    replace_and_settle(lab, [NAMESPACE, *eg.in_namespace(getattr(eg, setup)(), "shop")])
    code, report = run_check(lab, capsys, "-n", "shop", target)
    assert code == 0 and codes(report)[target] == [], json.dumps(report["targets"][0])[:2000]


@pytest.mark.parametrize(
    ("setup", "target"),
    [
        ("plain_http", TARGET),
        ("tls_origination", TARGET),
        ("https_passthrough", f"https://{eg.HOST}/"),
        ("mtls_passthrough", f"https://{eg.HOST}/"),
    ],
)
def test_task_setups_pass_expect_via_gateway(lab: Any, capsys: Capture, setup: str, target: str) -> None:
    replace_and_settle(lab, [NAMESPACE, *eg.in_namespace(getattr(eg, setup)(), "shop")])
    code, report = run_check(lab, capsys, "-n", "shop", "--expect", "via-gateway", target)
    result = report["targets"][0]
    assert (code, codes(report)[target]) == (0, []), json.dumps(result)[:2000]
    assert result["via"]["kind"] == "gateway" and result["actual"]["cluster"].endswith(eg.GATEWAY_HOST)


def _mesh_route_for_another_port() -> list[dict[str, Any]]:
    """Plain HTTP whose mesh rule matches port 8080 only: the call on 80 goes direct."""
    objects = eg.plain_http()
    vs = next(o for o in objects if o["kind"] == "VirtualService")
    vs["spec"]["http"][0]["match"][0]["port"] = 8080
    return objects


@pytest.mark.parametrize("fault", ["no_mesh_gateway", "mesh_route_for_another_port"])
def test_bypass_is_reported_and_fails_expect_via_gateway(lab: Any, capsys: Capture, fault: str) -> None:
    objects = eg.no_mesh_gateway() if fault == "no_mesh_gateway" else _mesh_route_for_another_port()
    code, report = _check(lab, capsys, objects)
    result = report["targets"][0]
    found = [d for d in result["diagnoses"] if d["code"] == "MP0112"]
    assert result["observed"]["signature"] == "OK" and result["via"]["kind"] == "direct", result["via"]
    assert [d["level"] for d in found] == ["warning"], json.dumps(result["diagnoses"])[:2000]
    assert "does not go through an egress gateway" in found[0]["message"]
    assert found[0]["resources"] == ["VirtualService shop/via-egress-gateway"]
    assert (code, result["outcome"]) == (0, "pass"), "a warning: the call works, directly"
    code, report = run_check(lab, capsys, "-n", "shop", "--expect", "via-gateway", TARGET)
    result = report["targets"][0]
    assert [d["level"] for d in result["diagnoses"] if d["code"] == "MP0112"] == ["error"]
    assert (code, result["outcome"]) == (1, "fail")


@pytest.mark.parametrize(
    ("fault", "signature", "answered_by"),
    [
        (
            "host_not_on_gateway",
            "HTTP_STATUS",
            "gateway",
        ),  # 404 relayed: the probe sees the upstream's status
        ("mtls_server_plain_client", "ENVOY_503_UPSTREAM", "sidecar"),  # 503 UC
        ("plain_server_mtls_client", "ENVOY_503_UPSTREAM", "sidecar"),  # 503 UF,URX after retries
        ("resolution_none", "HTTP_STATUS", "gateway"),  # 503 UH relayed
        ("subset_without_rule", "ENVOY_503_NO_CLUSTER", "sidecar"),  # 503 NC
    ],
)
def test_gateway_faults_are_mp0112(
    lab: Any, capsys: Capture, fault: str, signature: str, answered_by: str
) -> None:
    code, report = _check(lab, capsys, getattr(eg, fault)())
    target = report["targets"][0]
    assert target["observed"]["signature"] == signature, target["observed"]
    assert target["observed"]["answered_by"] == answered_by, target["observed"]
    assert codes(report)[TARGET] == ["MP0112"], json.dumps(target["diagnoses"])[:2000]  # no MP0203 beside it
    assert code == 1


def test_https_redirect_at_the_gateway_is_mp0112(lab: Any, capsys: Capture) -> None:
    """The real gateway answers the plaintext request with a 301 to https (its server's
    ``tls.httpsRedirect``): the probe records it as the first hop of its redirect chain."""
    objects = eg.plain_http()
    gw = next(o for o in objects if o["kind"] == "Gateway")
    gw["spec"]["servers"][0]["tls"] = {"httpsRedirect": True}
    code, report = _check(lab, capsys, objects)
    target = report["targets"][0]
    first = (target["observed"]["redirects"] or [{}])[0]
    assert (first.get("status"), first.get("location")) == (301, f"https://{eg.HOST}/"), target["observed"]
    assert codes(report)[TARGET] == ["MP0112"], json.dumps(target["diagnoses"])[:2000]
    [found] = target["diagnoses"]
    assert "redirects plaintext HTTP to https (tls.httpsRedirect)" in found["message"], found["message"]
    assert "Gateway shop/istio-egressgateway" in found["resources"], found["resources"]
    assert (code, target["outcome"]) == (1, "fail")


def test_reset_by_policy_over_mtls_passthrough_is_mp0118(lab: Any, capsys: Capture) -> None:
    policy = eg.authorization_policy("shop", "builder")
    replace_and_settle(lab, [NAMESPACE, *eg.in_namespace([*eg.mtls_passthrough(), policy], "shop")])
    target = f"https://{eg.HOST}/"
    code, report = run_check(lab, capsys, "-n", "shop", target)
    assert report["targets"][0]["observed"]["signature"] == "RESET_BEFORE_RESPONSE"
    assert codes(report)[target] == ["MP0118"] and code == 1  # no MP0108: the mTLS ends at the gateway


def test_plaintext_hop_has_no_principal_so_even_the_named_account_is_mp0118(
    lab: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = _check(lab, capsys, [*eg.plain_http(), eg.authorization_policy("shop", "default")])
    assert "MP0118" in codes(report)[TARGET] and code == 1


def test_policy_allowing_another_account_is_mp0118(lab: Any, capsys: pytest.CaptureFixture[str]) -> None:
    policy = eg.authorization_policy("shop", "builder")
    code, report = _check(lab, capsys, [*eg.tls_origination(), policy])
    target = report["targets"][0]
    assert codes(report)[TARGET] == ["MP0118"], json.dumps(target)[:3000]
    [found] = target["diagnoses"]
    assert "AuthorizationPolicy istio-system/egress-allow-one" in found["resources"], found
    assert "cluster.local/ns/shop/sa/default" in found["message"], found["message"]  # the account denied
    assert target["observed"]["answered_by"] == "gateway", target["observed"]
    assert code == 1
    assert wait_clean(lab) == []
