"""The gateway generator (``lab.istiod.generate_gateway``) on istio's egress-gateway tasks: listener,
route and cluster names and shapes as pilot builds them for a gateway proxy."""

from __future__ import annotations

from typing import Any

from lab.istiod import GatewayView, generate_gateway
from lab.istiod.samples import gateway, gateway_server, virtual_service
from tests.lab import gateway_cases as cases

GW = GatewayView(ca_file="/etc/ssl/roots.pem", mesh_ca_file="/certs/root.pem",
                 cert_chain_file="/certs/gw.pem", private_key_file="/certs/gw.key")
CNN = cases.CNN


def listener(cfg: Any, name: str) -> dict[str, Any]:
    found = [x for x in cfg.listeners if x["name"] == name]
    assert found, (name, [x["name"] for x in cfg.listeners], cfg.notes)
    return dict(found[0])


def cluster(cfg: Any, name: str) -> dict[str, Any]:
    found = [c for c in cfg.clusters if c["name"] == name]
    assert found, (name, [c["name"] for c in cfg.clusters])
    return dict(found[0])


def hcm(chain: dict[str, Any]) -> dict[str, Any]:
    return dict(chain["filters"][-1]["typed_config"])


def test_http_server_listens_on_the_service_target_port_with_route_http_8080() -> None:
    cfg = generate_gateway(cases.http_origination(), GW)
    assert [x["name"] for x in cfg.listeners] == ["0.0.0.0_8080"]
    lst = listener(cfg, "0.0.0.0_8080")
    assert lst["address"]["socket_address"] == {"address": "0.0.0.0", "port_value": 8080}
    assert lst["traffic_direction"] == "OUTBOUND" and "listener_filters" not in lst
    (chain,) = lst["filter_chains"]
    assert "filter_chain_match" not in chain and "transport_socket" not in chain
    manager = hcm(chain)
    assert manager["stat_prefix"] == "outbound_0.0.0.0_8080;"
    assert manager["use_remote_address"] is True
    assert manager["forward_client_cert_details"] == "SANITIZE_SET"
    route = manager["route_config"]
    assert route["name"] == "http.8080"
    (vhost,) = route["virtual_hosts"]
    assert vhost["name"] == f"{CNN}:80" and vhost["domains"] == [CNN]
    (r,) = vhost["routes"]
    assert r["route"]["cluster"] == f"outbound|443||{CNN}"
    assert r["decorator"]["operation"] == f"{CNN}:443/*"
    assert [f["name"] for f in manager["http_filters"]] == [
        "envoy.filters.http.fault", "envoy.filters.http.cors", "envoy.filters.http.router"]


def test_http_server_clusters_originate_tls_and_add_blackhole() -> None:
    cfg = generate_gateway(cases.http_origination(), GW)
    upstream = cluster(cfg, f"outbound|443||{CNN}")
    assert upstream["type"] == "STRICT_DNS"
    tls = upstream["transport_socket"]["typed_config"]
    assert tls["@type"].endswith("UpstreamTlsContext")
    assert tls["common_tls_context"]["validation_context"]["trusted_ca"]["filename"] == "/etc/ssl/roots.pem"
    options = next(iter(upstream["typed_extension_protocol_options"].values()))
    assert options["upstream_http_protocol_options"]["auto_sni"] is True
    assert "transport_socket" not in cluster(cfg, f"outbound|80||{CNN}")
    names = [c["name"] for c in cfg.clusters]
    assert names[-1] == "BlackHoleCluster"
    assert "PassthroughCluster" not in names and "InboundPassthroughCluster" not in names
    # the gateway sees every exported service, its own Service included; the client's subset DR
    # lives in "default", neither the gateway's nor the service's namespace, so it does not apply
    assert f"outbound|80||{cases.GW_HOST}" in names
    assert f"outbound|80|cnn|{cases.GW_HOST}" not in names


def test_gateway_port_without_service_port_is_used_as_is() -> None:
    objects = [o for o in cases.http_origination() if o["kind"] != "Service"]
    cfg = generate_gateway(objects, GW)
    assert [x["name"] for x in cfg.listeners] == ["0.0.0.0_80"]
    assert hcm(listener(cfg, "0.0.0.0_80")["filter_chains"][0])["route_config"]["name"] == "http.80"


def test_gateway_selector_must_match_the_proxy_labels() -> None:
    objects = cases.http_origination()
    objects[4] = gateway("istio-egressgateway", [gateway_server(80, "HTTP", [CNN])],
                         selector={"istio": "ingressgateway"})
    cfg = generate_gateway(objects, GW)
    assert cfg.listeners == []
    assert any("no Gateway selects" in n for n in cfg.notes)


def test_gateway_in_another_namespace_is_used_unless_scoped_to_namespace() -> None:
    objects = cases.http_origination()
    objects[4] = gateway("istio-egressgateway", [gateway_server(80, "HTTP", [CNN])], namespace="default")
    objects[-1]["spec"]["gateways"] = ["istio-egressgateway", "mesh"]
    objects[-1]["spec"]["http"][1]["match"][0]["gateways"] = ["istio-egressgateway"]
    cfg = generate_gateway(objects, GW)
    vhosts = hcm(listener(cfg, "0.0.0.0_8080")["filter_chains"][0])["route_config"]["virtual_hosts"]
    assert [v["name"] for v in vhosts] == [f"{CNN}:80"]
    scoped = generate_gateway(objects, GatewayView(scope_to_namespace=True))
    assert scoped.listeners == []


