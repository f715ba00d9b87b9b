"""An AuthorizationPolicy at the egress gateway deciding by the caller's service account
(``source.principals``): ALLOW for ``default/builder`` only. Two pods in ``default`` call through
the gateway — ``probe`` (service account ``default``) and ``builder`` — and their sidecars present
the mesh CA's certificate for their own account, so the gateway's RBAC really sees who calls.

What Envoy does (asserted): over HTTP the denied caller gets ``403`` ``RBAC: access denied``
relayed by its sidecar; over TLS/TCP the gateway closes the connection (the app sees a reset). Without
mTLS between sidecar and gateway there is no principal, so an ALLOW-by-principal policy denies
*every* caller, the allowed account included."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import require_lab
from tests.lab.testdata import egress_gateway as eg
from tests.lab.testdata.gateway_calls import Logs, call_http, call_https, call_tcp

pytestmark = pytest.mark.lab

DENIED = "rbac_access_denied_matched_policy[none]"


@pytest.fixture(scope="module")
def lab() -> Iterator[Any]:
    require_lab()
    from lab.pod import PodSpec
    from lab.runtime import Lab

    allowed_ns, allowed_sa = eg.ALLOWED_SA
    pods = [PodSpec(), PodSpec(namespace=allowed_ns, name="builder", service_account=allowed_sa)]
    with Lab(egress_gateway=True, access_log=True, internet=[eg.HOST, eg.TCP_HOST], pods=pods) as lab:
        yield lab


def _pods(lab: Any) -> tuple[Any, Any]:
    return lab.pod("default", "probe"), lab.pod(eg.ALLOWED_SA[0], "builder")


def test_http_over_mtls_denies_the_other_service_account_with_403(lab: Any) -> None:
    lab.apply(eg.with_policy(eg.tls_origination()))
    denied_pod, allowed_pod = _pods(lab)
    logs = Logs(denied_pod, lab.gateway)
    seen = call_http(denied_pod, "/denied")
    assert (seen.status, seen.body) == (403, "RBAC: access denied")
    assert seen.headers["server"] == "envoy" and "x-envoy-upstream-service-time" in seen.headers
    [gw] = logs.gateway_lines()
    assert (gw["response_code"], gw["response_flags"], gw["response_code_details"]) == (403, "-", DENIED)
    assert gw["path"] == "/denied"
    [side] = logs.sidecar()
    assert (side["response_code"], side["response_code_details"]) == (403, "via_upstream")

    logs = Logs(allowed_pod, lab.gateway)
    ok = call_http(allowed_pod, "/allowed")
    assert ok.status == 200, ok
    assert "URI=spiffe://cluster.local/ns/default/sa/builder" in json.loads(ok.body)["headers"][
        "x-forwarded-client-cert"]
    [gw] = logs.gateway_lines()
    assert (gw["response_code"], gw["upstream_cluster"]) == (200, f"outbound|443||{eg.HOST}")


def test_tls_over_mtls_resets_the_other_service_account(lab: Any) -> None:
    lab.apply(eg.with_policy(eg.mtls_passthrough()))
    denied_pod, allowed_pod = _pods(lab)
    logs = Logs(denied_pod, lab.gateway)
    seen = call_https(denied_pod, "/denied")
    assert seen.status == 0 and seen.exit_code == 35  # curl: the TLS handshake was cut off
    [gw] = logs.gateway_lines()
    assert gw["connection_termination_details"] == DENIED
    assert gw["requested_server_name"] == eg.HOST
    [side] = logs.sidecar()
    assert side["response_flags"] == "-"
    assert side["upstream_cluster"] == f"outbound|443|{eg.SUBSET}|{eg.GATEWAY_HOST}"

    ok = call_https(allowed_pod, "/allowed")
    assert ok.status == 200, ok


def test_without_mtls_there_is_no_principal_and_everyone_is_denied(lab: Any) -> None:
    lab.apply(eg.with_policy(eg.plain_http()))
    for pod in _pods(lab):
        seen = call_http(pod, "/no-principal")
        assert (seen.status, seen.body) == (403, "RBAC: access denied")
    lab.apply(eg.with_policy(eg.https_passthrough()))
    for pod in _pods(lab):
        logs = Logs(pod, lab.gateway)
        seen = call_https(pod, "/no-principal")
        assert seen.status == 0 and seen.exit_code == 35
        [gw] = logs.gateway_lines()
        assert gw["connection_termination_details"] == DENIED


def test_plain_tcp_is_closed_before_any_echo(lab: Any) -> None:
    lab.apply(eg.with_policy(eg.tcp()))
    denied_pod, _ = _pods(lab)
    logs = Logs(denied_pod, lab.gateway)
    seen = call_tcp(denied_pod)
    # The RBAC network filter decides on the client's first bytes: a server-first banner may already
    # have come through, the client's data never reaches the host and the connection is closed.
    assert seen["echo"] == "" and seen["error"] == ""
    assert seen["banner"] == "" or seen["banner"].startswith("SSH-2.0-MeshprobeLab")
    [gw] = logs.gateway_lines()
    assert gw["connection_termination_details"] == DENIED
    assert gw["upstream_cluster"] == f"outbound|{eg.TCP_PORT}||{eg.TCP_HOST}"


def test_no_policy_lets_both_through(lab: Any) -> None:
    lab.apply(eg.tls_origination())
    for pod in _pods(lab):
        assert call_http(pod, "/open").status == 200
