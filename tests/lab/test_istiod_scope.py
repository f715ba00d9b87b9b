"""Unit tests of what one pod sees (lab/istiod/scope.py, imports.py, allocation.py, dns.py):
exportTo, discoverySelectors, Sidecar selection and imports, host clashes, modes, VIPs, DNS table."""

from __future__ import annotations

from typing import Any

import pytest

from lab.istiod import GeneratedConfig, PodView, generate
from lab.istiod.samples import kube_service, namespace, service_entry, sidecar


def clusters(cfg: GeneratedConfig) -> list[str]:
    return sorted(c["name"] for c in cfg.clusters if c["name"].startswith("outbound|"))


def se(name: str, host: str, ns: str = "default", **kw: Any) -> dict[str, Any]:
    return service_entry(name, [host], [(80, "HTTP")], namespace=ns, **kw)


VISIBILITY = [
    ("public by default", [se("a", "a.example", "shop")], PodView("default"), ["outbound|80||a.example"]),
    (
        "exportTo . hides from other namespaces",
        [se("a", "a.example", "shop", export_to=["."])],
        PodView("default"),
        [],
    ),
    (
        "exportTo . visible in own namespace",
        [se("a", "a.example", "shop", export_to=["."])],
        PodView("shop"),
        ["outbound|80||a.example"],
    ),
    (
        "exportTo names a namespace",
        [se("a", "a.example", "shop", export_to=["default"])],
        PodView("default"),
        ["outbound|80||a.example"],
    ),
    ("exportTo ~ hides everywhere", [se("a", "a.example", "shop", export_to=["~"])], PodView("shop"), []),
    (
        "defaultServiceExportTo . applies when exportTo is unset",
        [se("a", "a.example", "shop")],
        PodView("default", mesh={"defaultServiceExportTo": ["."]}),
        [],
    ),
    (
        "Service exportTo annotation",
        [
            kube_service(
                "web",
                [{"port": 80, "name": "http"}],
                namespace="shop",
                cluster_ip="10.96.0.7",
                annotations={"networking.istio.io/exportTo": "."},
            )
        ],
        PodView("default"),
        [],
    ),
    (
        "discoverySelectors leave out unselected namespaces",
        [
            se("a", "a.example", "shop"),
            se("b", "b.example", "mesh"),
            namespace("mesh", {"istio-discovery": "on"}),
        ],
        PodView("default", mesh={"discoverySelectors": [{"matchLabels": {"istio-discovery": "on"}}]}),
        ["outbound|80||b.example"],
    ),
    (
        "discoverySelectors match the metadata.name label",
        [se("a", "a.example", "shop")],
        PodView(
            "default",
            mesh={
                "discoverySelectors": [
                    {
                        "matchExpressions": [
                            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["shop"]}
                        ]
                    }
                ]
            },
        ),
        ["outbound|80||a.example"],
    ),
]


@pytest.mark.parametrize(
    ("objects", "pod", "expected"), [c[1:] for c in VISIBILITY], ids=[c[0] for c in VISIBILITY]
)
def test_visibility(objects: list[dict[str, Any]], pod: PodView, expected: list[str]) -> None:
    assert clusters(generate(objects, pod)) == expected


SIDECARS = [
    (
        "namespace Sidecar imports its hosts only",
        [se("a", "a.example"), se("b", "b.example"), sidecar("default", hosts=["*/a.example"])],
        {},
        ["outbound|80||a.example"],
    ),
    (
        "'.' means the pod's namespace",
        [se("a", "a.example"), se("b", "b.example", "shop"), sidecar("default", hosts=["./*"])],
        {},
        ["outbound|80||a.example"],
    ),
    (
        "namespace-qualified import",
        [se("a", "a.example"), se("b", "b.example", "shop"), sidecar("default", hosts=["shop/*"])],
        {},
        ["outbound|80||b.example"],
    ),
    (
        "~ excludes a host",
        [se("a", "a.example"), se("b", "b.example"), sidecar("default", hosts=["*/*", "~/b.example"])],
        {},
        ["outbound|80||a.example"],
    ),
    (
        "wildcard host import",
        [se("a", "a.example"), se("b", "b.other"), sidecar("default", hosts=["*/*.example"])],
        {},
        ["outbound|80||a.example"],
    ),
    (
        "workloadSelector beats the namespace default",
        [
            se("a", "a.example"),
            se("b", "b.example"),
            sidecar("default", hosts=["*/a.example"]),
            sidecar("app", hosts=["*/b.example"], selector={"app": "x"}),
        ],
        {"app": "x"},
        ["outbound|80||b.example"],
    ),
    (
        "root namespace Sidecar is the fallback",
        [
            se("a", "a.example"),
            se("b", "b.example"),
            sidecar("default", namespace="istio-system", hosts=["*/b.example"]),
        ],
        {},
        ["outbound|80||b.example"],
    ),
    (
        "namespace Sidecar beats the root one",
        [
            se("a", "a.example"),
            se("b", "b.example"),
            sidecar("default", namespace="istio-system", hosts=["*/b.example"]),
            sidecar("default", hosts=["*/a.example"]),
        ],
        {},
        ["outbound|80||a.example"],
    ),
]


