"""Unit tests of the generated clusters (lab/istiod/clusters.py, catchall.py): types per resolution,
DNS settings, connect timeout, upstream TLS from DestinationRules, auto-mTLS (cluster.go,
cluster_builder.go, cluster_tls.go)."""

from __future__ import annotations

from typing import Any

import pytest

from lab.istiod import GeneratedConfig, PodView, generate
from lab.istiod.samples import destination_rule, kube_service, service_entry

POD = PodView("default", ca_file="/lab/ca.pem")


def cluster(cfg: GeneratedConfig, name: str) -> dict[str, Any]:
    found = [c for c in cfg.clusters if c["name"] == name]
    assert found, f"no cluster {name}; have {[c['name'] for c in cfg.clusters]}"
    return found[0]


TYPES = [
    ("DNS -> STRICT_DNS", "DNS", "STRICT_DNS"),
    ("DNS_ROUND_ROBIN -> LOGICAL_DNS", "DNS_ROUND_ROBIN", "LOGICAL_DNS"),
    ("NONE -> ORIGINAL_DST", "NONE", "ORIGINAL_DST"),
    ("STATIC -> EDS flattened to STATIC", "STATIC", "STATIC"),
]


@pytest.mark.parametrize(("resolution", "kind"), [c[1:] for c in TYPES], ids=[c[0] for c in TYPES])
def test_cluster_type_per_resolution(resolution: str, kind: str) -> None:
    endpoints = [{"address": "10.9.0.5"}] if resolution == "STATIC" else []
    cfg = generate(
        [service_entry("a", ["a.example"], [(80, "HTTP")], resolution=resolution, endpoints=endpoints)], POD
    )
    c = cluster(cfg, "outbound|80||a.example")
    assert c["type"] == kind
    assert c["connect_timeout"] == "10s"
    assert c["lb_policy"] == ("CLUSTER_PROVIDED" if kind == "ORIGINAL_DST" else "LEAST_REQUEST")


def test_dns_cluster_settings_and_endpoint_target_port() -> None:
    cfg = generate([service_entry("a", ["a.example"], [(80, "HTTP", 8080)])], POD)
    c = cluster(cfg, "outbound|80||a.example")
    assert (c["dns_lookup_family"], c["respect_dns_ttl"]) == ("V4_ONLY", True)
    ep = c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    assert ep == {"address": "a.example", "port_value": 8080}


def test_none_target_port_overrides_original_destination_port() -> None:
    cfg = generate([service_entry("a", ["a.example"], [(80, "HTTP", 8080)], resolution="NONE")], POD)
    assert cluster(cfg, "outbound|80||a.example")["original_dst_lb_config"] == {
        "upstream_port_override": 8080
    }


def test_static_endpoint_port_by_name() -> None:
    se = service_entry(
        "a",
        ["a.example"],
        [(80, "HTTP")],
        resolution="STATIC",
        endpoints=[{"address": "10.9.0.5", "ports": {"p80": 8099}}],
    )
    c = cluster(generate([se], POD), "outbound|80||a.example")
    addr = c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    assert addr == {"address": "10.9.0.5", "port_value": 8099}


def test_connect_timeout_from_pod_mesh_and_dr() -> None:
    se = service_entry("a", ["a.example"], [(80, "HTTP")])
    assert (
        cluster(generate([se], PodView("default", connect_timeout_s=0.5)), "outbound|80||a.example")[
            "connect_timeout"
        ]
        == "0.500s"
    )
    assert (
        cluster(generate([se], PodView("default", mesh={"connectTimeout": "3s"})), "BlackHoleCluster")[
            "connect_timeout"
        ]
        == "3s"
    )
    dr = destination_rule("a", "a.example", connect_timeout="2s")
    assert cluster(generate([se, dr], POD), "outbound|80||a.example")["connect_timeout"] == "2s"


def test_catch_all_clusters_always_present() -> None:
    names = [c["name"] for c in generate([], PodView("default")).clusters]
    assert names == ["BlackHoleCluster", "PassthroughCluster", "InboundPassthroughCluster"]
    cfg = generate([], PodView("default"))
    assert cluster(cfg, "BlackHoleCluster")["type"] == "STATIC" and "load_assignment" not in cluster(
        cfg, "BlackHoleCluster"
    )
    assert cluster(cfg, "PassthroughCluster")["type"] == "ORIGINAL_DST"


def test_k8s_service_cluster_and_udp_skipped() -> None:
    cfg = generate(
        [
            kube_service(
                "dns",
                [{"port": 53, "name": "dns", "protocol": "UDP"}, {"port": 53, "name": "dns-tcp"}],
                cluster_ip="10.96.0.10",
            )
        ],
        POD,
    )
    names = [c["name"] for c in cfg.clusters]
    assert names.count("outbound|53||dns.default.svc.cluster.local") == 1


