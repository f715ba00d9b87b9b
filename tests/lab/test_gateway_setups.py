"""Istio's egress-gateway task setups in the lab (tests/lab/testdata/egress_gateway.py): each call
succeeds *and* went through the gateway — the sidecar's upstream cluster is the gateway subset
``outbound|PORT|target|istio-egressgateway.istio-system.svc.cluster.local`` and the gateway logged the
call, with the host's cluster as its upstream. Config comes from the lab's generators
(``lab.istiod.generate`` for sidecars, ``generate_gateway`` for the gateway)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import require_lab
from tests.lab.testdata import egress_gateway as eg
from tests.lab.testdata.gateway_calls import Logs, call_http, call_https, call_tcp

pytestmark = pytest.mark.lab


def via_gateway(port: int) -> str:
    return f"outbound|{port}|{eg.SUBSET}|{eg.GATEWAY_HOST}"


@pytest.fixture(scope="module")
def lab() -> Iterator[Any]:
    require_lab()
    from lab.runtime import Lab

    with Lab(egress_gateway=True, access_log=True, internet=[eg.HOST, eg.TCP_HOST]) as lab:
        yield lab


def test_plain_http(lab: Any) -> None:
    lab.apply(eg.plain_http())
    pod = lab.pod("default")
    logs = Logs(pod, lab.gateway)
    seen = call_http(pod, "/plain")
    assert seen.status == 200, seen
    origin = json.loads(seen.body)
    assert (origin["host"], origin["port"], origin["scheme"]) == (eg.HOST, 80, "http")
    [side] = logs.sidecar()
    assert side["upstream_cluster"] == via_gateway(80)
    assert side["upstream_host"] == f"{lab.gateway.address}:8080"
    [gw] = logs.gateway_lines()
    assert (gw["path"], gw["response_code"]) == ("/plain", 200)
    assert gw["upstream_cluster"] == f"outbound|80||{eg.HOST}"
    assert gw["downstream_remote_address"].startswith(pod.address + ":")
    assert gw["protocol"] == "HTTP/2"  # the gateway Service's port is named http2: h2 from the sidecar


def test_https_passthrough_by_sni(lab: Any) -> None:
    lab.apply(eg.https_passthrough())
    pod = lab.pod("default")
    logs = Logs(pod, lab.gateway)
    seen = call_https(pod, "/tls")
    assert seen.status == 200, seen
    origin = json.loads(seen.body)
    assert (origin["sni"], origin["port"], origin["path"]) == (eg.HOST, 443, "/tls")  # the app's own TLS
    [side] = logs.sidecar()
    assert side["upstream_cluster"] == via_gateway(443)
    assert side["upstream_host"] == f"{lab.gateway.address}:8443"
    [gw] = logs.gateway_lines()
    assert gw["requested_server_name"] == eg.HOST
    assert gw["upstream_cluster"] == f"outbound|443||{eg.HOST}"
    assert gw["path"] is None  # opaque: the gateway never saw HTTP


def test_http_with_tls_origination_at_the_gateway_over_mtls(lab: Any) -> None:
    lab.apply(eg.tls_origination())
    pod = lab.pod("default")
    logs = Logs(pod, lab.gateway)
    seen = call_http(pod, "/originate")
    assert seen.status == 200, seen
    origin = json.loads(seen.body)
    assert (origin["scheme"], origin["port"], origin["sni"]) == ("https", 443, eg.HOST)  # the gateway's TLS
    # The gateway terminated the sidecar's mTLS and saw the pod's SPIFFE identity.
    xfcc = origin["headers"]["x-forwarded-client-cert"]
    assert "URI=spiffe://cluster.local/ns/default/sa/default" in xfcc
    assert "By=spiffe://cluster.local/ns/istio-system/sa/istio-egressgateway-service-account" in xfcc
    [side] = logs.sidecar()
    assert side["upstream_cluster"] == via_gateway(80)
    [gw] = logs.gateway_lines()
    assert gw["requested_server_name"] == eg.HOST  # the DR subset's sni
    assert (gw["path"], gw["upstream_cluster"]) == ("/originate", f"outbound|443||{eg.HOST}")


def test_tcp(lab: Any) -> None:
    lab.apply(eg.tcp())
    pod = lab.pod("default")
    logs = Logs(pod, lab.gateway)
    seen = call_tcp(pod)
    assert seen["banner"].startswith(f"SSH-2.0-MeshprobeLab {eg.TCP_HOST} ") and seen["error"] == ""
    assert seen["echo"] == "ping-through-gateway\n"
    [side] = logs.sidecar()
    assert side["upstream_cluster"] == via_gateway(443)
    [gw] = logs.gateway_lines()
    assert gw["upstream_cluster"] == f"outbound|{eg.TCP_PORT}||{eg.TCP_HOST}"


def test_tls_inside_mtls_to_the_gateway(lab: Any) -> None:
    lab.apply(eg.mtls_passthrough())
    pod = lab.pod("default")
    logs = Logs(pod, lab.gateway)
    seen = call_https(pod, "/wrapped")
    assert seen.status == 200, seen
    assert json.loads(seen.body)["sni"] == eg.HOST
    [side] = logs.sidecar()
    assert side["upstream_cluster"] == via_gateway(443)
    [gw] = logs.gateway_lines()
    assert gw["requested_server_name"] == eg.HOST  # the sidecar's mTLS SNI (the DR subset's sni)
    assert gw["upstream_cluster"] == f"outbound|443||{eg.HOST}"


def test_sidecar_presents_its_service_accounts_certificate(lab: Any) -> None:
    lab.apply(eg.tls_origination())
    pod = lab.pod("default", "builder", service_account="builder")
    seen = call_http(pod, "/who")
    assert seen.status == 200, seen
    xfcc = json.loads(seen.body)["headers"]["x-forwarded-client-cert"]
    assert "URI=spiffe://cluster.local/ns/default/sa/builder" in xfcc
    clusters = json.loads(pod.admin_get("/config_dump?resource=dynamic_active_clusters"))["configs"]
    subset = next(c["cluster"] for c in clusters if c["cluster"]["name"] == via_gateway(80))
    tls = subset["transport_socket"]["typed_config"]
    assert tls["sni"] == eg.HOST
    cert = tls["common_tls_context"]["tls_certificates"][0]["certificate_chain"]["filename"]
    assert cert == str(lab.workload_cert("default", "builder").cert_chain_file)
    assert tls["common_tls_context"]["validation_context"]["trusted_ca"]["filename"] == str(lab.mesh_ca_file)
