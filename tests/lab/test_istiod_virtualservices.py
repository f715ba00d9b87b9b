"""Unit tests of VirtualService HTTP routes for sidecars (lab/istiod/virtualservices.py):
selection, route translation, vhost placement, no fallback route, subsets (route/route.go)."""

from __future__ import annotations

from typing import Any

from lab.istiod import GeneratedConfig, PodView, generate
from lab.istiod.samples import service_entry, sidecar, subsets_rule, virtual_service

POD = PodView("default", mode_override="REGISTRY_ONLY", labels={"app": "probe"})
API = "api.example"
ENTRY = service_entry("api", [API], [(80, "HTTP")])


def vhost(cfg: GeneratedConfig, route: str, name: str) -> dict[str, Any]:
    for lst in cfg.listeners:
        for chain in [
            *lst.get("filter_chains", []),
            *([lst["default_filter_chain"]] if "default_filter_chain" in lst else []),
        ]:
            rc = chain["filters"][-1]["typed_config"].get("route_config")
            if rc and rc["name"] == route:
                return next(v for v in rc["virtual_hosts"] if v["name"] == name)
    raise AssertionError(f"no route {route}")


def test_vs_routes_replace_the_default_route_and_add_no_fallback() -> None:
    vs = virtual_service(
        "api",
        [API],
        [
            {
                "name": "v1",
                "match": [{"uri": {"prefix": "/v1"}, "name": "p"}],
                "route": [{"destination": {"host": API}}],
            },
        ],
    )
    routes = vhost(generate([ENTRY, vs], POD), "80", f"{API}:80")["routes"]
    assert [r.get("name") for r in routes] == ["v1.p"]
    assert routes[0]["match"] == {"prefix": "/v1", "case_sensitive": True}
    assert routes[0]["route"]["cluster"] == f"outbound|80||{API}"
    assert routes[0]["decorator"] == {"operation": f"{API}:80/v1*"}
    assert routes[0]["metadata"]["filter_metadata"]["istio"]["config"].endswith("/virtual-service/api")


def test_matches_stop_after_a_catch_all() -> None:
    vs = virtual_service(
        "api",
        [API],
        [
            {"name": "a", "match": [{"uri": {"exact": "/a"}}], "route": [{"destination": {"host": API}}]},
            {"name": "all", "route": [{"destination": {"host": API}}]},
            {
                "name": "never",
                "match": [{"uri": {"prefix": "/n"}}],
                "route": [{"destination": {"host": API}}],
            },
        ],
    )
    routes = vhost(generate([ENTRY, vs], POD), "80", f"{API}:80")["routes"]
    assert [r.get("name") for r in routes] == ["a", "all"]
    assert routes[0]["match"]["path"] == "/a"


def test_headers_method_and_static_source_matches() -> None:
    vs = virtual_service(
        "api",
        [API],
        [
            {
                "name": "h",
                "match": [
                    {"headers": {"x-b": {"prefix": "b"}, "x-a": {"exact": "1"}}, "method": {"exact": "GET"}}
                ],
                "route": [{"destination": {"host": API}}],
            },
            {
                "name": "other-pods",
                "match": [{"sourceLabels": {"app": "other"}}],
                "route": [{"destination": {"host": API}}],
            },
            {"name": "other-port", "match": [{"port": 8080}], "route": [{"destination": {"host": API}}]},
            {
                "name": "mine",
                "match": [{"sourceLabels": {"app": "probe"}}],
                "route": [{"destination": {"host": API}}],
            },
        ],
    )
    routes = vhost(generate([ENTRY, vs], POD), "80", f"{API}:80")["routes"]
    assert [r.get("name") for r in routes] == ["h", "mine"]
    assert routes[0]["match"]["headers"] == [
        {"name": "x-a", "string_match": {"exact": "1"}},
        {"name": "x-b", "string_match": {"prefix": "b"}},
        {"name": ":method", "string_match": {"exact": "GET"}},
    ]


