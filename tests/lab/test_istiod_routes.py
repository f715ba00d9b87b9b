"""Unit tests of the generated HTTP routes (lab/istiod/routes.py): route names, vhosts, domains,
catch-alls, retries (httproute.go, route/route.go, route/retry/retry.go)."""

from __future__ import annotations

from typing import Any

import pytest

from lab.istiod import GeneratedConfig, PodView, generate
from lab.istiod.samples import kube_service, service_entry, sidecar

REG = PodView("default", mode_override="REGISTRY_ONLY")
ANY = PodView("default", mode_override="ALLOW_ANY")


def routes(cfg: GeneratedConfig) -> dict[str, dict[str, Any]]:
    """Route configurations by name, from every HCM of every listener."""
    out: dict[str, dict[str, Any]] = {}
    for lst in cfg.listeners:
        chains = [
            *lst.get("filter_chains", []),
            *([lst["default_filter_chain"]] if "default_filter_chain" in lst else []),
        ]
        for chain in chains:
            for flt in chain["filters"]:
                rc = flt["typed_config"].get("route_config")
                if rc is not None:
                    out[rc["name"]] = rc
    return out


def vhosts(cfg: GeneratedConfig, route: str) -> list[tuple[str, list[str]]]:
    return [(v["name"], v["domains"]) for v in routes(cfg)[route]["virtual_hosts"]]


def test_shared_route_vhosts_sorted_with_block_all_last() -> None:
    objects = [
        service_entry("b", ["b.example"], [(80, "HTTP")]),
        service_entry("a", ["a.example"], [(80, "HTTP")]),
    ]
    rc = routes(generate(objects, REG))["80"]
    assert [v["name"] for v in rc["virtual_hosts"]] == ["a.example:80", "b.example:80", "block_all"]
    assert rc["ignore_port_in_host_matching"] is True
    assert rc["validate_clusters"] is False
    block = rc["virtual_hosts"][-1]
    assert block["domains"] == ["*"]
    assert block["routes"] == [
        {"name": "block_all", "match": {"prefix": "/"}, "direct_response": {"status": 502}}
    ]


def test_allow_any_catch_all_has_no_retries() -> None:
    rc = routes(generate([service_entry("a", ["a.example"], [(80, "HTTP")])], ANY))["80"]
    allow = rc["virtual_hosts"][-1]
    assert allow["name"] == "allow_any"
    assert allow["routes"][0]["route"] == {
        "cluster": "PassthroughCluster",
        "timeout": "0s",
        "max_grpc_timeout": "0s",
    }


def test_egress_proxy_replaces_passthrough() -> None:
    objects = [
        service_entry("a", ["a.example"], [(80, "HTTP")]),
        sidecar("default", egress_proxy=("proxy.example", 3128)),
    ]
    cfg = generate(objects, REG)
    allow = routes(cfg)["80"]["virtual_hosts"][-1]
    assert allow["routes"][0]["route"]["cluster"] == "outbound|3128||proxy.example"
    vo = next(lst for lst in cfg.listeners if lst["name"] == "virtualOutbound")
    assert vo["filter_chains"][1]["filters"][0]["typed_config"]["cluster"] == "outbound|3128||proxy.example"


def test_default_route_retry_policy() -> None:
    rc = routes(generate([service_entry("a", ["a.example"], [(80, "HTTP")])], REG))["80"]
    route = rc["virtual_hosts"][0]["routes"][0]
    assert route["name"] == "default"
    assert route["match"] == {"prefix": "/"}
    action = route["route"]
    assert action["cluster"] == "outbound|80||a.example"
    assert action["timeout"] == "0s"
    retry = action["retry_policy"]
    assert retry["retry_on"] == "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
    assert retry["num_retries"] == 2
    assert retry["retry_host_predicate"][0]["name"] == "envoy.retry_host_predicates.previous_hosts"
    assert route["decorator"] == {"operation": "a.example:80/*"}


DOMAIN_CASES = [
    (
        "SE host only",
        [service_entry("a", ["a.example"], [(80, "HTTP")])],
        "default",
        [("a.example:80", ["a.example"])],
    ),
    (
        "SE address appended",
        [service_entry("a", ["a.example"], [(80, "HTTP")], addresses=["10.9.0.1"])],
        "default",
        [("a.example:80", ["a.example", "10.9.0.1"])],
    ),
    (
        "k8s service, same namespace: short forms",
        [kube_service("web", [{"port": 80, "name": "http"}], cluster_ip="10.96.0.6")],
        "default",
        [
            (
                "web.default.svc.cluster.local:80",
                ["web.default.svc.cluster.local", "web", "web.default.svc", "web.default", "10.96.0.6"],
            )
        ],
    ),
    (
        "k8s service, other namespace: no bare name",
        [kube_service("web", [{"port": 80, "name": "http"}], cluster_ip="10.96.0.6", namespace="shop")],
        "default",
        [
            (
                "web.shop.svc.cluster.local:80",
                ["web.shop.svc.cluster.local", "web.shop", "web.shop.svc", "10.96.0.6"],
            )
        ],
    ),
    (
        "headless k8s service: wildcard forms",
        [kube_service("hl", [{"port": 80, "name": "http"}], cluster_ip="None")],
        "default",
        [
            (
                "hl.default.svc.cluster.local:80",
                [
                    "hl.default.svc.cluster.local",
                    "hl",
                    "hl.default.svc",
                    "hl.default",
                    "*.hl.default.svc.cluster.local",
                    "*.hl",
                    "*.hl.default.svc",
                    "*.hl.default",
                ],
            )
        ],
    ),
    (
        "ExternalName alias joins the concrete service's vhost",
        [
            service_entry("git", ["git.example"], [(80, "HTTP")]),
            kube_service(
                "git",
                [{"port": 80, "name": "http"}],
                service_type="ExternalName",
                external_name="git.example",
            ),
        ],
        "default",
        [
            (
                "git.example:80",
                ["git.example", "git.default.svc.cluster.local", "git", "git.default.svc", "git.default"],
            )
        ],
    ),
]


