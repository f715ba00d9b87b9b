"""Unit tests of the generated listener shape (lab/istiod): binds, chains, names, inspectors.

Each case names the pilot behaviour it checks (the pilot sources are listed in docs/lab-config.md)."""

from __future__ import annotations

from typing import Any

import pytest

from lab.istiod import GeneratedConfig, PodView, generate
from lab.istiod.samples import kube_service, service_entry

REG = PodView("default", mode_override="REGISTRY_ONLY")
DNS = PodView("default", dns_capture=True)
DNS_NO_ALLOC = PodView("default", dns_capture=True, auto_allocate=False)
TWO_ADDRESSES = ["10.9.0.1", "10.9.0.2"]


def listener(cfg: GeneratedConfig, name: str) -> dict[str, Any]:
    found = [lst for lst in cfg.listeners if lst["name"] == name]
    assert found, f"no listener {name}; have {[lst['name'] for lst in cfg.listeners]}"
    return found[0]


def chain_targets(lst: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """(filter_chain_match, cluster-or-route) per chain, the default chain last with match 'DEFAULT'."""
    out = []
    chains = [(c.get("filter_chain_match", {}), c) for c in lst.get("filter_chains", [])]
    if "default_filter_chain" in lst:
        chains.append(({"DEFAULT": lst["default_filter_chain"].get("name", "")}, lst["default_filter_chain"]))
    for match, chain in chains:
        cfg = chain["filters"][-1]["typed_config"]
        out.append((match, cfg.get("cluster") or cfg["route_config"]["name"]))
    return out


def names(cfg: GeneratedConfig) -> list[str]:
    return sorted(lst["name"] for lst in cfg.listeners if lst["name"] != "virtualInbound")


# (case, objects, pod, expected listener names)
LISTENER_NAMES = [
    ("no services: only virtualOutbound", [], REG, ["virtualOutbound"]),
    (
        "HTTP SE binds 0.0.0.0 even with addresses",
        [service_entry("a", ["a.example"], [(80, "HTTP")], addresses=["10.9.0.1"])],
        REG,
        ["0.0.0.0_80", "virtualOutbound"],
    ),
    (
        "TCP SE with one address binds that address",
        [service_entry("a", ["a.example"], [(22, "TCP")], addresses=["10.9.0.1"], resolution="NONE")],
        REG,
        ["10.9.0.1_22", "virtualOutbound"],
    ),
    (
        "TCP SE with a /32 CIDR binds the IP",
        [service_entry("a", ["a.example"], [(22, "TCP")], addresses=["10.9.0.1/32"], resolution="NONE")],
        REG,
        ["10.9.0.1_22", "virtualOutbound"],
    ),
    (
        "TCP SE with two addresses: one listener each",
        [service_entry("a", ["a.example"], [(22, "TCP")], addresses=TWO_ADDRESSES, resolution="NONE")],
        REG,
        ["10.9.0.1_22", "10.9.0.2_22", "virtualOutbound"],
    ),
    (
        "TCP SE with a CIDR binds 0.0.0.0",
        [service_entry("a", ["a.example"], [(22, "TCP")], addresses=["10.9.0.0/24"], resolution="NONE")],
        REG,
        ["0.0.0.0_22", "virtualOutbound"],
    ),
    (
        "TCP SE without addresses binds 0.0.0.0",
        [service_entry("a", ["a.example"], [(22, "TCP")])],
        REG,
        ["0.0.0.0_22", "virtualOutbound"],
    ),
    (
        "DNS capture: auto-allocated VIP for DNS entry",
        [service_entry("a", ["a.example"], [(22, "TCP")])],
        PodView("default", dns_capture=True),
        ["240.240.0.1_22", "virtualOutbound"],
    ),
    (
        "DNS capture: no VIP for NONE entry",
        [service_entry("a", ["a.example"], [(22, "TCP")], resolution="NONE")],
        DNS,
        ["0.0.0.0_22", "virtualOutbound"],
    ),
    (
        "DNS capture: no VIP when allocation is off",
        [service_entry("a", ["a.example"], [(22, "TCP")])],
        DNS_NO_ALLOC,
        ["0.0.0.0_22", "virtualOutbound"],
    ),
    (
        "NONE entry with endpoints: one listener per endpoint IP",
        [
            service_entry(
                "a",
                ["a.example"],
                [(5432, "TCP")],
                resolution="NONE",
                endpoints=[{"address": "10.9.0.7"}, {"address": "10.9.0.8"}],
            )
        ],
        REG,
        ["10.9.0.7_5432", "10.9.0.8_5432", "virtualOutbound"],
    ),
    (
        "k8s unnamed port binds the ClusterIP",
        [kube_service("db", [{"port": 5432}], cluster_ip="10.96.0.5")],
        REG,
        ["10.96.0.5_5432", "virtualOutbound"],
    ),
    (
        "k8s http-named port binds 0.0.0.0",
        [kube_service("web", [{"port": 80, "name": "http-web"}], cluster_ip="10.96.0.6")],
        REG,
        ["0.0.0.0_80", "virtualOutbound"],
    ),
    (
        "k8s appProtocol http binds 0.0.0.0",
        [kube_service("web", [{"port": 8080, "name": "web", "appProtocol": "http"}], cluster_ip="10.96.0.6")],
        REG,
        ["0.0.0.0_8080", "virtualOutbound"],
    ),
    (
        "k8s headless without endpoints: no listener",
        [kube_service("hl", [{"port": 5432, "name": "tcp"}], cluster_ip="None")],
        REG,
        ["virtualOutbound"],
    ),
    (
        "ExternalName alone: no listener (alias, pilot resolveServiceAliases)",
        [
            kube_service(
                "ext", [{"port": 22, "name": "tcp"}], service_type="ExternalName", external_name="git.example"
            )
        ],
        REG,
        ["virtualOutbound"],
    ),
    (
        "UDP ports get no listener",
        [service_entry("a", ["a.example"], [(53, "UDP")], addresses=["10.9.0.1"])],
        REG,
        ["virtualOutbound"],
    ),
]


@pytest.mark.parametrize(
    ("objects", "pod", "expected"), [c[1:] for c in LISTENER_NAMES], ids=[c[0] for c in LISTENER_NAMES]
)
def test_listener_names(objects: list[dict[str, Any]], pod: PodView, expected: list[str]) -> None:
    assert names(generate(objects, pod)) == expected


def test_virtual_outbound_shape_and_mode() -> None:
    for mode, cluster in (("REGISTRY_ONLY", "BlackHoleCluster"), ("ALLOW_ANY", "PassthroughCluster")):
        cfg = generate([], PodView("default", mode_override=mode))
        vo = listener(cfg, "virtualOutbound")
        assert vo["address"]["socket_address"] == {"address": "0.0.0.0", "port_value": 15001}
        assert vo["use_original_dst"] is True
        chain_names = [c["name"] for c in vo["filter_chains"]]
        assert chain_names == ["virtualOutbound-blackhole", "virtualOutbound-catchall-tcp"]
        assert vo["filter_chains"][0]["filter_chain_match"] == {"destination_port": 15001}
        assert vo["filter_chains"][0]["filters"][0]["typed_config"]["cluster"] == "BlackHoleCluster"
        assert vo["filter_chains"][1]["filters"][0]["typed_config"]["cluster"] == cluster
        assert cfg.mode == mode


def test_mesh_default_mode_is_allow_any() -> None:
    cfg = generate([], PodView("default"))
    assert cfg.mode == "ALLOW_ANY"
    cfg = generate([], PodView("default", mesh={"outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}}))
    assert (cfg.mode, cfg.mode_from) == ("REGISTRY_ONLY", "MeshConfig outboundTrafficPolicy")


def test_http_chain_alpn_without_http10_and_passthrough_default() -> None:
    cfg = generate([service_entry("a", ["a.example"], [(80, "HTTP")])], REG)
    lst = listener(cfg, "0.0.0.0_80")
    assert chain_targets(lst) == [
        ({"transport_protocol": "raw_buffer", "application_protocols": ["http/1.1", "h2c"]}, "80"),
        ({"DEFAULT": "PassthroughFilterChain"}, "BlackHoleCluster"),
    ]
    assert [f["name"] for f in lst["listener_filters"]] == ["envoy.filters.listener.http_inspector"]
    assert lst["listener_filters_timeout"] == "0s"
    assert lst["bind_to_port"] is False
    hcm = lst["filter_chains"][0]["filters"][0]["typed_config"]
    assert "http_protocol_options" not in hcm
    assert [f["name"] for f in hcm["http_filters"]][-1] == "envoy.filters.http.router"


def test_http10_adds_alpn_and_accept_http_10() -> None:
    cfg = generate([service_entry("a", ["a.example"], [(80, "HTTP")])], PodView("default", http10=True))
    lst = listener(cfg, "0.0.0.0_80")
    match, _ = chain_targets(lst)[0]
    assert match["application_protocols"] == ["http/1.0", "http/1.1", "h2c"]
    hcm = lst["filter_chains"][0]["filters"][0]["typed_config"]
    assert hcm["http_protocol_options"] == {"accept_http_10": True}


def test_protocol_detection_timeout_only_with_http_inspector() -> None:
    mesh = {"protocolDetectionTimeout": "5s"}
    objects = [
        service_entry("a", ["a.example"], [(80, "HTTP")]),
        service_entry("b", ["b.example"], [(22, "TCP")], addresses=["10.9.0.1"], resolution="NONE"),
    ]
    cfg = generate(objects, PodView("default", mesh=mesh))
    assert listener(cfg, "0.0.0.0_80")["listener_filters_timeout"] == "5s"
    tcp = listener(cfg, "10.9.0.1_22")
    assert tcp["listener_filters_timeout"] == "0s"
    assert "listener_filters" not in tcp


def test_tls_sni_on_wildcard_bind_and_none_on_vip() -> None:
    wildcard = generate([service_entry("a", ["a.example"], [(443, "TLS")])], REG)
    lst = listener(wildcard, "0.0.0.0_443")
    assert chain_targets(lst) == [
        ({"server_names": ["a.example"]}, "outbound|443||a.example"),
        ({"DEFAULT": "PassthroughFilterChain"}, "BlackHoleCluster"),
    ]
    assert [f["name"] for f in lst["listener_filters"]] == ["envoy.filters.listener.tls_inspector"]
    vip = generate([service_entry("a", ["a.example"], [(443, "HTTPS")], addresses=["10.9.0.1"])], REG)
    lst = listener(vip, "10.9.0.1_443")
    assert chain_targets(lst) == [({}, "outbound|443||a.example")]
    assert "default_filter_chain" not in lst and "listener_filters" not in lst


def test_tls_sni_with_cidr() -> None:
    cfg = generate(
        [service_entry("a", ["a.example"], [(443, "TLS")], addresses=["10.9.0.0/24"], resolution="NONE")], REG
    )
    assert chain_targets(listener(cfg, "0.0.0.0_443")) == [
        (
            {
                "server_names": ["a.example"],
                "prefix_ranges": [{"address_prefix": "10.9.0.0", "prefix_len": 24}],
            },
            "outbound|443||a.example",
        ),
        ({"DEFAULT": "PassthroughFilterChain"}, "BlackHoleCluster"),
    ]


def test_tls_on_auto_allocated_vip_has_no_sni() -> None:
    cfg = generate([service_entry("a", ["a.example"], [(443, "TLS")])], PodView("default", dns_capture=True))
    assert chain_targets(listener(cfg, "240.240.0.1_443")) == [({}, "outbound|443||a.example")]


def test_tcp_without_address_captures_the_port() -> None:
    cfg = generate([service_entry("a", ["a.example"], [(22, "TCP")])], REG)
    lst = listener(cfg, "0.0.0.0_22")
    assert chain_targets(lst) == [({}, "outbound|22||a.example")]
    assert "default_filter_chain" not in lst


def test_auto_port_without_vip_tcp_default_plus_http_chain() -> None:
    cfg = generate([service_entry("a", ["a.example"], [(81, "")])], REG)
    assert chain_targets(listener(cfg, "0.0.0.0_81")) == [
        ({"transport_protocol": "raw_buffer", "application_protocols": ["http/1.1", "h2c"]}, "81"),
        ({"DEFAULT": ""}, "outbound|81||a.example"),
    ]


def test_auto_port_with_vip_uses_host_port_route() -> None:
    cfg = generate([kube_service("db", [{"port": 5432}], cluster_ip="10.96.0.5")], REG)
    assert chain_targets(listener(cfg, "10.96.0.5_5432")) == [
        (
            {"transport_protocol": "raw_buffer", "application_protocols": ["http/1.1", "h2c"]},
            "db.default.svc.cluster.local:5432",
        ),
        ({"DEFAULT": ""}, "outbound|5432||db.default.svc.cluster.local"),
    ]


def test_http_and_tls_on_same_port_merge_into_one_listener() -> None:
    objects = [
        service_entry("h", ["h.example"], [(443, "HTTP")], created="2024-01-01T00:00:00Z"),
        service_entry("t", ["t.example"], [(443, "TLS")], created="2024-01-02T00:00:00Z"),
    ]
    lst = listener(generate(objects, REG), "0.0.0.0_443")
    assert chain_targets(lst) == [
        ({"transport_protocol": "raw_buffer", "application_protocols": ["http/1.1", "h2c"]}, "443"),
        ({"server_names": ["t.example"]}, "outbound|443||t.example"),
        ({"DEFAULT": "PassthroughFilterChain"}, "BlackHoleCluster"),
    ]


def test_two_tcp_entries_without_address_first_wins() -> None:
    objects = [
        service_entry("new", ["new.example"], [(22, "TCP")], created="2024-02-01T00:00:00Z"),
        service_entry("old", ["old.example"], [(22, "TCP")], created="2024-01-01T00:00:00Z"),
    ]
    cfg = generate(objects, REG)
    assert chain_targets(listener(cfg, "0.0.0.0_22")) == [({}, "outbound|22||old.example")]
    assert any("new.example" in n and "dropped" in n for n in cfg.notes)


def test_tcp_capture_plus_http_on_same_port() -> None:
    objects = [
        service_entry("t", ["t.example"], [(80, "TCP")], created="2024-01-01T00:00:00Z"),
        service_entry("h", ["h.example"], [(80, "HTTP")], created="2024-01-02T00:00:00Z"),
    ]
    assert chain_targets(listener(generate(objects, REG), "0.0.0.0_80")) == [
        ({"transport_protocol": "raw_buffer", "application_protocols": ["http/1.1", "h2c"]}, "80"),
        ({"DEFAULT": ""}, "outbound|80||t.example"),
    ]


def test_mysql_conflict_drops_newcomer() -> None:
    objects = [
        service_entry("m", ["m.example"], [(3306, "MySQL")], created="2024-01-01T00:00:00Z"),
        service_entry("t", ["t.example"], [(3306, "TCP")], created="2024-01-02T00:00:00Z"),
    ]
    cfg = generate(objects, REG)
    assert chain_targets(listener(cfg, "0.0.0.0_3306")) == [({}, "outbound|3306||m.example")]
    assert any("well-known" in n for n in cfg.notes)


def test_listeners_sorted_and_virtual_outbound_last() -> None:
    objects = [
        service_entry("a", ["a.example"], [(443, "TLS"), (80, "HTTP")]),
        service_entry("b", ["b.example"], [(22, "TCP")], addresses=["10.9.0.1"], resolution="NONE"),
    ]
    assert [lst["name"] for lst in generate(objects, REG).listeners if lst["name"] != "virtualInbound"] == [
        "10.9.0.1_22",
        "0.0.0.0_80",
        "0.0.0.0_443",
        "virtualOutbound",
    ]


def test_sni_and_http_chains_get_both_inspectors() -> None:
    objects = [
        service_entry("h", ["h.example"], [(443, "HTTP")], created="2024-01-01T00:00:00Z"),
        service_entry("t", ["t.example"], [(443, "TLS")], created="2024-01-02T00:00:00Z"),
    ]
    lst = listener(generate(objects, REG), "0.0.0.0_443")
    assert [f["name"] for f in lst["listener_filters"]] == [
        "envoy.filters.listener.tls_inspector",
        "envoy.filters.listener.http_inspector",
    ]


def test_auto_after_auto_merges_only_tcp_cidr_chains() -> None:
    objects = [
        service_entry(
            "a",
            ["a.example"],
            [(81, "")],
            addresses=["10.1.0.0/16"],
            resolution="NONE",
            created="2024-01-01T00:00:00Z",
        ),
        service_entry(
            "b",
            ["b.example"],
            [(81, "")],
            addresses=["10.2.0.0/16"],
            resolution="NONE",
            created="2024-01-02T00:00:00Z",
        ),
    ]
    assert chain_targets(listener(generate(objects, REG), "0.0.0.0_81")) == [
        ({"prefix_ranges": [{"address_prefix": "10.1.0.0", "prefix_len": 16}]}, "outbound|81||a.example"),
        ({"transport_protocol": "raw_buffer", "application_protocols": ["http/1.1", "h2c"]}, "81"),
        ({"prefix_ranges": [{"address_prefix": "10.2.0.0", "prefix_len": 16}]}, "outbound|81||b.example"),
        ({"DEFAULT": "PassthroughFilterChain"}, "BlackHoleCluster"),
    ]


def test_same_cidr_after_masking_keeps_first() -> None:
    objects = [
        service_entry(
            "a",
            ["a.example"],
            [(5432, "TCP")],
            addresses=["10.1.2.3/8"],
            resolution="NONE",
            created="2024-01-01T00:00:00Z",
        ),
        service_entry(
            "b",
            ["b.example"],
            [(5432, "TCP")],
            addresses=["10.5.6.7/8"],
            resolution="NONE",
            created="2024-01-02T00:00:00Z",
        ),
    ]
    assert chain_targets(listener(generate(objects, REG), "0.0.0.0_5432")) == [
        ({"prefix_ranges": [{"address_prefix": "10.0.0.0", "prefix_len": 8}]}, "outbound|5432||a.example"),
        ({"DEFAULT": "PassthroughFilterChain"}, "BlackHoleCluster"),
    ]


def test_alias_short_names_join_sni() -> None:
    objects = [
        service_entry("git", ["git.example"], [(443, "TLS")]),
        kube_service(
            "git", [{"port": 443, "name": "tls"}], service_type="ExternalName", external_name="git.example"
        ),
    ]
    match, _ = chain_targets(listener(generate(objects, REG), "0.0.0.0_443"))[0]
    assert match == {
        "server_names": sorted(
            ["git.example", "git.default.svc.cluster.local", "git", "git.default.svc", "git.default"]
        )
    }


def test_virtual_inbound_blackholes_the_capture_port_and_passes_the_rest() -> None:
    """listener_inbound.go buildInboundBlackhole / listener_builder.go buildVirtualInboundListener."""
    cfg = generate([], REG)
    vi = listener(cfg, "virtualInbound")
    assert vi["address"]["socket_address"] == {"address": "0.0.0.0", "port_value": 15006}
    assert vi["use_original_dst"] is True
    chains = [(c["name"], c.get("filter_chain_match"), c["filters"][0]["typed_config"]["cluster"])
              for c in vi["filter_chains"]]
    assert chains[0] == ("virtualInbound-blackhole", {"destination_port": 15006}, "BlackHoleCluster")
    assert chains[1][0] == "virtualInbound" and chains[1][2] == "InboundPassthroughCluster"
    assert [lst["name"] for lst in cfg.listeners][-2:] == ["virtualOutbound", "virtualInbound"]
