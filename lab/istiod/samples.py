"""Builders for the raw objects the generator reads (tests, docs and lab scenarios).

Each returns a ``kubectl get -o yaml``-shaped dict with only the fields given, so a test table can
say exactly what a scenario contains.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

PortSpec = tuple[int, str] | tuple[int, str, int]  # (number, protocol[, targetPort]); protocol "" = unset


def _meta(name: str, namespace: str, created: str | None, labels: Mapping[str, str] | None,
          annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if created:
        meta["creationTimestamp"] = created
    if labels:
        meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def service_entry(name: str, hosts: Sequence[str], ports: Sequence[PortSpec], *, resolution: str = "DNS",
                  namespace: str = "default", addresses: Sequence[str] = (), export_to: Sequence[str] = (),
                  endpoints: Sequence[Mapping[str, Any]] = (), location: str = "MESH_EXTERNAL",
                  created: str | None = None, labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"hosts": list(hosts), "location": location, "resolution": resolution, "ports": []}
    for port in ports:
        entry: dict[str, Any] = {"number": port[0], "name": f"p{port[0]}"}
        if port[1]:
            entry["protocol"] = port[1]
        if len(port) == 3:
            entry["targetPort"] = port[2]
        spec["ports"].append(entry)
    if addresses:
        spec["addresses"] = list(addresses)
    if export_to:
        spec["exportTo"] = list(export_to)
    if endpoints:
        spec["endpoints"] = [dict(e) for e in endpoints]
    return {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
            "metadata": _meta(name, namespace, created, labels), "spec": spec}


def kube_service(name: str, ports: Sequence[Mapping[str, Any]], *, namespace: str = "default",
                 cluster_ip: str | None = None, service_type: str = "ClusterIP", external_name: str = "",
                 annotations: Mapping[str, str] | None = None, created: str | None = None) -> dict[str, Any]:
    """``ports`` items: {"port": 80, "name": "http", "appProtocol": ..., "targetPort": ...}."""
    spec: dict[str, Any] = {"type": service_type, "ports": [dict(p) for p in ports]}
    if cluster_ip is not None:
        spec["clusterIP"] = cluster_ip
    if external_name:
        spec["externalName"] = external_name
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": _meta(name, namespace, created, None, annotations), "spec": spec}


def sidecar(name: str, *, namespace: str = "default", hosts: Sequence[str] | None = None,
            selector: Mapping[str, str] | None = None, mode: str | None = None,
            egress_proxy: tuple[str, int] | None = None, created: str | None = None,
            port_egress: Sequence[tuple[int, str, Sequence[str]]] = ()) -> dict[str, Any]:
    """``port_egress``: egress listeners with a port, (number, protocol, hosts), before the
    catch-all ``hosts`` one."""
    spec: dict[str, Any] = {}
    egress = [{"port": {"number": n, "protocol": p, "name": f"{p.lower()}-{n}"}, "hosts": list(h)}
              for n, p, h in port_egress]
    if hosts is not None:
        egress.append({"hosts": list(hosts)})
    if egress:
        spec["egress"] = egress
    if selector is not None:
        spec["workloadSelector"] = {"labels": dict(selector)}
    if mode or egress_proxy:
        policy: dict[str, Any] = {"mode": mode or "ALLOW_ANY"}
        if egress_proxy:
            policy["egressProxy"] = {"host": egress_proxy[0], "port": {"number": egress_proxy[1]}}
        spec["outboundTrafficPolicy"] = policy
    return {"apiVersion": "networking.istio.io/v1", "kind": "Sidecar",
            "metadata": _meta(name, namespace, created, None), "spec": spec}


def destination_rule(name: str, host: str, *, tls_mode: str | None = None, namespace: str = "default",
                     port_tls: Mapping[int, str] | None = None, export_to: Sequence[str] = (),
                     connect_timeout: str | None = None, sni: str | None = None,
                     created: str | None = None) -> dict[str, Any]:
    policy: dict[str, Any] = {}
    if tls_mode:
        policy["tls"] = {"mode": tls_mode, **({"sni": sni} if sni else {})}
    if port_tls:
        policy["portLevelSettings"] = [
            {"port": {"number": n}, "tls": {"mode": m}} for n, m in port_tls.items()]
    if connect_timeout:
        policy["connectionPool"] = {"tcp": {"connectTimeout": connect_timeout}}
    spec: dict[str, Any] = {"host": host, "trafficPolicy": policy}
    if export_to:
        spec["exportTo"] = list(export_to)
    return {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": _meta(name, namespace, created, None), "spec": spec}


def namespace(name: str, labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": dict(labels or {})}}


def virtual_service(name: str, hosts: Sequence[str], http: Sequence[Mapping[str, Any]] = (), *,
                    namespace: str = "default", gateways: Sequence[str] = (), export_to: Sequence[str] = (),
                    created: str | None = None, tls: Sequence[Mapping[str, Any]] = (),
                    tcp: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    spec: dict[str, Any] = {"hosts": list(hosts)}
    for key, rules in (("http", http), ("tls", tls), ("tcp", tcp)):
        if rules:
            spec[key] = [dict(r) for r in rules]
    if gateways:
        spec["gateways"] = list(gateways)
    if export_to:
        spec["exportTo"] = list(export_to)
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": _meta(name, namespace, created, None), "spec": spec}


def subsets_rule(name: str, host: str, subsets: Mapping[str, Mapping[str, str]], *,
                 namespace: str = "default") -> dict[str, Any]:
    """A DestinationRule with only ``subsets`` (name → labels)."""
    return {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": _meta(name, namespace, None, None),
            "spec": {"host": host,
                     "subsets": [{"name": n, "labels": dict(lbl)} for n, lbl in subsets.items()]}}


def endpoint_slice(service: str, addresses: Sequence[str], ports: Mapping[str, int], *,
                   namespace: str = "default", ready: bool = True) -> dict[str, Any]:
    """An EndpointSlice for ``service`` (``ports``: port name → port)."""
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{service}-abc", "namespace": namespace,
                         "labels": {"kubernetes.io/service-name": service}},
            "endpoints": [{"addresses": [a], "conditions": {"ready": ready}} for a in addresses],
            "ports": [{"name": n, "port": p} for n, p in ports.items()]}


def gateway(name: str, servers: Sequence[Mapping[str, Any]], *, namespace: str = "istio-system",
            selector: Mapping[str, str] | None = None, created: str | None = None) -> dict[str, Any]:
    """A Gateway (``selector`` defaults to istio's egress gateway's ``istio: egressgateway``)."""
    chosen = selector if selector is not None else {"istio": "egressgateway"}
    spec: dict[str, Any] = {"selector": dict(chosen), "servers": [dict(s) for s in servers]}
    return {"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
            "metadata": _meta(name, namespace, created, None), "spec": spec}


def gateway_server(number: int, protocol: str, hosts: Sequence[str], *, name: str = "",
                   tls: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One Gateway server; the port is named after the protocol and number (``http-80``)."""
    server: dict[str, Any] = {"port": {"number": number, "name": f"{protocol.lower()}-{number}",
                                       "protocol": protocol}, "hosts": list(hosts)}
    if name:
        server["name"] = name
    if tls is not None:
        server["tls"] = dict(tls)
    return server