def test_invalid_wildcard_dns_entry_is_left_out() -> None:
    # A wildcard DNS entry without endpoints is rejected at admission (validation.go).
    cfg = generate([service_entry("w", ["*.w.example"], [(80, "HTTP")], resolution="DNS")], POD)
    assert "outbound|80||*.w.example" not in [c["name"] for c in cfg.clusters]
    assert [lst["name"] for lst in cfg.listeners if lst["name"] != "virtualInbound"] == ["virtualOutbound"]
    assert any("invalid, left out" in n for n in cfg.notes)


def test_wildcard_dns_entry_with_endpoints_sends_every_host_there() -> None:
    se = service_entry(
        "w", ["*.w.example"], [(80, "HTTP")], resolution="DNS", endpoints=[{"address": "lb.example"}]
    )
    c = cluster(generate([se], POD), "outbound|80||*.w.example")
    ep = c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    assert ep == {"address": "lb.example", "port_value": 80}


def tls_context(c: dict[str, Any]) -> dict[str, Any]:
    ctx: dict[str, Any] = c["transport_socket"]["typed_config"]
    return ctx


def test_dr_simple_tls_origination_with_auto_sni() -> None:
    objects = [
        service_entry("a", ["a.example"], [(80, "HTTP", 443)]),
        destination_rule("a", "a.example", tls_mode="SIMPLE"),
    ]
    c = cluster(generate(objects, POD), "outbound|80||a.example")
    ctx = tls_context(c)
    assert ctx["common_tls_context"]["validation_context"]["trusted_ca"] == {"filename": "/lab/ca.pem"}
    assert "sni" not in ctx
    opts = c["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    assert opts["upstream_http_protocol_options"] == {"auto_sni": True, "auto_san_validation": True}


def test_dr_sni_and_port_level_override() -> None:
    objects = [
        service_entry("a", ["a.example"], [(80, "HTTP"), (443, "TLS")]),
        destination_rule("a", "a.example", tls_mode="SIMPLE", sni="x.example", port_tls={443: "DISABLE"}),
    ]
    cfg = generate(objects, POD)
    assert tls_context(cluster(cfg, "outbound|80||a.example"))["sni"] == "x.example"
    assert "transport_socket" not in cluster(cfg, "outbound|443||a.example")


def test_dr_istio_mutual_on_external_host() -> None:
    objects = [
        service_entry("a", ["a.example"], [(443, "TLS")]),
        destination_rule("a", "a.example", tls_mode="ISTIO_MUTUAL"),
    ]
    ctx = tls_context(cluster(generate(objects, POD), "outbound|443||a.example"))
    assert ctx["sni"] == "outbound|443||a.example"
    assert ctx["common_tls_context"]["alpn_protocols"] == ["istio-peer-exchange", "istio"]


def test_dr_lookup_order_and_export_to() -> None:
    se = service_entry("a", ["a.example"], [(80, "HTTP")])
    hidden = destination_rule("a", "a.example", tls_mode="SIMPLE", namespace="shop", export_to=["."])
    assert "transport_socket" not in cluster(generate([se, hidden], POD), "outbound|80||a.example")
    root = destination_rule("a", "*.example", tls_mode="SIMPLE", namespace="istio-system")
    assert "transport_socket" in cluster(generate([se, root], POD), "outbound|80||a.example")
    local = destination_rule("b", "a.example", tls_mode="DISABLE", namespace="default")
    assert "transport_socket" not in cluster(generate([se, root, local], POD), "outbound|80||a.example")


def test_auto_mtls_only_for_istio_endpoints_and_never_original_dst() -> None:
    labelled = [{"address": "10.9.0.5", "labels": {"security.istio.io/tlsMode": "istio"}}]
    static = service_entry(
        "a", ["a.example"], [(80, "HTTP")], resolution="STATIC", endpoints=labelled, location="MESH_INTERNAL"
    )
    c = cluster(generate([static], POD), "outbound|80||a.example")
    assert [m["name"] for m in c["transport_socket_matches"]] == ["tlsMode-istio", "tlsMode-disabled"]
    internal_only = service_entry("b", ["b.example"], [(80, "HTTP")], location="MESH_INTERNAL")
    assert "transport_socket_matches" not in cluster(generate([internal_only], POD), "outbound|80||b.example")
    none = service_entry("c", ["c.example"], [(80, "HTTP")], resolution="NONE", endpoints=labelled)
    assert "transport_socket_matches" not in cluster(generate([none], POD), "outbound|80||c.example")


def test_protocol_options_h2_and_auto() -> None:
    cfg = generate([service_entry("a", ["a.example"], [(50051, "GRPC"), (81, "")])], POD)
    opts = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
    assert (
        "http2_protocol_options"
        in cluster(cfg, "outbound|50051||a.example")["typed_extension_protocol_options"][opts][
            "explicit_http_config"
        ]
    )
    assert (
        "use_downstream_protocol_config"
        in cluster(cfg, "outbound|81||a.example")["typed_extension_protocol_options"][opts]
    )
