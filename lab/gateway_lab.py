"""How ``Lab`` runs its egress gateway (``Lab(egress_gateway=True)``; see ``lab.gateway``): start it
in its own netns before the pods, generate its config, push it with every ``apply``, and add its
Service and EndpointSlice to what the sidecars' config is generated from."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lab.gateway import (
    PORTS,
    EgressGateway,
    GatewayConfig,
    GatewayIdentity,
    gateway_netns,
    gateway_spec,
    istiod_gateway_source,
    service_objects,
    service_vip,
)
from lab.netns import nsenter_argv, run
from lab.pod import create_pod_network
from lab.sources import LabStartError

if TYPE_CHECKING:
    from lab.runtime import Lab


def mesh_objects(lab: Lab) -> list[Mapping[str, Any]]:
    gateway = lab.gateway
    if gateway is None:
        return list(lab.objects)
    return [*lab.objects, *service_objects(lab.objects, gateway.address, service_vip(lab.names))]


def identity(lab: Lab, gateway: EgressGateway) -> GatewayIdentity:
    spec = gateway.spec
    return GatewayIdentity(
        namespace=spec.namespace, name=spec.name, labels=dict(spec.labels),
        service_account=spec.service_account, address=gateway.address, ca_file=str(lab.ca_file),
        mesh_ca_file=str(lab.mesh_ca_file), cert=lab.workload_cert(spec.namespace, spec.service_account),
    )  # fmt: skip


def gateway_config(lab: Lab, gateway: EgressGateway) -> GatewayConfig:
    source = lab.gateway_source or istiod_gateway_source
    try:
        return source(mesh_objects(lab), lab.mesh, identity(lab, gateway))
    except Exception as exc:  # the generator's bug must not leave a half-built lab
        raise LabStartError(f"config generation for the egress gateway failed: {exc}") from exc


def start_gateway(lab: Lab) -> None:
    """Netns + veth (a pod slot's addresses), no capture, agent (15020/15021), Envoy as 1337;
    waits until it is LIVE and accepted its config. Cleanup is registered as things are created."""
    index = lab._take_slot()
    stack = contextlib.ExitStack()
    lab._stack.callback(stack.close)
    stack.callback(lab._free_slot, index)
    net = create_pod_network(lab.names, index, stack, netns=gateway_netns(lab.names))
    workdir = lab.workdir / "egressgateway"
    gateway = EgressGateway(gateway_spec(), net, workdir, lab.ca_file, lab.access_log_enabled)
    stack.callback(gateway.close)
    gateway.setup_network()
    route_to_gateway(lab.names.internet_netns, gateway.address)
    lab._start_agents(gateway, stack)
    lab.gateway = gateway
    stack.callback(setattr, lab, "gateway", None)
    listeners, clusters = gateway_config(lab, gateway)
    lab._restart_envoy(gateway, listeners, clusters)
    lab._wait_pod(gateway)


def push_gateway(lab: Lab, allow_rejected: bool) -> None:
    """Regenerate and push (CDS then LDS, as to a sidecar); a stopped gateway Envoy is restarted."""
    gateway = lab.gateway
    assert gateway is not None
    listeners, clusters = gateway_config(lab, gateway)
    if gateway.agent is not None and gateway.agent.quitting:
        lab._call(gateway.agent.restart())
    if not gateway.envoy.running():
        lab._restart_envoy(gateway, listeners, clusters)
        lab._wait_pod(gateway)
        return
    lab._push_pod(gateway, listeners, clusters, allow_rejected)


def route_to_gateway(internet_netns: str, address: str) -> None:
    """Let pods reach the gateway (and the gateway them) through the internet netns, which joins
    every pod link: IPv4 forwarding on, but only to and from the gateway's address (pods still do
    not reach each other)."""
    run([*nsenter_argv(internet_netns), "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
    rules = "\n".join(["*filter", ":FORWARD DROP [0:0]", f"-A FORWARD -d {address}/32 -j ACCEPT",
                       f"-A FORWARD -s {address}/32 -j ACCEPT", "COMMIT", ""])
    run([*nsenter_argv(internet_netns), "iptables-restore", "--noflush"], stdin=rules)


LAB_MANAGED = "lab.meshprobe.io/managed-by"
"""Label (value ``lab``) on what the lab itself runs in the API: the kubelet does not run such pods,
``lab apply`` does not delete such objects (the EndpointSlice controller copies it onto slices)."""


def api_objects(lab: Lab) -> list[dict[str, Any]]:
    """The gateway as ``kubectl`` sees it on a cluster: its ServiceAccount, its Service (the chart's
    ports and selector; the API allocates the ClusterIP) unless the objects define one, and its Pod
    (status set from the running gateway)."""
    gateway = lab.gateway
    assert gateway is not None
    spec = gateway.spec
    marker = {LAB_MANAGED: "lab"}
    out: list[dict[str, Any]] = [{
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"namespace": spec.namespace, "name": spec.service_account, "labels": dict(marker)},
    }]  # fmt: skip
    for obj in service_objects(lab.objects, gateway.address, service_vip(lab.names)):
        if obj["kind"] == "Service":
            obj["metadata"]["labels"].update(marker)
            for key in ("clusterIP", "clusterIPs"):
                obj["spec"].pop(key)
            out.append(obj)
    ports = [{"name": n, "containerPort": t, "protocol": "TCP"} for n, _, t in PORTS]
    ports.append({"name": "http-envoy-prom", "containerPort": 15090, "protocol": "TCP"})
    out.append({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"namespace": spec.namespace, "name": f"{spec.name}-lab",
                     "labels": {**spec.labels, "sidecar.istio.io/inject": "false",
                                "service.istio.io/canonical-name": spec.name, **marker}},
        "spec": {"serviceAccountName": spec.service_account, "nodeName": "lab-node",
                 "containers": [{"name": "istio-proxy", "image": "docker.io/istio/proxyv2", "ports": ports}]},
    })  # fmt: skip
    return out


def seed_api(store: Any, lab: Lab) -> None:
    """Create ``api_objects`` in the lab's API and publish the Pod as Running and Ready at the gateway's
    address, so the EndpointSlice controller lists it for the Service, as on a cluster."""
    gateway = lab.gateway
    if gateway is None:
        return
    for obj in api_objects(lab):
        meta = obj["metadata"]
        plural = {"ServiceAccount": "serviceaccounts", "Service": "services", "Pod": "pods"}[obj["kind"]]
        if store.get(plural, meta["namespace"], meta["name"]) is None:
            store.create(obj)
    ready = {"type": "Ready", "status": "True"}
    store.patch_status("pods", gateway.namespace, f"{gateway.spec.name}-lab", {
        "phase": "Running", "podIP": gateway.address, "podIPs": [{"ip": gateway.address}],
        "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Initialized", "status": "True"},
                       {"type": "ContainersReady", "status": "True"}, ready],
    })  # fmt: skip


def lab_managed(obj: Mapping[str, Any]) -> bool:
    return ((obj.get("metadata") or {}).get("labels") or {}).get(LAB_MANAGED) == "lab"