def test_weights_subsets_redirect_direct_response_timeout_retries() -> None:
    vs = virtual_service(
        "api",
        [API],
        [
            {
                "name": "split",
                "match": [{"uri": {"prefix": "/split"}}],
                "timeout": "3s",
                "retries": {"attempts": 0},
                "route": [
                    {"destination": {"host": API, "subset": "v1"}, "weight": 90},
                    {"destination": {"host": API, "subset": "v2"}, "weight": 10},
                ],
            },
            {
                "name": "moved",
                "match": [{"uri": {"prefix": "/old"}}],
                "redirect": {"uri": "/new", "redirectCode": 302},
            },
            {
                "name": "teapot",
                "match": [{"uri": {"prefix": "/tea"}}],
                "directResponse": {"status": 418, "body": {"string": "tea"}},
            },
        ],
    )
    cfg = generate([ENTRY, vs, subsets_rule("api", API, {"v1": {"v": "1"}})], POD)
    split, moved, teapot = vhost(cfg, "80", f"{API}:80")["routes"]
    assert split["route"]["weighted_clusters"] == {
        "clusters": [
            {"name": f"outbound|80|v1|{API}", "weight": 90},
            {"name": f"outbound|80|v2|{API}", "weight": 10},
        ]
    }
    assert split["route"]["timeout"] == "3s" and "retry_policy" not in split["route"]
    assert moved["redirect"] == {"response_code": "FOUND", "path_redirect": "/new"}
    assert teapot["direct_response"] == {"status": 418, "body": {"inline_string": "tea"}}
    names = [c["name"] for c in cfg.clusters]
    assert f"outbound|80|v1|{API}" in names and f"outbound|80|v2|{API}" not in names


def test_vs_host_without_service_gets_its_own_vhost_on_port_80_only() -> None:
    vs = virtual_service("ext", ["nowhere.example"], [{"route": [{"destination": {"host": API}}]}])
    cfg = generate([ENTRY, service_entry("t", ["t.example"], [(8080, "HTTP")]), vs], POD)
    v = vhost(cfg, "80", "nowhere.example:80")
    assert v["domains"] == ["nowhere.example"]
    assert v["routes"][0]["route"]["cluster"] == f"outbound|80||{API}"
    rc = next(lst for lst in cfg.listeners if lst["name"] == "0.0.0.0_8080")
    names = [
        x["name"]
        for x in rc["filter_chains"][0]["filters"][-1]["typed_config"]["route_config"]["virtual_hosts"]
    ]
    assert names == ["t.example:8080", "block_all"]


def test_gateway_bound_vs_and_unimported_vs_are_ignored() -> None:
    gw = virtual_service(
        "gw",
        [API],
        [{"name": "gw", "route": [{"destination": {"host": API}}]}],
        gateways=["istio-system/egress"],
    )
    shop = virtual_service(
        "shop", [API], [{"name": "shop", "route": [{"destination": {"host": API}}]}], namespace="shop"
    )
    scope = sidecar("default", hosts=["./*", "istio-system/*"])
    for objects in ([ENTRY, gw], [ENTRY, shop, scope]):
        routes = vhost(generate(objects, POD), "80", f"{API}:80")["routes"]
        assert [r.get("name") for r in routes] == ["default"]
    routes = vhost(generate([ENTRY, shop], POD), "80", f"{API}:80")["routes"]
    assert [r.get("name") for r in routes] == ["shop"]


def test_vs_export_to_hides_it() -> None:
    hidden = virtual_service(
        "api",
        [API],
        [{"name": "x", "route": [{"destination": {"host": API}}]}],
        namespace="shop",
        export_to=["."],
    )
    routes = vhost(generate([ENTRY, hidden], POD), "80", f"{API}:80")["routes"]
    assert [r.get("name") for r in routes] == ["default"]


