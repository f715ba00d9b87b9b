"""Config-level facts the egress-gateway lab relies on (no lab needed): a DestinationRule subset's own
TLS (``MergeSubsetTrafficPolicy``) reaches the subset cluster with the pod's workload certificate, and
the gateway Service/EndpointSlice the lab adds for the sidecars."""

from __future__ import annotations

from typing import Any

from tests.lab.testdata import egress_gateway as eg


def _clusters(objects: list[dict[str, Any]], **files: str) -> dict[str, dict[str, Any]]:
    from lab.gateway import service_objects
    from lab.istiod import PodView, generate

    view = PodView(namespace="default", mesh_ca_file="/mesh/root.pem", ca_file="/lab/ca.pem", **files)
    out = generate([*objects, *service_objects(objects, "10.1.0.2", "10.1.4.1")], view)
    return {c["name"]: c for c in out.clusters}


def test_subset_port_tls_istio_mutual_presents_the_workload_cert() -> None:
    files = {"cert_chain_file": "/certs/chain.pem", "private_key_file": "/certs/key.pem"}
    clusters = _clusters(eg.tls_origination(), **files)
    subset = clusters[f"outbound|80|{eg.SUBSET}|{eg.GATEWAY_HOST}"]
    tls = subset["transport_socket"]["typed_config"]
    assert tls["sni"] == eg.HOST
    common = tls["common_tls_context"]
    assert common["tls_certificates"] == [{"certificate_chain": {"filename": "/certs/chain.pem"},
                                           "private_key": {"filename": "/certs/key.pem"}}]  # fmt: skip
    assert common["validation_context"]["trusted_ca"] == {"filename": "/mesh/root.pem"}
    assert common["alpn_protocols"] == ["istio-peer-exchange", "istio-h2"]  # port http2: h2 inside mTLS
    # The subset's TLS is for port 80 only; the default cluster and port 443 stay plaintext (the
    # gateway's endpoints carry no tlsMode label, so no auto-mTLS either).
    assert "transport_socket" not in clusters[f"outbound|80||{eg.GATEWAY_HOST}"]
    assert "transport_socket" not in clusters[f"outbound|443|{eg.SUBSET}|{eg.GATEWAY_HOST}"]
    assert "transport_socket_matches" not in clusters[f"outbound|443|{eg.SUBSET}|{eg.GATEWAY_HOST}"]


def test_istio_mutual_without_workload_cert_presents_none() -> None:
    clusters = _clusters(eg.tls_origination())
    common = clusters[f"outbound|80|{eg.SUBSET}|{eg.GATEWAY_HOST}"]["transport_socket"]["typed_config"][
        "common_tls_context"]
    assert "tls_certificates" not in common


def test_subset_without_tls_is_a_copy_of_the_default_cluster() -> None:
    clusters = _clusters(eg.plain_http())
    base = clusters[f"outbound|80||{eg.GATEWAY_HOST}"]
    subset = clusters[f"outbound|80|{eg.SUBSET}|{eg.GATEWAY_HOST}"]
    assert subset["load_assignment"]["endpoints"] == base["load_assignment"]["endpoints"]
    assert subset["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"] == {
        "socket_address": {"address": "10.1.0.2", "port_value": 8080}}