@pytest.mark.parametrize(
    ("objects", "labels", "expected"), [c[1:] for c in SIDECARS], ids=[c[0] for c in SIDECARS]
)
def test_sidecar_selection_and_imports(
    objects: list[dict[str, Any]], labels: dict[str, str], expected: list[str]
) -> None:
    assert clusters(generate(objects, PodView("default", labels=labels))) == expected


def test_mode_precedence() -> None:
    mesh = {"outboundTrafficPolicy": {"mode": "ALLOW_ANY"}}
    cfg = generate([sidecar("default", mode="REGISTRY_ONLY")], PodView("default", mesh=mesh))
    assert (cfg.mode, cfg.mode_from) == ("REGISTRY_ONLY", "Sidecar default/default")
    cfg = generate([], PodView("default", mesh=mesh, mode_override="REGISTRY_ONLY"))
    assert (cfg.mode, cfg.mode_from) == ("REGISTRY_ONLY", "--mode")


def test_kubernetes_service_beats_service_entry_with_same_host() -> None:
    host = "web.default.svc.cluster.local"
    objects = [
        service_entry("squat", [host], [(80, "HTTP")], resolution="DNS", created="2020-01-01T00:00:00Z"),
        kube_service(
            "web", [{"port": 80, "name": "http"}], cluster_ip="10.96.0.8", created="2024-01-01T00:00:00Z"
        ),
    ]
    c = next(c for c in generate(objects, PodView("default")).clusters if c["name"] == f"outbound|80||{host}")
    assert c["type"] == "STATIC"  # the Service's (EDS) cluster, not the entry's STRICT_DNS one


def test_oldest_service_entry_wins_for_clusters() -> None:
    objects = [
        service_entry(
            "new", ["a.example"], [(80, "HTTP")], resolution="NONE", created="2024-02-01T00:00:00Z"
        ),
        service_entry("old", ["a.example"], [(80, "HTTP")], resolution="DNS", created="2024-01-01T00:00:00Z"),
    ]
    c = next(
        c for c in generate(objects, PodView("default")).clusters if c["name"] == "outbound|80||a.example"
    )
    assert c["type"] == "STRICT_DNS"


def test_same_host_in_two_namespaces_prefers_own_namespace() -> None:
    objects = [
        se("a", "a.example", "shop", resolution="NONE", created="2020-01-01T00:00:00Z"),
        se("a", "a.example", "default", resolution="DNS", created="2024-01-01T00:00:00Z"),
    ]
    c = next(
        c for c in generate(objects, PodView("default")).clusters if c["name"] == "outbound|80||a.example"
    )
    assert c["type"] == "STRICT_DNS"


def test_entries_with_same_host_merge_ports() -> None:
    objects = [
        service_entry("a", ["a.example"], [(80, "HTTP")], created="2024-01-01T00:00:00Z"),
        service_entry("b", ["a.example"], [(443, "TLS")], created="2024-01-02T00:00:00Z"),
    ]
    assert clusters(generate(objects, PodView("default"))) == [
        "outbound|443||a.example",
        "outbound|80||a.example",
    ]


def test_auto_allocation_is_deterministic_and_skips_what_istiod_skips() -> None:
    objects = [
        service_entry("b", ["b.example", "c.example"], [(22, "TCP")], created="2024-01-02T00:00:00Z"),
        service_entry("a", ["a.example"], [(22, "TCP")], created="2024-01-01T00:00:00Z"),
        service_entry("none", ["n.example"], [(23, "TCP")], resolution="NONE"),
        service_entry(
            "opt-out",
            ["o.example"],
            [(24, "TCP")],
            labels={"networking.istio.io/enable-autoallocate-ip": "false"},
        ),
        service_entry("addr", ["d.example"], [(25, "TCP")], addresses=["10.9.0.9"]),
        service_entry("wild", ["*.w.example"], [(26, "TCP")], resolution="NONE"),
    ]
    cfg = generate(objects, PodView("default", dns_capture=True))
    assert cfg.dns == {
        "a.example": ("240.240.0.1",),
        "b.example": ("240.240.0.2",),
        "c.example": ("240.240.0.3",),
        "d.example": ("10.9.0.9",),
    }
    listeners = sorted(lst["name"] for lst in cfg.listeners if lst["name"] != "virtualInbound")
    assert listeners == [
        "0.0.0.0_23",
        "0.0.0.0_24",
        "0.0.0.0_26",
        "10.9.0.9_25",
        "240.240.0.1_22",
        "240.240.0.2_22",
        "240.240.0.3_22",
        "virtualOutbound",
    ]


