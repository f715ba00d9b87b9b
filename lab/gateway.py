"""The lab's egress gateway: a second kind of Envoy standing for ``istio-egressgateway`` in
``istio-system`` (``Lab(egress_gateway=True)``).

It is a lab pod without capture: its own netns linked to the internet like a pod (same /30 scheme,
netns ``mplab-<run>-gw``), Envoy as 1337 in *router* mode (node id ``router~IP~…``), listeners on
8080/8443 as the Gateway objects say, ``:15021`` readiness and ``:15090`` stats as on any Istio proxy,
its own access log, config from ``lab.istiod.generate_gateway`` pushed through the same xDS files
as the sidecars (``lab.xds``), and the mesh CA's certificate for its service account.

Facts taken from istio/istio ``manifests/charts/gateways/istio-egress`` (the default egress gateway):
labels ``app: istio-egressgateway``, ``istio: egressgateway``; Service ports ``http2`` 80→8080 and
``https`` 443→8443; service account ``istio-egressgateway-service-account``; the pod is not
injected and carries no ``security.istio.io/tlsMode`` label, so its endpoints have tlsMode
``disabled`` (``pilot/pkg/serviceregistry/kube/conversion.go`` ``PodTLSMode``) and sidecars reach it
over mTLS only where a DestinationRule says ``ISTIO_MUTUAL`` (no auto-mTLS).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lab.bootstrap import build_bootstrap
from lab.certs import WorkloadCert
from lab.names import RunNames
from lab.pod import Pod, PodSpec

NAMESPACE = "istio-system"
NAME = "istio-egressgateway"
LABELS: Mapping[str, str] = {"app": "istio-egressgateway", "istio": "egressgateway"}
SERVICE_ACCOUNT = "istio-egressgateway-service-account"
# (name, service port, target port) as the istio-egress chart's values.yaml.
PORTS: tuple[tuple[str, int, int], ...] = (("http2", 80, 8080), ("https", 443, 8443))
HOST = f"{NAME}.{NAMESPACE}.svc.cluster.local"
_SERVICE_NAME_LABEL = "kubernetes.io/service-name"


@dataclass(frozen=True)
class GatewayIdentity:
    """What the gateway's config generator needs to know about the gateway proxy and its files."""

    namespace: str
    name: str
    labels: Mapping[str, str]
    service_account: str
    address: str
    ca_file: str
    mesh_ca_file: str
    cert: WorkloadCert


GatewayConfig = tuple[list[dict[str, Any]], list[dict[str, Any]]]
GatewaySource = Callable[[Sequence[Mapping[str, Any]], Mapping[str, Any], GatewayIdentity], GatewayConfig]


def istiod_gateway_source(
    objects: Sequence[Mapping[str, Any]], mesh: Mapping[str, Any], gw: GatewayIdentity
) -> GatewayConfig:
    """The default: the lab's gateway config generator (``lab.istiod.generate_gateway``)."""
    from lab.istiod import GatewayView, generate_gateway

    view = GatewayView(
        namespace=gw.namespace,
        name=gw.name,
        labels=dict(gw.labels),
        service_account=gw.service_account,
        mesh=dict(mesh),
        ca_file=gw.ca_file,
        mesh_ca_file=gw.mesh_ca_file,
        cert_chain_file=str(gw.cert.cert_chain_file),
        private_key_file=str(gw.cert.private_key_file),
    )
    out = generate_gateway(objects, view)
    return list(out.listeners), list(out.clusters)


def gateway_spec() -> PodSpec:
    """The gateway as a lab pod: no capture rules (``interceptionMode: NONE``), Istio's labels."""
    return PodSpec(
        namespace=NAMESPACE,
        name=NAME,
        labels=dict(LABELS),
        annotations={"sidecar.istio.io/interceptionMode": "NONE"},
        service_account=SERVICE_ACCOUNT,
    )


def gateway_netns(names: RunNames) -> str:
    return f"mplab-{names.run_id}-gw"