def chains(cfg: GeneratedConfig, name: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    lst = next(x for x in cfg.listeners if x["name"] == name)
    out = [(c.get("filter_chain_match", {}), c["filters"][-1]["typed_config"]) for c in lst["filter_chains"]]
    if "default_filter_chain" in lst:
        out.append(({"DEFAULT": True}, lst["default_filter_chain"]["filters"][-1]["typed_config"]))
    return out


def test_vs_tls_route_replaces_the_sni_chain() -> None:
    objects = [
        service_entry("a", ["a.example"], [(443, "TLS")]),
        service_entry("gw", ["gw.example"], [(443, "TLS")], addresses=["10.9.0.9"]),
        virtual_service(
            "a",
            ["a.example"],
            tls=[
                {
                    "match": [{"port": 443, "sniHosts": ["a.example"]}],
                    "route": [{"destination": {"host": "gw.example"}}],
                },
                {
                    "match": [{"port": 443, "sniHosts": ["a.example"], "sourceLabels": {"app": "nope"}}],
                    "route": [{"destination": {"host": "a.example"}}],
                },
            ],
        ),
    ]
    got = chains(generate(objects, POD), "0.0.0.0_443")
    assert [(m, c.get("cluster")) for m, c in got] == [
        ({"server_names": ["a.example"]}, "outbound|443||gw.example"),
        ({"DEFAULT": True}, "BlackHoleCluster"),
    ]


def test_vs_tcp_route_weighted_and_terminal() -> None:
    objects = [
        service_entry("db", ["db.example"], [(5432, "TCP")], addresses=["10.9.0.1"], resolution="NONE"),
        service_entry("db2", ["db2.example"], [(5432, "TCP")], addresses=["10.9.0.2"], resolution="NONE"),
        virtual_service(
            "db",
            ["db.example"],
            tcp=[
                {
                    "route": [
                        {"destination": {"host": "db.example"}, "weight": 80},
                        {"destination": {"host": "db2.example"}, "weight": 20},
                    ]
                },
            ],
        ),
    ]
    got = chains(generate(objects, POD), "10.9.0.1_5432")
    assert len(got) == 1
    proxy = got[0][1]
    assert proxy["stat_prefix"] == "db.default"
    assert proxy["weighted_clusters"] == {
        "clusters": [
            {"name": "outbound|5432||db.example", "weight": 80},
            {"name": "outbound|5432||db2.example", "weight": 20},
        ]
    }


def test_vs_tcp_subnet_matches_then_the_services_own_chain() -> None:
    objects = [
        service_entry("db", ["db.example"], [(5432, "TCP")], addresses=["10.9.0.0/16"], resolution="NONE"),
        virtual_service(
            "db",
            ["db.example"],
            tcp=[
                {
                    "match": [{"destinationSubnets": ["10.9.1.0/24"]}],
                    "route": [{"destination": {"host": "other.example"}}],
                },
            ],
        ),
    ]
    got = chains(generate(objects, POD), "0.0.0.0_5432")
    assert [(m.get("prefix_ranges"), c.get("cluster")) for m, c in got[:2]] == [
        ([{"address_prefix": "10.9.1.0", "prefix_len": 24}], "outbound|5432||other.example"),
        ([{"address_prefix": "10.9.0.0", "prefix_len": 16}], "outbound|5432||db.example"),
    ]


def test_vs_destinations_get_clusters_even_when_the_sidecar_does_not_import_them() -> None:
    objects = [
        service_entry("a", ["a.example"], [(443, "TLS")]),
        service_entry("gw", ["gw.example"], [(443, "TLS"), (80, "HTTP")], namespace="istio-system"),
        virtual_service(
            "a",
            ["a.example"],
            tls=[
                {
                    "match": [{"sniHosts": ["a.example"]}],
                    "route": [{"destination": {"host": "gw.example", "port": {"number": 443}}}],
                }
            ],
        ),
        sidecar("default", hosts=["./*"]),
    ]
    cfg = generate(objects, POD)
    names = sorted(c["name"] for c in cfg.clusters if c["name"].startswith("outbound|"))
    assert names == ["outbound|443||a.example", "outbound|443||gw.example"]
