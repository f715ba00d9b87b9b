"""Gateway TLS PASSTHROUGH, ISTIO_MUTUAL (HTTPS and TLS) and TCP servers: filter chains, SNI matches,
downstream TLS contexts and route names as pilot builds them."""

from __future__ import annotations

from typing import Any

from lab.istiod import GatewayView, generate_gateway
from lab.istiod.samples import gateway, gateway_server, virtual_service
from tests.lab import gateway_cases as cases
from tests.lab.test_istiod_gateway import hcm, listener

GW = GatewayView(ca_file="/etc/ssl/roots.pem", mesh_ca_file="/certs/root.pem",
                 cert_chain_file="/certs/gw.pem", private_key_file="/certs/gw.key")
CNN = cases.CNN
TLS_INSPECTOR = "envoy.filters.listener.tls_inspector"


def only_chain(cfg: Any, name: str) -> dict[str, Any]:
    chains = listener(cfg, name)["filter_chains"]
    assert len(chains) == 1, chains
    return dict(chains[0])


def test_passthrough_server_routes_by_sni_to_the_external_cluster() -> None:
    cfg = generate_gateway(cases.tls_passthrough(), GW)
    lst = listener(cfg, "0.0.0.0_8443")
    assert [f["name"] for f in lst["listener_filters"]] == [TLS_INSPECTOR]
    chain = only_chain(cfg, "0.0.0.0_8443")
    assert chain["filter_chain_match"] == {"server_names": [CNN]}
    assert "transport_socket" not in chain
    (proxy,) = chain["filters"]
    assert proxy["name"] == "envoy.filters.network.tcp_proxy"
    assert proxy["typed_config"]["cluster"] == f"outbound|443||{CNN}"
    assert proxy["typed_config"]["stat_prefix"] == f"outbound|443||{CNN}"


def test_passthrough_chain_per_sni_match_and_duplicates_skipped() -> None:
    objects = cases.tls_passthrough()
    objects[3] = gateway("istio-egressgateway", [
        gateway_server(443, "TLS", [CNN, "api.example.com"], tls={"mode": "PASSTHROUGH"})])
    objects.append(virtual_service("api", ["api.example.com"], tls=[
        {"match": [{"sniHosts": ["api.example.com"]}],
         "route": [{"destination": {"host": "api.example.com", "port": {"number": 443}}}]},
        {"match": [{"sniHosts": ["api.example.com"]}],
         "route": [{"destination": {"host": "other.example.com", "port": {"number": 443}}}]},
    ], gateways=["istio-egressgateway"], namespace="istio-system"))
    cfg = generate_gateway(objects, GW)
    chains = listener(cfg, "0.0.0.0_8443")["filter_chains"]
    # same creation time: VSs in name order ("api" before "direct-cnn-...")
    assert [c["filter_chain_match"]["server_names"] for c in chains] == [["api.example.com"], [CNN]]
    assert chains[0]["filters"][-1]["typed_config"]["cluster"] == "outbound|443||api.example.com"
    assert any("duplicate SNI hosts ['api.example.com']" in n for n in cfg.notes)


def test_passthrough_gateway_with_only_http_vs_gets_no_route() -> None:
    objects = cases.tls_passthrough()
    objects[-1] = virtual_service("direct-cnn-through-egress-gateway", [CNN], [
        {"route": [{"destination": {"host": CNN, "port": {"number": 443}}}]},
    ], gateways=["istio-egressgateway"], namespace="istio-system")
    cfg = generate_gateway(objects, GW)
    assert cfg.listeners == []
    assert any("0.0.0.0_8443: no filter chains" in n for n in cfg.notes)


def test_istio_mutual_https_server_terminates_mesh_mtls_and_routes_http() -> None:
    cfg = generate_gateway(cases.mutual_http(), GW)
    chain = only_chain(cfg, "0.0.0.0_8443")
    assert chain["filter_chain_match"] == {"server_names": [CNN]}
    tls = chain["transport_socket"]["typed_config"]
    assert tls["@type"].endswith("DownstreamTlsContext")
    assert tls["require_client_certificate"] is True
    common = tls["common_tls_context"]
    assert common["alpn_protocols"] == ["h2", "http/1.1"]
    assert common["tls_certificates"] == [{"certificate_chain": {"filename": "/certs/gw.pem"},
                                           "private_key": {"filename": "/certs/gw.key"}}]
    assert common["validation_context"] == {"trusted_ca": {"filename": "/certs/root.pem"}}
    route = hcm(chain)["route_config"]
    assert route["name"] == "https.443.https-443.istio-egressgateway.istio-system"
    (vhost,) = route["virtual_hosts"]
    assert vhost["name"] == f"{CNN}:443"
    assert vhost["routes"][0]["route"]["cluster"] == f"outbound|443||{CNN}"
    assert hcm(chain)["stat_prefix"] == "outbound_0.0.0.0_8443;"


