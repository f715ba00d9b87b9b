"""Egress-gateway setups as Istio's tasks write them (istio.io: tasks/traffic-management/egress/
egress-gateway and egress-gateway-tls-origination), with lab host names, and one function per fault.

Every setup is: a ServiceEntry for the internet host (resolution DNS), a Gateway selecting
``istio: egressgateway``, a DestinationRule for the gateway Service with subset ``target`` (TLS
``ISTIO_MUTUAL`` + SNI where the Gateway server is ``ISTIO_MUTUAL``), and one VirtualService bound to
``[mesh, istio-egressgateway]``: the ``mesh`` match sends the app's traffic to the gateway, the
gateway match sends it on to the host. Functions return fresh lists of dicts (``kubectl get -o yaml``
shape), so callers may edit them. Used by ``tests/lab/test_gateway_*.py``; reusable by any test.
"""

from __future__ import annotations

import copy
from typing import Any

HOST = "edition.lab.example"
TCP_HOST = "tcp-echo.lab.example"
TCP_PORT = 9000
GATEWAY_HOST = "istio-egressgateway.istio-system.svc.cluster.local"
SUBSET = "target"
ALLOWED_SA = ("default", "builder")  # namespace, service account the AuthorizationPolicy allows
Obj = dict[str, Any]


def _meta(name: str, namespace: str = "default") -> Obj:
    return {"name": name, "namespace": namespace}


def service_entry(resolution: str = "DNS") -> Obj:
    return {
        "apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry", "metadata": _meta("edition"),
        "spec": {"hosts": [HOST], "location": "MESH_EXTERNAL", "resolution": resolution,
                 "ports": [{"number": 80, "name": "http-port", "protocol": "HTTP"},
                           {"number": 443, "name": "https", "protocol": "HTTPS"}]},
    }  # fmt: skip


def tcp_service_entry() -> Obj:
    return {
        "apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry", "metadata": _meta("tcp-echo"),
        "spec": {"hosts": [TCP_HOST], "location": "MESH_EXTERNAL", "resolution": "DNS",
                 "ports": [{"number": TCP_PORT, "name": "tcp", "protocol": "TCP"}]},
    }  # fmt: skip


def gateway(port: int, name: str, protocol: str, hosts: list[str], tls: Obj | None = None) -> Obj:
    server: Obj = {"port": {"number": port, "name": name, "protocol": protocol}, "hosts": hosts}
    if tls:
        server["tls"] = tls
    return {
        "apiVersion": "networking.istio.io/v1", "kind": "Gateway", "metadata": _meta("istio-egressgateway"),
        "spec": {"selector": {"istio": "egressgateway"}, "servers": [server]},
    }


