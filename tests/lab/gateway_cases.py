"""Egress-gateway scenarios shared by the gateway generator's unit tests and its Envoy validation
test: each is the object list of one of istio's egress-gateway tasks (or a broken variant)."""

from __future__ import annotations

from typing import Any

from lab.istiod.samples import (
    authorization_policy,
    destination_rule,
    egress_gateway_service,
    gateway,
    gateway_server,
    namespace,
    service_entry,
    virtual_service,
)

GW_HOST = "istio-egressgateway.istio-system.svc.cluster.local"
CNN = "edition.cnn.com"


def subsets_rule_for_gateway(subset: str = "cnn", tls_mode: str | None = None,
                             sni: str = "") -> dict[str, Any]:
    """The client-side DR naming a subset of the egress gateway (mTLS to it when ``tls_mode``)."""
    spec: dict[str, Any] = {"host": GW_HOST, "subsets": [{"name": subset}]}
    if tls_mode:
        tls: dict[str, Any] = {"mode": tls_mode}
        if sni:
            tls["sni"] = sni
        spec["subsets"][0]["trafficPolicy"] = {"portLevelSettings": [{"port": {"number": 443}, "tls": tls}]}
    return {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": {"name": "egressgateway-for-cnn", "namespace": "default"}, "spec": spec}


def base() -> list[dict[str, Any]]:
    return [namespace("default"), namespace("istio-system"), egress_gateway_service()]


def http_origination() -> list[dict[str, Any]]:
    """(a) HTTP server on 80; the gateway routes to edition.cnn.com:443 with DR TLS origination."""
    return [
        *base(),
        service_entry("cnn", [CNN], [(80, "HTTP"), (443, "HTTPS")]),
        gateway("istio-egressgateway", [gateway_server(80, "HTTP", [CNN])]),
        subsets_rule_for_gateway(),
        destination_rule("originate-tls-for-edition-cnn-com", CNN, port_tls={443: "SIMPLE"}),
        virtual_service("direct-cnn-through-egress-gateway", [CNN], [
            {"match": [{"gateways": ["mesh"], "port": 80}],
             "route": [{"destination": {"host": GW_HOST, "subset": "cnn", "port": {"number": 80}}}]},
            {"match": [{"gateways": ["istio-system/istio-egressgateway"], "port": 80}],
             "route": [{"destination": {"host": CNN, "port": {"number": 443}}, "weight": 100}]},
        ], gateways=["istio-system/istio-egressgateway", "mesh"]),
    ]


def tls_passthrough() -> list[dict[str, Any]]:
    """(b) TLS PASSTHROUGH server on 443 routed by SNI."""
    return [
        *base(),
        service_entry("cnn", [CNN], [(443, "TLS")]),
        gateway("istio-egressgateway", [gateway_server(443, "TLS", [CNN], tls={"mode": "PASSTHROUGH"})]),
        subsets_rule_for_gateway(),
        virtual_service("direct-cnn-through-egress-gateway", [CNN], tls=[
            {"match": [{"gateways": ["mesh"], "port": 443, "sniHosts": [CNN]}],
             "route": [{"destination": {"host": GW_HOST, "subset": "cnn", "port": {"number": 443}}}]},
            {"match": [{"gateways": ["istio-egressgateway"], "port": 443, "sniHosts": [CNN]}],
             "route": [{"destination": {"host": CNN, "port": {"number": 443}}, "weight": 100}]},
        ], gateways=["istio-egressgateway", "mesh"], namespace="istio-system"),
    ]


def mutual_http() -> list[dict[str, Any]]:
    """(c) ISTIO_MUTUAL HTTPS server on 443 (sidecar → gateway mTLS, TLS origination at the gateway)."""
    return [
        *base(),
        service_entry("cnn", [CNN], [(80, "HTTP"), (443, "HTTPS")]),
        gateway("istio-egressgateway", [gateway_server(443, "HTTPS", [CNN], tls={"mode": "ISTIO_MUTUAL"})]),
        subsets_rule_for_gateway(tls_mode="ISTIO_MUTUAL", sni=CNN),
        destination_rule("originate-tls-for-edition-cnn-com", CNN, port_tls={443: "SIMPLE"}),
        virtual_service("direct-cnn-through-egress-gateway", [CNN], [
            {"match": [{"gateways": ["mesh"], "port": 80}],
             "route": [{"destination": {"host": GW_HOST, "subset": "cnn", "port": {"number": 443}}}]},
            {"match": [{"gateways": ["istio-egressgateway"], "port": 443}],
             "route": [{"destination": {"host": CNN, "port": {"number": 443}}, "weight": 100}]},
        ], gateways=["istio-egressgateway", "mesh"], namespace="istio-system"),
    ]


def mutual_tls() -> list[dict[str, Any]]:
    """(c) ISTIO_MUTUAL TLS server on 443 carrying the app's own TLS (VS ``tcp`` routes)."""
    return [
        *base(),
        service_entry("cnn", [CNN], [(443, "TLS")]),
        gateway("istio-egressgateway", [gateway_server(443, "TLS", [CNN], tls={"mode": "ISTIO_MUTUAL"})]),
        subsets_rule_for_gateway(tls_mode="ISTIO_MUTUAL", sni=CNN),
        virtual_service("direct-cnn-through-egress-gateway", [CNN], tls=[
            {"match": [{"gateways": ["mesh"], "port": 443, "sniHosts": [CNN]}],
             "route": [{"destination": {"host": GW_HOST, "subset": "cnn", "port": {"number": 443}}}]},
        ], tcp=[
            {"match": [{"gateways": ["istio-egressgateway"], "port": 443}],
             "route": [{"destination": {"host": CNN, "port": {"number": 443}}, "weight": 100}]},
        ], gateways=["istio-egressgateway", "mesh"], namespace="istio-system"),
    ]


def tcp_server() -> list[dict[str, Any]]:
    """(d) plain TCP server (port 9000, no Service port: the listener keeps 9000) with tcp routes."""
    return [
        *base(),
        service_entry("db", ["db.example.com"], [(5432, "TCP")]),
        gateway("istio-egressgateway", [gateway_server(9000, "TCP", ["db.example.com"])]),
        virtual_service("db-through-gateway", ["db.example.com"], tcp=[
            {"match": [{"gateways": ["istio-egressgateway"], "port": 9000}],
             "route": [{"destination": {"host": "db.example.com", "port": {"number": 5432}}}]},
        ], gateways=["istio-egressgateway"], namespace="istio-system"),
    ]


def nothing_selected() -> list[dict[str, Any]]:
    """(a) with the gateway's own VS bound to a different host than the Gateway's server."""
    objects = http_origination()
    objects[-1] = virtual_service("direct-cnn-through-egress-gateway", ["other.example.com"], [
        {"route": [{"destination": {"host": CNN, "port": {"number": 443}}}]},
    ], gateways=["istio-system/istio-egressgateway"])
    return objects


SLEEP = "cluster.local/ns/default/sa/sleep"
GW_SELECTOR = {"istio": "egressgateway"}


def allow_sleep() -> dict[str, Any]:
    """ALLOW only the ``sleep`` service account (mesh identity) through the gateway."""
    return authorization_policy("allow-sleep", selector=GW_SELECTOR,
                                rules=[{"from": [{"source": {"principals": [SLEEP]}}]}])


def deny_namespace(ns: str = "default") -> dict[str, Any]:
    return authorization_policy("deny-ns", selector=GW_SELECTOR, action="DENY",
                                rules=[{"from": [{"source": {"namespaces": [ns]}}]}])


def allow_operations() -> dict[str, Any]:
    """ALLOW GETs under /status on edition.cnn.com, port 8080 (the listener's port)."""
    return authorization_policy("allow-get", selector=GW_SELECTOR, rules=[{
        "to": [{"operation": {"hosts": [CNN], "methods": ["GET"], "paths": ["/status*"],
                              "ports": ["8080"], "notPaths": ["/status/private"]}}]}])


def with_policies(objects: list[dict[str, Any]], *policies: dict[str, Any]) -> list[dict[str, Any]]:
    return [*objects, *policies]


ALL = {
    "http origination": http_origination,
    "tls passthrough": tls_passthrough,
    "istio mutual http": mutual_http,
    "istio mutual tls": mutual_tls,
    "tcp": tcp_server,
    "vs host not on gateway": nothing_selected,
    "authz http": lambda: with_policies(mutual_http(), allow_sleep(), deny_namespace(), allow_operations()),
    "authz passthrough": lambda: with_policies(tls_passthrough(), allow_sleep(), deny_namespace(),
                                               allow_operations()),
    "authz tcp dry run": lambda: with_policies(tcp_server(), authorization_policy(
        "dry", selector=GW_SELECTOR, action="DENY", rules=[{}], annotations={"istio.io/dry-run": "true"})),
}