def test_status_addresses_are_kept() -> None:
    entry = service_entry("a", ["a.example"], [(22, "TCP")])
    entry["status"] = {"addresses": [{"host": "a.example", "value": "240.240.7.7"}]}
    other = service_entry("b", ["b.example"], [(22, "TCP")])
    cfg = generate([entry, other], PodView("default", dns_capture=True))
    assert cfg.dns == {"a.example": ("240.240.7.7",), "b.example": ("240.240.0.1",)}


def test_dns_table_kubernetes_short_names_and_no_table_without_capture() -> None:
    objects = [
        kube_service("web", [{"port": 80, "name": "http"}], cluster_ip="10.96.0.6"),
        kube_service("db", [{"port": 5432}], namespace="shop", cluster_ip="10.96.0.7"),
        kube_service("hl", [{"port": 80}], cluster_ip="None"),
        service_entry("cidr", ["c.example"], [(22, "TCP")], addresses=["10.9.0.0/24"], resolution="NONE"),
    ]
    cfg = generate(objects, PodView("default", dns_capture=True))
    assert cfg.dns == {
        "db.shop": ("10.96.0.7",),
        "db.shop.svc": ("10.96.0.7",),
        "db.shop.svc.cluster.local": ("10.96.0.7",),
        "web": ("10.96.0.6",),
        "web.default": ("10.96.0.6",),
        "web.default.svc": ("10.96.0.6",),
        "web.default.svc.cluster.local": ("10.96.0.6",),
    }
    assert generate(objects, PodView("default")).dns == {}


def test_unknown_kinds_and_bad_objects_are_notes_not_errors() -> None:
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "Gateway",
            "metadata": {"name": "v"},
            "spec": {},
        },
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "ServiceEntry",
            "metadata": {"name": "bad"},
            "spec": {"hosts": ["a.example"], "ports": [{"name": "x"}]},
        },
        {"kind": "List", "items": [se("ok", "ok.example")]},
    ]
    cfg = generate(objects, PodView("default"))
    assert clusters(cfg) == ["outbound|80||ok.example"]
    assert any("Gateway" in n for n in cfg.notes)
    assert any("ServiceEntry default/bad" in n for n in cfg.notes)


def listener_names(cfg: GeneratedConfig) -> list[str]:
    return sorted(lst["name"] for lst in cfg.listeners if lst["name"] != "virtualInbound")


def test_sidecar_egress_port_listener_owns_its_port() -> None:
    objects = [
        service_entry(
            "a", ["a.example"], [(80, "HTTP"), (22, "TCP")], addresses=["10.9.0.1"], resolution="NONE"
        ),
        service_entry(
            "b",
            ["b.example"],
            [(80, "HTTP"), (9000, "TCP")],
            namespace="istio-system",
            addresses=["10.9.0.2"],
            resolution="NONE",
        ),
        sidecar("default", port_egress=[(80, "HTTP", ["./*"])], hosts=["istio-system/*"]),
    ]
    cfg = generate(objects, PodView("default", mode_override="REGISTRY_ONLY"))
    # a's port 22 is imported by neither listener; b's port 80 is locked out by the port listener.
    assert listener_names(cfg) == ["0.0.0.0_80", "10.9.0.2_9000", "virtualOutbound"]
    lst = next(x for x in cfg.listeners if x["name"] == "0.0.0.0_80")
    vhosts = lst["filter_chains"][0]["filters"][-1]["typed_config"]["route_config"]["virtual_hosts"]
    assert [v["name"] for v in vhosts] == ["a.example:80", "block_all"]
    assert clusters(cfg) == ["outbound|80||a.example", "outbound|80||b.example", "outbound|9000||b.example"]


def test_sidecar_egress_port_protocol_decides_the_listener() -> None:
    objects = [
        service_entry("a", ["a.example"], [(8080, "HTTP")]),
        sidecar("default", port_egress=[(8080, "TCP", ["*/a.example"])]),
    ]
    cfg = generate(objects, PodView("default"))
    assert listener_names(cfg) == ["0.0.0.0_8080", "virtualOutbound"]
    lst = next(x for x in cfg.listeners if x["name"] == "0.0.0.0_8080")
    assert lst["filter_chains"][0]["filters"][0]["typed_config"]["cluster"] == "outbound|8080||a.example"
    assert "listener_filters" not in lst