def test_named_https_server_names_the_stat_prefix() -> None:
    objects = cases.mutual_http()
    objects[4] = gateway("istio-egressgateway", [
        gateway_server(443, "HTTPS", [CNN], name="cnn-mtls", tls={"mode": "ISTIO_MUTUAL"})])
    assert hcm(only_chain(generate_gateway(objects, GW), "0.0.0.0_8443"))["stat_prefix"] == "cnn-mtls"


def test_istio_mutual_tls_server_forwards_tcp_with_mx_alpn() -> None:
    cfg = generate_gateway(cases.mutual_tls(), GW)
    chain = only_chain(cfg, "0.0.0.0_8443")
    assert chain["filter_chain_match"] == {"server_names": [CNN]}
    common = chain["transport_socket"]["typed_config"]["common_tls_context"]
    assert common["alpn_protocols"] == ["istio-peer-exchange", "h2", "http/1.1"]
    assert chain["filters"][-1]["typed_config"]["cluster"] == f"outbound|443||{CNN}"


def test_istio_mutual_without_certificate_files_leaves_the_chain_out() -> None:
    cfg = generate_gateway(cases.mutual_http(), GatewayView())
    assert cfg.listeners == []
    assert any("ISTIO_MUTUAL without certificate files" in n for n in cfg.notes)


def test_tcp_server_keeps_its_port_and_proxies_to_the_vs_destination() -> None:
    cfg = generate_gateway(cases.tcp_server(), GW)
    assert [x["name"] for x in cfg.listeners] == ["0.0.0.0_9000"]
    lst = listener(cfg, "0.0.0.0_9000")
    assert "listener_filters" not in lst
    chain = only_chain(cfg, "0.0.0.0_9000")
    assert "filter_chain_match" not in chain
    assert chain["filters"][-1]["typed_config"]["cluster"] == "outbound|5432||db.example.com"


def test_tcp_route_with_other_port_match_gives_no_listener() -> None:
    objects = cases.tcp_server()
    objects[-1]["spec"]["tcp"][0]["match"][0]["port"] = 9001
    cfg = generate_gateway(objects, GW)
    assert cfg.listeners == []


def test_weighted_tcp_routes_use_the_vs_stat_prefix() -> None:
    objects = cases.tcp_server()
    objects[-1]["spec"]["tcp"][0]["route"] = [
        {"destination": {"host": "db.example.com", "port": {"number": 5432}}, "weight": 80},
        {"destination": {"host": "db2.example.com", "port": {"number": 5432}}, "weight": 20},
    ]
    proxy = only_chain(generate_gateway(objects, GW), "0.0.0.0_9000")["filters"][-1]["typed_config"]
    assert proxy["stat_prefix"] == "db-through-gateway.istio-system"
    assert proxy["weighted_clusters"]["clusters"] == [
        {"name": "outbound|5432||db.example.com", "weight": 80},
        {"name": "outbound|5432||db2.example.com", "weight": 20}]


def test_http_and_tcp_servers_on_one_port_conflict() -> None:
    objects = cases.http_origination()
    objects[4] = gateway("istio-egressgateway", [gateway_server(80, "HTTP", [CNN]),
                                                 gateway_server(80, "TCP", ["db.example.com"])])
    cfg = generate_gateway(objects, GW)
    assert [x["name"] for x in cfg.listeners] == ["0.0.0.0_8080"]
    assert any("conflicts with HTTP" in n for n in cfg.notes)


def test_two_gateways_share_one_http_port_and_route() -> None:
    objects = cases.http_origination()
    objects.append(gateway("second", [gateway_server(80, "HTTP", ["api.example.com"])],
                           created="2026-01-02T00:00:00Z"))
    objects.append(virtual_service("api", ["api.example.com"], [
        {"route": [{"destination": {"host": "api.example.com", "port": {"number": 80}}}]}],
        gateways=["istio-system/second"]))
    cfg = generate_gateway(objects, GW)
    assert [x["name"] for x in cfg.listeners] == ["0.0.0.0_8080"]
    route = hcm(only_chain(cfg, "0.0.0.0_8080"))["route_config"]
    assert route["name"] == "http.8080"
    assert [v["name"] for v in route["virtual_hosts"]] == ["api.example.com:80", f"{CNN}:80"]


def test_same_tls_host_on_a_port_twice_keeps_the_first_gateway() -> None:
    objects = cases.tls_passthrough()
    objects.append(gateway("second", [gateway_server(443, "TLS", [CNN], tls={"mode": "PASSTHROUGH"})],
                           created="2026-01-02T00:00:00Z"))
    cfg = generate_gateway(objects, GW)
    assert len(listener(cfg, "0.0.0.0_8443")["filter_chains"]) == 1
    assert any("Gateway istio-system/second server port 443: duplicate hosts" in n for n in cfg.notes)
