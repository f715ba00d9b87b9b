"""Unit tests of EndpointSlice-backed Kubernetes Services (lab/istiod/endpoints.py): headless
per-endpoint listeners, port-name matching, the pod's own address, EDS endpoints, DNS answers."""

from __future__ import annotations

from lab.istiod import PodView, generate
from lab.istiod.samples import endpoint_slice, kube_service

HL = "hl.default.svc.cluster.local"


def headless() -> list[dict[str, object]]:
    return [
        kube_service(
            "hl",
            [{"port": 5432, "name": "tcp"}, {"port": 80, "name": "http"}, {"port": 81, "name": "auto"}],
            cluster_ip="None",
        ),
        endpoint_slice("hl", ["10.1.0.1", "10.1.0.2", "10.1.0.3"], {"tcp": 5432, "http": 8080}),
    ]


def test_headless_tcp_port_gets_one_listener_per_ready_endpoint_and_skips_the_pod() -> None:
    cfg = generate(headless(), PodView("default", pod_ips=("10.1.0.3",)))
    names = sorted(lst["name"] for lst in cfg.listeners if lst["name"] != "virtualInbound")
    # 81 ("auto") has no slice port of that name: no endpoints, so no listener for it.
    assert names == ["0.0.0.0_80", "10.1.0.1_5432", "10.1.0.2_5432", "virtualOutbound"]


def _with_not_ready(cluster_ip: str) -> list[dict[str, object]]:
    """One ready endpoint (10.1.0.1) and, in a second slice, one not ready (10.1.0.9)."""
    return [
        kube_service("hl", [{"port": 5432, "name": "tcp"}], cluster_ip=cluster_ip),
        endpoint_slice("hl", ["10.1.0.1"], {"tcp": 5432}),
        {
            **endpoint_slice("hl", ["10.1.0.9"], {"tcp": 5432}, ready=False),
            "metadata": {
                "name": "hl-xyz",
                "namespace": "default",
                "labels": {"kubernetes.io/service-name": "hl"},
            },
        },
    ]


def test_a_not_ready_endpoint_still_gets_its_headless_listener() -> None:
    # ServiceEndpointsByPort (pilot/pkg/model/endpointshards.go CopyEndpoints) ignores health.
    cfg = generate(_with_not_ready("None"), PodView("default"))
    names = sorted(lst["name"] for lst in cfg.listeners if lst["name"] != "virtualInbound")
    assert names == ["10.1.0.1_5432", "10.1.0.9_5432", "virtualOutbound"]


def test_a_not_ready_endpoint_is_left_out_of_eds_and_dns() -> None:
    eds = generate(_with_not_ready("10.96.0.7"), PodView("default")).clusters
    cluster = next(c for c in eds if c["name"] == "outbound|5432||hl.default.svc.cluster.local")
    hosts = [e["endpoint"]["address"]["socket_address"]["address"]
             for group in cluster["load_assignment"]["endpoints"] for e in group["lb_endpoints"]]  # fmt: skip
    assert hosts == ["10.1.0.1"]
    dns = generate(_with_not_ready("None"), PodView("default", dns_capture=True)).dns
    assert dns[HL] == ("10.1.0.1",)


def test_cluster_ip_service_eds_endpoints_use_the_slice_port() -> None:
    objects = [
        kube_service("web", [{"port": 80, "name": "http", "targetPort": 8080}], cluster_ip="10.96.0.6"),
        endpoint_slice("web", ["10.1.0.1"], {"http": 8080}),
    ]
    c = next(
        c
        for c in generate(objects, PodView("default")).clusters
        if c["name"] == "outbound|80||web.default.svc.cluster.local"
    )
    addr = c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    assert (c["type"], addr) == ("STATIC", {"address": "10.1.0.1", "port_value": 8080})


def test_headless_service_dns_answers_the_endpoints() -> None:
    cfg = generate(headless(), PodView("default", dns_capture=True))
    assert cfg.dns[HL] == ("10.1.0.1", "10.1.0.2", "10.1.0.3")
    assert cfg.dns["hl"] == cfg.dns[HL]


def test_slices_of_other_services_and_namespaces_do_not_leak() -> None:
    objects = [
        kube_service("hl", [{"port": 5432, "name": "tcp"}], cluster_ip="None"),
        endpoint_slice("other", ["10.1.0.1"], {"tcp": 5432}),
        endpoint_slice("hl", ["10.1.0.2"], {"tcp": 5432}, namespace="shop"),
    ]
    listeners = generate(objects, PodView("default")).listeners
    assert [lst["name"] for lst in listeners if lst["name"] != "virtualInbound"] == ["virtualOutbound"]