def egress_gateway_service(*, namespace: str = "istio-system",
                           cluster_ip: str = "10.96.0.20") -> dict[str, Any]:
    """istio's ``istio-egressgateway`` Service: 80→8080 and 443→8443, selecting the gateway pods."""
    svc = kube_service("istio-egressgateway",
                       [{"port": 80, "name": "http2", "targetPort": 8080},
                        {"port": 443, "name": "https", "targetPort": 8443}],
                       namespace=namespace, cluster_ip=cluster_ip)
    svc["spec"]["selector"] = {"istio": "egressgateway", "app": "istio-egressgateway"}
    return svc


def authorization_policy(name: str, *, namespace: str = "istio-system", action: str | None = None,
                         rules: Sequence[Mapping[str, Any]] | None = None,
                         selector: Mapping[str, str] | None = None,
                         annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    """An AuthorizationPolicy; ``rules=None`` leaves ``rules`` out (ALLOW nothing)."""
    spec: dict[str, Any] = {}
    if selector is not None:
        spec["selector"] = {"matchLabels": dict(selector)}
    if action:
        spec["action"] = action
    if rules is not None:
        spec["rules"] = [dict(r) for r in rules]
    return {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
            "metadata": _meta(name, namespace, None, None, annotations), "spec": spec}