@pytest.mark.parametrize(
    ("objects", "ns", "expected"), [c[1:] for c in DOMAIN_CASES], ids=[c[0] for c in DOMAIN_CASES]
)
def test_vhost_domains(objects: list[dict[str, Any]], ns: str, expected: list[tuple[str, list[str]]]) -> None:
    cfg = generate(objects, PodView(ns, mode_override="REGISTRY_ONLY"))
    assert vhosts(cfg, "80")[:-1] == expected


def test_duplicate_domains_are_dropped_from_later_vhosts() -> None:
    objects = [
        service_entry("a", ["a.example"], [(80, "HTTP")], addresses=["10.9.0.1"]),
        service_entry("b", ["b.example"], [(80, "HTTP")], addresses=["10.9.0.1"]),
    ]
    assert vhosts(generate(objects, REG), "80")[:-1] == [
        ("a.example:80", ["a.example", "10.9.0.1"]),
        ("b.example:80", ["b.example"]),
    ]


def test_tcp_ports_get_no_vhost_but_auto_ports_do() -> None:
    objects = [
        service_entry("h", ["h.example"], [(80, "HTTP")]),
        service_entry("t", ["t.example"], [(80, "TCP")]),
        service_entry("u", ["u.example"], [(80, "")], addresses=["10.9.0.3"]),
    ]
    names = [n for n, _ in vhosts(generate(objects, REG), "80")]
    assert names == ["h.example:80", "u.example:80", "block_all"]


def test_sniffed_vip_route_single_vhost_star_domains_no_catch_all() -> None:
    cfg = generate([kube_service("db", [{"port": 5432}], cluster_ip="10.96.0.5")], REG)
    assert vhosts(cfg, "db.default.svc.cluster.local:5432") == [("db.default.svc.cluster.local:5432", ["*"])]


def test_wildcard_host_vhost() -> None:
    cfg = generate([service_entry("w", ["*.w.example"], [(80, "HTTP")], resolution="NONE")], REG)
    assert vhosts(cfg, "80")[0] == ("*.w.example:80", ["*.w.example"])


def test_wildcard_entry_tls_sni() -> None:
    cfg = generate([service_entry("w", ["*.w.example"], [(443, "TLS")], resolution="NONE")], REG)
    lst = next(x for x in cfg.listeners if x["name"] == "0.0.0.0_443")
    assert lst["filter_chains"][0]["filter_chain_match"] == {"server_names": ["*.w.example"]}


def test_dns_capture_adds_the_vip_to_vhost_domains_but_http_stays_on_wildcard() -> None:
    objects = [service_entry("a", ["a.example"], [(80, "HTTP")])]
    cfg = generate(objects, PodView("default", dns_capture=True))
    assert vhosts(cfg, "80")[0] == ("a.example:80", ["a.example", "240.240.0.1"])
    outbound = sorted(lst["name"] for lst in cfg.listeners if lst["name"] != "virtualInbound")
    assert outbound == ["0.0.0.0_80", "virtualOutbound"]
    assert vhosts(generate(objects, PodView("default")), "80")[0] == ("a.example:80", ["a.example"])


def test_cidr_address_is_a_vhost_domain_as_in_pilot() -> None:
    objects = [
        service_entry("c", ["c.example"], [(80, "HTTP")], addresses=["10.9.0.0/24"], resolution="NONE")
    ]
    assert vhosts(generate(objects, REG), "80")[0] == ("c.example:80", ["c.example", "10.9.0.0/24"])


RETRY_CASES = [
    (
        "unset: default policy",
        None,
        2,
        RETRY_ON_DEFAULT := ("connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"),
    ),
    ("attempts 0 disables retries", {"attempts": 0}, None, None),
    (
        "attempts and retryOn with status codes",
        {"attempts": 5, "retryOn": "gateway-error,503"},
        5,
        "gateway-error,retriable-status-codes",
    ),
]


@pytest.mark.parametrize(
    ("policy", "retries", "retry_on"), [c[1:] for c in RETRY_CASES], ids=[c[0] for c in RETRY_CASES]
)
def test_mesh_default_http_retry_policy(
    policy: dict[str, Any] | None, retries: int | None, retry_on: str | None
) -> None:
    mesh = {} if policy is None else {"defaultHttpRetryPolicy": policy}
    cfg = generate([service_entry("a", ["a.example"], [(80, "HTTP")])], PodView("default", mesh=mesh))
    action = routes(cfg)["80"]["virtual_hosts"][0]["routes"][0]["route"]
    if retries is None:
        assert "retry_policy" not in action
    else:
        assert (action["retry_policy"]["num_retries"], action["retry_policy"]["retry_on"]) == (
            retries,
            retry_on,
        )