def gateway_rule(mtls_port: int | None = None, subsets: bool = True) -> Obj:
    """DR for the gateway Service: subset ``target``; with ``mtls_port`` the subset's port-level TLS is
    ``ISTIO_MUTUAL`` with SNI = the host (as the tasks write it)."""
    subset: Obj = {"name": SUBSET}
    if mtls_port is not None:
        subset["trafficPolicy"] = {"portLevelSettings": [
            {"port": {"number": mtls_port}, "tls": {"mode": "ISTIO_MUTUAL", "sni": HOST}}]}
    spec: Obj = {"host": GATEWAY_HOST}
    if subsets:
        spec["subsets"] = [subset]
    return {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": _meta("egressgateway-for-edition"), "spec": spec}  # fmt: skip


def _to_gateway(port: int) -> Obj:
    return {"destination": {"host": GATEWAY_HOST, "subset": SUBSET, "port": {"number": port}}, "weight": 100}


def _to(host: str, port: int) -> Obj:
    return {"destination": {"host": host, "port": {"number": port}}, "weight": 100}


def virtual_service(kind: str, host: str, mesh: Obj, at_gateway: Obj, gateway_kind: str = "") -> Obj:
    """One VirtualService: ``mesh`` and ``at_gateway`` routes of ``kind`` (``http``/``tls``/``tcp``);
    ``gateway_kind`` puts the gateway's route under another kind."""
    spec: Obj = {"hosts": [host], "gateways": ["istio-egressgateway", "mesh"], kind: [mesh]}
    spec.setdefault(gateway_kind or kind, []).append(at_gateway)
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": _meta("via-egress-gateway"), "spec": spec}  # fmt: skip


# ---- the four setups ---------------------------------------------------------------------------


def plain_http() -> list[Obj]:
    """HTTP to the host on 80 → gateway (HTTP server on 80, i.e. 8080) → host:80."""
    return [
        service_entry(),
        gateway(80, "http", "HTTP", [HOST]),
        gateway_rule(),
        virtual_service("http", HOST,
                        {"match": [{"gateways": ["mesh"], "port": 80}], "route": [_to_gateway(80)]},
                        {"match": [{"gateways": ["istio-egressgateway"], "port": 80}],
                         "route": [_to(HOST, 80)]}),
    ]  # fmt: skip


def https_passthrough() -> list[Obj]:
    """The app's own TLS to the host on 443 → gateway (TLS PASSTHROUGH on 443, i.e. 8443) by SNI."""
    sni = {"port": 443, "sniHosts": [HOST]}
    return [
        service_entry(),
        gateway(443, "tls", "TLS", [HOST], {"mode": "PASSTHROUGH"}),
        gateway_rule(),
        virtual_service("tls", HOST,
                        {"match": [{"gateways": ["mesh"], **sni}], "route": [_to_gateway(443)]},
                        {"match": [{"gateways": ["istio-egressgateway"], **sni}], "route": [_to(HOST, 443)]}),
    ]  # fmt: skip


def tls_origination() -> list[Obj]:
    """Plain HTTP from the app → sidecar→gateway over mTLS (Gateway ``HTTPS`` + ``ISTIO_MUTUAL`` on 80,
    DR subset ``ISTIO_MUTUAL``) → the gateway originates TLS to host:443 (DR ``SIMPLE``)."""
    originate = {
        "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": _meta("originate-tls"),
        "spec": {"host": HOST, "trafficPolicy": {"portLevelSettings": [
            {"port": {"number": 443}, "tls": {"mode": "SIMPLE"}}]}},
    }  # fmt: skip
    return [
        service_entry(),
        gateway(80, "https-port-for-tls-origination", "HTTPS", [HOST], {"mode": "ISTIO_MUTUAL"}),
        gateway_rule(mtls_port=80),
        virtual_service("http", HOST,
                        {"match": [{"gateways": ["mesh"], "port": 80}], "route": [_to_gateway(80)]},
                        {"match": [{"gateways": ["istio-egressgateway"], "port": 80}],
                         "route": [_to(HOST, 443)]}),
        originate,
    ]  # fmt: skip


def tcp() -> list[Obj]:
    """Opaque TCP to the host's port 9000 → gateway (TCP server on 443, i.e. 8443) → host:9000."""
    return [
        tcp_service_entry(),
        gateway(443, "tcp", "TCP", [TCP_HOST]),
        gateway_rule(),
        virtual_service("tcp", TCP_HOST,
                        {"match": [{"gateways": ["mesh"], "port": TCP_PORT}], "route": [_to_gateway(443)]},
                        {"match": [{"gateways": ["istio-egressgateway"], "port": 443}],
                         "route": [_to(TCP_HOST, TCP_PORT)]}),
    ]  # fmt: skip


def mtls_passthrough() -> list[Obj]:
    """The app's TLS carried inside sidecar→gateway mTLS (Gateway ``TLS`` + ``ISTIO_MUTUAL`` on 443,
    DR subset ``ISTIO_MUTUAL``): the gateway terminates the mTLS and forwards the app's TLS bytes
    with a ``tcp`` route; so an AuthorizationPolicy there sees the caller's principal."""
    return [
        service_entry(),
        gateway(443, "tls", "TLS", [HOST], {"mode": "ISTIO_MUTUAL"}),
        gateway_rule(mtls_port=443),
        virtual_service("tls", HOST,
                        {"match": [{"gateways": ["mesh"], "port": 443, "sniHosts": [HOST]}],
                         "route": [_to_gateway(443)]},
                        {"match": [{"gateways": ["istio-egressgateway"], "port": 443}],
                         "route": [_to(HOST, 443)]}, gateway_kind="tcp"),
    ]  # fmt: skip


# ---- faults --------------------------------------------------------------------------------------


def _vs(objects: list[Obj]) -> Obj:
    return next(o for o in objects if o["kind"] == "VirtualService")


def no_mesh_gateway() -> list[Obj]:
    """Plain HTTP with the VirtualService bound to the egress gateway only: the sidecar does not
    route to the gateway at all (the app goes direct)."""
    objects = plain_http()
    vs = _vs(objects)
    vs["spec"]["gateways"] = ["istio-egressgateway"]
    vs["spec"]["http"] = vs["spec"]["http"][1:]
    return objects


def host_not_on_gateway() -> list[Obj]:
    """Plain HTTP whose Gateway server lists another host: the gateway has no route for the host."""
    objects = plain_http()
    gw = next(o for o in objects if o["kind"] == "Gateway")
    gw["spec"]["servers"][0]["hosts"] = ["other.lab.example"]
    return objects


def subset_without_rule() -> list[Obj]:
    """Plain HTTP without the gateway DestinationRule: the route names an undefined subset."""
    return [o for o in plain_http() if o["kind"] != "DestinationRule"]


def mtls_server_plain_client() -> list[Obj]:
    """TLS origination whose gateway DR has the subset but no ``ISTIO_MUTUAL``: plaintext to an mTLS
    server."""
    objects = tls_origination()
    return [gateway_rule() if o["metadata"]["name"] == "egressgateway-for-edition" else o for o in objects]


def plain_server_mtls_client() -> list[Obj]:
    """Plain HTTP whose gateway DR says ``ISTIO_MUTUAL``: mTLS to a plaintext HTTP server."""
    objects = plain_http()
    return [gateway_rule(mtls_port=80) if o["kind"] == "DestinationRule" else o for o in objects]


def resolution_none() -> list[Obj]:
    """Plain HTTP with the ServiceEntry's resolution NONE (the gateway has no endpoints to use)."""
    objects = plain_http()
    return [service_entry("NONE") if o["kind"] == "ServiceEntry" else o for o in objects]


def authorization_policy(namespace: str = ALLOWED_SA[0], service_account: str = ALLOWED_SA[1]) -> Obj:
    """ALLOW at the gateway for one caller principal: every other caller is denied."""
    return {
        "apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
        "metadata": _meta("egress-allow-one", "istio-system"),
        "spec": {"selector": {"matchLabels": {"istio": "egressgateway"}}, "action": "ALLOW",
                 "rules": [{"from": [{"source": {"principals": [
                     f"cluster.local/ns/{namespace}/sa/{service_account}"]}}]}]},
    }  # fmt: skip


def with_policy(objects: list[Obj]) -> list[Obj]:
    return [*copy.deepcopy(objects), authorization_policy()]


SETUPS = {
    "plain_http": plain_http,
    "https_passthrough": https_passthrough,
    "tls_origination": tls_origination,
    "tcp": tcp,
    "mtls_passthrough": mtls_passthrough,
}
FAULTS = {
    "no_mesh_gateway": no_mesh_gateway,
    "host_not_on_gateway": host_not_on_gateway,
    "subset_without_rule": subset_without_rule,
    "mtls_server_plain_client": mtls_server_plain_client,
    "plain_server_mtls_client": plain_server_mtls_client,
    "resolution_none": resolution_none,
}


def in_namespace(objects: list[Obj], namespace: str) -> list[Obj]:
    """Copies of ``objects`` with everything that was in ``default`` moved to ``namespace`` (the
    gateway's own objects, in ``istio-system``, stay)."""
    out = copy.deepcopy(objects)
    for obj in out:
        if obj["metadata"].get("namespace") == "default":
            obj["metadata"]["namespace"] = namespace
    return out
