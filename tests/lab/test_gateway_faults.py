"""Egress-gateway faults in the lab: what the client really sees (status, body, headers) and what
both access logs say (tests/lab/testdata/egress_gateway.py has the objects; docs/lab.md the table).
Everything asserted here is what Envoy did in the lab, not what a note predicted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import require_lab
from tests.lab.testdata import egress_gateway as eg
from tests.lab.testdata.gateway_calls import Logs, call_http

pytestmark = pytest.mark.lab

VIA_GATEWAY_80 = f"outbound|80|{eg.SUBSET}|{eg.GATEWAY_HOST}"
RESET_BODY = "upstream connect error or disconnect/reset before headers. "


@pytest.fixture(scope="module")
def lab() -> Iterator[Any]:
    require_lab()
    from lab.runtime import Lab

    with Lab(egress_gateway=True, access_log=True, internet=[eg.HOST, "other.lab.example"]) as lab:
        yield lab


def _call(lab: Any, objects: list[dict[str, Any]], path: str) -> tuple[Any, Logs]:
    lab.apply(objects)
    pod = lab.pod("default")
    logs = Logs(pod, lab.gateway)
    return call_http(pod, path), logs


def test_no_mesh_match_bypasses_the_gateway(lab: Any) -> None:
    seen, logs = _call(lab, eg.no_mesh_gateway(), "/bypass")
    assert seen.status == 200
    assert json.loads(seen.body)["host"] == eg.HOST  # works: straight to the host
    [side] = logs.sidecar()
    assert side["upstream_cluster"] == f"outbound|80||{eg.HOST}"
    assert side["upstream_host"] == f"{lab.address_of(eg.HOST)}:80"
    assert logs.gateway_lines(want=0, timeout=1.0) == []  # the gateway never saw it


def test_host_not_on_the_gateway_is_404_nr_relayed(lab: Any) -> None:
    seen, logs = _call(lab, eg.host_not_on_gateway(), "/nr")
    assert (seen.status, seen.body) == (404, "")
    assert seen.headers["server"] == "envoy"
    assert "x-envoy-upstream-service-time" in seen.headers  # the sidecar relayed the gateway's answer
    [gw] = logs.gateway_lines()
    assert (gw["response_code"], gw["response_flags"]) == (404, "NR")
    assert gw["response_code_details"] == "route_not_found"
    assert gw["upstream_cluster"] is None
    [side] = logs.sidecar()
    assert (side["response_code"], side["response_flags"]) == (404, "-")
    assert side["response_code_details"] == "via_upstream"
    assert side["upstream_cluster"] == VIA_GATEWAY_80


def test_subset_without_destination_rule_is_503_nc_at_the_sidecar(lab: Any) -> None:
    seen, logs = _call(lab, eg.subset_without_rule(), "/nc")
    assert (seen.status, seen.body) == (503, "")
    assert "x-envoy-upstream-service-time" not in seen.headers  # no upstream was ever tried
    [side] = logs.sidecar()
    assert (side["response_code"], side["response_flags"]) == (503, "NC")
    assert side["response_code_details"] == "cluster_not_found"
    assert side["upstream_cluster"] is None
    assert logs.gateway_lines(want=0, timeout=1.0) == []


def test_plaintext_to_an_istio_mutual_server_is_503_uc(lab: Any) -> None:
    seen, logs = _call(lab, eg.mtls_server_plain_client(), "/plain-to-mtls")
    assert seen.status == 503
    assert seen.body == RESET_BODY + "reset reason: connection termination"
    assert "x-envoy-upstream-service-time" not in seen.headers
    [side] = logs.sidecar()
    assert (side["response_code"], side["response_flags"]) == (503, "UC")
    assert side["response_code_details"] == "upstream_reset_before_response_started{connection_termination}"
    assert side["upstream_cluster"] == VIA_GATEWAY_80
    # The handshake failed before any HTTP: no gateway line (its listener ssl.* stats are outside
    # Istio's stats inclusion list, so the proxy shows nothing else either).
    assert logs.gateway_lines(want=0, timeout=1.0) == []


def test_istio_mutual_to_a_plaintext_server_is_503_uf_with_retries(lab: Any) -> None:
    seen, logs = _call(lab, eg.plain_server_mtls_client(), "/mtls-to-plain")
    assert seen.status == 503
    assert seen.body == RESET_BODY + "retried and the latest reset reason: remote connection failure"
    [side] = logs.sidecar()
    assert side["response_code"] == 503
    assert set(side["response_flags"].split(",")) == {"UF", "URX"}
    assert "WRONG_VERSION_NUMBER" in side["upstream_transport_failure_reason"]
    assert side["upstream_cluster"] == VIA_GATEWAY_80
    # The gateway's plaintext HCM got a TLS ClientHello: one codec error per attempt.
    lines = logs.gateway_lines(want=1)
    seen_at_gateway = {(x["response_code"], x["response_flags"], x["response_code_details"]) for x in lines}
    assert seen_at_gateway == {(400, "DPE", "http1.codec_error")}


def test_resolution_none_behind_the_gateway_is_503_uh_relayed(lab: Any) -> None:
    seen, logs = _call(lab, eg.resolution_none(), "/uh")
    assert (seen.status, seen.body) == (503, "no healthy upstream")
    assert "x-envoy-upstream-service-time" in seen.headers
    [gw] = logs.gateway_lines()
    assert (gw["response_code"], gw["response_flags"], gw["response_code_details"]) == (
        503, "UH", "no_healthy_upstream")  # fmt: skip
    assert gw["upstream_cluster"] == f"outbound|80||{eg.HOST}"  # EDS with no endpoints on a gateway
    [side] = logs.sidecar()
    assert (side["response_code"], side["response_flags"]) == (503, "-")
    assert side["upstream_cluster"] == VIA_GATEWAY_80