def service_vip(names: RunNames) -> str:
    """The gateway Service's ClusterIP (outside the pod links, DNS and internet-host ranges)."""
    return str(ipaddress.ip_address(f"10.{names.second_octet}.4.1"))


class EgressGateway(Pod):
    """The running gateway: a ``Pod`` (admin, push, access log, envoy) with a router bootstrap."""

    def bootstrap(self) -> dict[str, Any]:
        """pilot-agent's bootstrap for a gateway (``router~`` node); LDS/CDS from ``self.xds``."""
        ns = self.namespace
        return build_bootstrap(
            [], [],
            node_id=f"router~{self.address}~{self.spec.name}-lab.{ns}~{ns}.svc.cluster.local",
            cluster=f"{self.spec.name}.{ns}",
            dns_resolvers=[(self.net.dns_server, 53)],
            pod_ips=[self.address],
            xds_dir=str(self.xds.directory),
            status_listeners=True,
        )  # fmt: skip


Objects = Sequence[Mapping[str, Any]]


Match = Callable[[Mapping[str, Any]], bool]


def _find(objects: Objects, kind: str, match: Match) -> Mapping[str, Any] | None:
    return next((o for o in objects if o.get("kind") == kind and match(o.get("metadata") or {})), None)


def service_objects(
    objects: Sequence[Mapping[str, Any]], address: str, vip: str
) -> list[dict[str, Any]]:
    """The Service and EndpointSlice Kubernetes would have for the gateway, minus what ``objects``
    already define: a user's own ``istio-egressgateway`` Service wins (the slice then follows its
    port names and target ports); a user's slice for it wins too."""
    ours = {"namespace": NAMESPACE, "name": NAME}

    def is_service(m: Mapping[str, Any]) -> bool:
        return m.get("namespace") == NAMESPACE and m.get("name") == NAME

    def is_slice(m: Mapping[str, Any]) -> bool:
        return m.get("namespace") == NAMESPACE and (m.get("labels") or {}).get(_SERVICE_NAME_LABEL) == NAME

    out: list[dict[str, Any]] = []
    user_service = _find(objects, "Service", is_service)
    ports: list[tuple[str, int, int]] = list(PORTS)
    if user_service is None:
        out.append({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {**ours, "labels": dict(LABELS)},
            "spec": {"type": "ClusterIP", "clusterIP": vip, "clusterIPs": [vip], "selector": dict(LABELS),
                     "ports": [{"name": n, "port": p, "targetPort": t, "protocol": "TCP"}
                               for n, p, t in PORTS]},
        })  # fmt: skip
    else:
        ports = [
            (str(p.get("name") or ""), int(p.get("port") or 0), _target(p))
            for p in (user_service.get("spec") or {}).get("ports") or ()
        ]
    if _find(objects, "EndpointSlice", is_slice) is None:
        out.append({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"namespace": NAMESPACE, "name": f"{NAME}-lab",
                         "labels": {_SERVICE_NAME_LABEL: NAME, **LABELS}},
            "endpoints": [{"addresses": [address], "conditions": {"ready": True},
                           "targetRef": {"kind": "Pod", "namespace": NAMESPACE, "name": f"{NAME}-lab"}}],
            "ports": [{"name": n, "port": t, "protocol": "TCP"} for n, _, t in ports],
        })  # fmt: skip
    return out


def _target(port: Mapping[str, Any]) -> int:
    target = port.get("targetPort")
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    return int(port.get("port") or 0)


def gateway_status(gateway: EgressGateway) -> dict[str, Any]:
    """The gateway's part of ``Lab.status()``."""
    return {
        "namespace": gateway.namespace, "name": gateway.spec.name, "netns": gateway.net.netns,
        "address": gateway.address, "envoy_pid": gateway.envoy.pid, "envoy_running": gateway.envoy.running(),
        "config_version": gateway.xds.version,
    }  # fmt: skip