def test_vs_host_not_on_the_gateway_leaves_only_the_blackhole_vhost() -> None:
    cfg = generate_gateway(cases.nothing_selected(), GW)
    route = hcm(listener(cfg, "0.0.0.0_8080")["filter_chains"][0])["route_config"]
    assert route["name"] == "http.8080"
    assert route["virtual_hosts"] == [{"name": "blackhole:80", "domains": ["*"], "routes": []}]


def test_vs_not_exported_to_the_gateway_namespace_is_not_bound() -> None:
    objects = cases.http_origination()
    objects[-1]["spec"]["exportTo"] = ["."]
    cfg = generate_gateway(objects, GW)
    route = hcm(listener(cfg, "0.0.0.0_8080")["filter_chains"][0])["route_config"]
    assert [v["name"] for v in route["virtual_hosts"]] == ["blackhole:80"]


def test_match_for_another_gateway_is_dropped() -> None:
    objects = cases.http_origination()
    objects[-1]["spec"]["http"][1]["match"][0]["gateways"] = ["istio-system/other-gateway"]
    cfg = generate_gateway(objects, GW)
    route = hcm(listener(cfg, "0.0.0.0_8080")["filter_chains"][0])["route_config"]
    # the VS yields no route for this gateway ("no routes matched"), so it adds no vhost
    assert [v["name"] for v in route["virtual_hosts"]] == ["blackhole:80"]


def test_subset_without_destination_rule_names_a_cluster_that_is_not_generated() -> None:
    objects = cases.http_origination()
    objects[-1]["spec"]["http"][1]["route"][0]["destination"]["subset"] = "v1"
    cfg = generate_gateway(objects, GW)
    (vhost,) = hcm(listener(cfg, "0.0.0.0_8080")["filter_chains"][0])["route_config"]["virtual_hosts"]
    assert vhost["routes"][0]["route"]["cluster"] == f"outbound|443|v1|{CNN}"
    assert f"outbound|443|v1|{CNN}" not in [c["name"] for c in cfg.clusters]


def test_resolution_none_behind_the_gateway_is_an_endpointless_cluster() -> None:
    objects = cases.http_origination()
    objects[3] = cases.service_entry("cnn", [CNN], [(80, "HTTP"), (443, "HTTPS")], resolution="NONE")
    cfg = generate_gateway(objects, GW)
    upstream = cluster(cfg, f"outbound|443||{CNN}")
    assert upstream["type"] == "STATIC"  # EDS on a gateway, flattened
    assert upstream["load_assignment"]["endpoints"] == []
    assert all(c["type"] != "ORIGINAL_DST" for c in cfg.clusters)


def test_two_vs_hosts_on_one_server_collapse_into_one_vhost() -> None:
    objects = cases.http_origination()
    objects[4] = gateway("istio-egressgateway", [gateway_server(80, "HTTP", ["a.example", "b.example"])])
    objects.append(virtual_service("ab", ["b.example", "a.example"], [
        {"route": [{"destination": {"host": CNN, "port": {"number": 443}}}]}],
        gateways=["istio-system/istio-egressgateway"]))
    cfg = generate_gateway(objects, GW)
    (vhost,) = hcm(listener(cfg, "0.0.0.0_8080")["filter_chains"][0])["route_config"]["virtual_hosts"]
    assert vhost["name"] == "a.example:80" and vhost["domains"] == ["a.example", "b.example"]


def test_namespaced_server_host_binds_only_vs_of_that_namespace() -> None:
    objects = cases.http_origination()
    objects[4] = gateway("istio-egressgateway", [gateway_server(80, "HTTP", [f"team/{CNN}"])])
    cfg = generate_gateway(objects, GW)  # the VS lives in "default"
    route = hcm(listener(cfg, "0.0.0.0_8080")["filter_chains"][0])["route_config"]
    assert [v["name"] for v in route["virtual_hosts"]] == ["blackhole:80"]


def test_https_redirect_server_host_without_vs_gets_a_require_tls_vhost() -> None:
    objects = cases.http_origination()
    objects[4] = gateway("istio-egressgateway", [
        gateway_server(80, "HTTP", [CNN, "plain.example"], tls={"httpsRedirect": True})])
    cfg = generate_gateway(objects, GW)
    vhosts = hcm(listener(cfg, "0.0.0.0_8080")["filter_chains"][0])["route_config"]["virtual_hosts"]
    by_name = {v["name"]: v for v in vhosts}
    assert set(by_name) == {f"{CNN}:80", "plain.example:80"}
    assert all(v["require_tls"] == "ALL" for v in vhosts)
    assert by_name["plain.example:80"]["routes"] == []
    assert by_name[f"{CNN}:80"]["routes"][0]["route"]["cluster"] == f"outbound|443||{CNN}"


def test_service_entry_endpoint_at_the_gateway_address_translates_its_port() -> None:
    objects = [o for o in cases.http_origination() if o["kind"] != "Service"]
    objects.append(cases.service_entry(
        "gw-instance", ["gw.istio-system.svc.cluster.local"], [(80, "HTTP", 8081)], resolution="STATIC",
        namespace="istio-system", location="MESH_INTERNAL", endpoints=[{"address": "10.1.0.9"}]))
    assert [x["name"] for x in generate_gateway(objects, GW).listeners] == ["0.0.0.0_80"]
    at_ip = GatewayView(ips=("10.1.0.9",))
    assert [x["name"] for x in generate_gateway(objects, at_ip).listeners] == ["0.0.0.0_8081"]


def test_service_opting_out_of_port_translation_is_skipped() -> None:
    objects = cases.http_origination()
    objects[2]["metadata"]["labels"] = {"experimental.istio.io/disable-gateway-port-translation": "true"}
    assert [x["name"] for x in generate_gateway(objects, GW).listeners] == ["0.0.0.0_80"]
