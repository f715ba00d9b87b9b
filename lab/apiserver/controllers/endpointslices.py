"""The EndpointSlice controller (pkg/controller/endpointslice/endpointslice_controller.go
``syncService``, with the reconciler and helpers of staging/src/k8s.io/endpointslice: reconciler.go,
utils.go ``podToEndpoint``/``getEndpointPorts``, util/controller_utils.go ``ShouldPodBeInEndpoints``,
and pkg/api/v1/pod/util.go ``FindPort``).

Per Service with a selector (not ExternalName; a Service without one gets no slices from here
and its hand-made slices are left alone), on every change to it, to a pod of its namespace or to
one of its managed slices:

- **Which pods**: those the selector matches that have an IP and are not Succeeded/Failed; pods
  being deleted stay listed as terminating.
- **Each endpoint**: the pod's IP, ``conditions.serving`` = the pod's Ready condition,
  ``terminating`` = it is being deleted, ``ready`` = ``serving and not terminating`` — or always
  true with ``publishNotReadyAddresses``. A pod that is not Ready is listed with ``ready: false``
  (consumers such as istiod and kube-proxy do not send it traffic). ``targetRef`` names the pod,
  ``nodeName`` its node.
- **Ports**: the Service's ports with ``targetPort`` resolved on each pod — a number as it is, a
  name through the pod's container ports with that name and protocol; a port a pod cannot resolve
  is left out for that pod, so pods resolving to different port sets land in different slices.
- **Slices**: ``generateName: <service>-``, labels ``kubernetes.io/service-name``,
  ``endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io`` plus the Service's
  own labels, a controller ownerReference to the Service (the garbage collector removes them with
  it), one slice per port set (not split at 100 endpoints), one empty placeholder slice when no
  pod matches.

A slice is written only when its content would change: pod status updates that do not move an
endpoint (the kubelet's container states, restarts) write nothing — EndpointSlices are mesh objects,
and every write reaches the sidecars.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any

from lab.apiserver.controllers.base import Worker
from lab.apiserver.controllers.claims import controller_ref
from lab.apiserver.errors import ApiError, Conflict

GROUP = "discovery.k8s.io"
SERVICE_NAME = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
HEADLESS = "service.kubernetes.io/headless"
RETRY_SECONDS = 0.1
Key = tuple[str, str]


def pod_ready(pod: Mapping[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def should_be_listed(pod: Mapping[str, Any]) -> bool:
    """``ShouldPodBeInEndpoints(pod, includeTerminating=true)``."""
    status = pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return False
    return bool(status.get("podIP") or status.get("podIPs"))


def find_port(pod: Mapping[str, Any], service_port: Mapping[str, Any]) -> int | None:
    """``FindPort``: a numeric targetPort as it is, a named one through the pod's containers."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    protocol = service_port.get("protocol", "TCP")
    spec = pod.get("spec") or {}
    sidecars = [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    for container in [*(spec.get("containers") or []), *sidecars]:
        for port in container.get("ports") or []:
            if port.get("name") == target and port.get("protocol", "TCP") == protocol:
                return int(port["containerPort"])
    return None


def endpoint_ports(service: Mapping[str, Any], pod: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``getEndpointPorts``: the Service's ports as this pod serves them, in the Service's order."""
    out = []
    for service_port in (service.get("spec") or {}).get("ports") or []:
        number = find_port(pod, service_port)
        if number is None:
            continue
        port: dict[str, Any] = {
            "name": service_port.get("name", ""),
            "port": number,
            "protocol": service_port.get("protocol", "TCP"),
        }
        if service_port.get("appProtocol"):
            port["appProtocol"] = service_port["appProtocol"]
        out.append(port)
    return out


def address_type(service: Mapping[str, Any]) -> str:
    families = (service.get("spec") or {}).get("ipFamilies") or ["IPv4"]
    return "IPv6" if families[0] == "IPv6" else "IPv4"


def pod_endpoint(service: Mapping[str, Any], pod: Mapping[str, Any]) -> dict[str, Any]:
    """``podToEndpoint``."""
    meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    serving = pod_ready(pod)
    terminating = bool(meta.get("deletionTimestamp"))
    publish = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    ips = [str(p.get("ip")) for p in status.get("podIPs") or [] if p.get("ip")] or [str(status.get("podIP"))]
    v6 = address_type(service) == "IPv6"
    endpoint: dict[str, Any] = {
        "addresses": [ip for ip in ips if (":" in ip) == v6][:1],
        "conditions": {
            "ready": publish or (serving and not terminating),
            "serving": serving,
            "terminating": terminating,
        },
        "targetRef": {
            "kind": "Pod",
            "namespace": meta["namespace"],
            "name": meta["name"],
            "uid": meta["uid"],
        },
    }
    svc_meta = service["metadata"]
    if spec.get("hostname") and spec.get("subdomain") == svc_meta["name"]:
        endpoint["hostname"] = spec["hostname"]
    if spec.get("nodeName"):
        endpoint["nodeName"] = spec["nodeName"]
    return endpoint


def slice_labels(service: Mapping[str, Any]) -> dict[str, str]:
    """``setEndpointSliceLabels``: the Service's labels, then the controller's own."""
    labels = {
        k: v
        for k, v in (service["metadata"].get("labels") or {}).items()
        if k not in (SERVICE_NAME, MANAGED_BY, HEADLESS)
    }
    labels[SERVICE_NAME] = service["metadata"]["name"]
    labels[MANAGED_BY] = CONTROLLER_NAME
    if (service.get("spec") or {}).get("clusterIP") == "None":
        labels[HEADLESS] = ""
    return labels


def desired_slices(
    service: Mapping[str, Any], pods: list[dict[str, Any]]
) -> list[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    """(ports, endpoints) per port set, sorted; one empty placeholder when no pod is listed."""
    groups: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}
    for pod in pods:
        if not should_be_listed(pod):
            continue
        endpoint = pod_endpoint(service, pod)
        if not endpoint["addresses"]:
            continue
        ports = endpoint_ports(service, pod)
        key = json.dumps(sorted(ports, key=lambda p: (p["name"], p["protocol"], p["port"])), sort_keys=True)
        groups.setdefault(key, (ports, []))[1].append(endpoint)
    for _, endpoints in groups.values():
        endpoints.sort(key=lambda e: (e["addresses"][0], e["targetRef"]["name"]))
    return [groups[k] for k in sorted(groups)] or [([], [])]


def service_selects(service: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    selector = (service.get("spec") or {}).get("selector") or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


class EndpointSliceController(Worker):
    name = "endpointslice-controller"

    def __init__(self, store: Any) -> None:
        super().__init__(store)
        self._listed: dict[Key, set[str]] = {}  # Service -> uids of the pods its slices list

    def wants(self, obj: dict[str, Any]) -> bool:
        kind, api_version = obj.get("kind"), obj.get("apiVersion")
        if api_version == "v1":
            return kind in ("Service", "Pod")
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return kind == "EndpointSlice" and labels.get(MANAGED_BY) == CONTROLLER_NAME

    def handle(self, event_type: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        namespace = meta["namespace"]
        if obj["kind"] == "Service":
            if event_type == "DELETED":
                self._listed.pop((namespace, meta["name"]), None)
            else:
                self.fire((namespace, meta["name"]))
            return
        if obj["kind"] == "EndpointSlice":
            service = (meta.get("labels") or {}).get(SERVICE_NAME)
            if service:
                self.fire((namespace, service))
            return
        keys = {key for key, uids in self._listed.items() if meta["uid"] in uids}
        if event_type != "DELETED":
            labels = meta.get("labels") or {}
            keys.update(
                (namespace, svc["metadata"]["name"])
                for svc in self.store.list("services", namespace)
                if service_selects(svc, labels)
            )
        for key in sorted(keys):
            self.fire(key)

    def fire(self, key: Any) -> None:
        namespace, name = key
        service = self.store.get("services", namespace, name)
        if service is None:
            self._listed.pop(key, None)
            return
        spec = service.get("spec") or {}
        if spec.get("type") == "ExternalName" or not spec.get("selector"):
            self._listed.pop(key, None)
            return
        pods = [
            p
            for p in self.store.list("pods", namespace)
            if service_selects(service, p["metadata"].get("labels") or {})
        ]
        desired = desired_slices(service, pods)
        self._listed[key] = {e["targetRef"]["uid"] for _, endpoints in desired for e in endpoints}
        if not self._reconcile(service, desired):
            self.after(RETRY_SECONDS, key)

    def _managed(self, service: dict[str, Any]) -> list[dict[str, Any]]:
        meta = service["metadata"]
        selector = f"{SERVICE_NAME}={meta['name']},{MANAGED_BY}={CONTROLLER_NAME}"
        slices = self.store.list("endpointslices", meta["namespace"], GROUP, label_selector=selector)
        return [s for s in slices if not s["metadata"].get("deletionTimestamp")]

    def _reconcile(
        self, service: dict[str, Any], desired: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]]
    ) -> bool:
        """Create, update and delete slices until they are ``desired``; False when a write lost a race."""
        existing = self._managed(service)
        unused = list(existing)
        pairs: list[tuple[dict[str, Any] | None, list[dict[str, Any]], list[dict[str, Any]]]] = []
        waiting = []
        for ports, endpoints in desired:
            same = next((s for s in unused if (s.get("ports") or []) == ports), None)
            if same is None:
                waiting.append((ports, endpoints))
                continue
            unused.remove(same)
            pairs.append((same, ports, endpoints))
        for ports, endpoints in waiting:
            pairs.append((unused.pop(0) if unused else None, ports, endpoints))
        done = True
        for current, ports, endpoints in pairs:
            done = self._write(service, current, ports, endpoints) and done
        for leftover in unused:
            meta = leftover["metadata"]
            with contextlib.suppress(ApiError):
                self.store.delete_object(
                    "endpointslices",
                    meta["namespace"],
                    meta["name"],
                    GROUP,
                    preconditions={"uid": meta["uid"]},
                )
        return done

    def _write(
        self,
        service: dict[str, Any],
        current: dict[str, Any] | None,
        ports: list[dict[str, Any]],
        endpoints: list[dict[str, Any]],
    ) -> bool:
        meta = service["metadata"]
        content = {
            "addressType": address_type(service),
            "ports": ports,
            "endpoints": endpoints,
        }
        labels, owners = slice_labels(service), [controller_ref(service)]
        if current is None:
            body = {
                "apiVersion": f"{GROUP}/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "generateName": f"{meta['name']}-",
                    "namespace": meta["namespace"],
                    "labels": labels,
                    "ownerReferences": owners,
                },
                **content,
            }
            try:
                self.store.create(body)
            except ApiError:
                return False
            return True
        unchanged = (
            all(current.get(k) == v for k, v in content.items())
            and current["metadata"].get("labels") == labels
            and current["metadata"].get("ownerReferences") == owners
        )
        if unchanged:
            return True
        current.update(content)
        current["metadata"]["labels"] = labels
        current["metadata"]["ownerReferences"] = owners
        try:
            self.store.update(current)
        except Conflict:
            return False
        except ApiError:
            return True
        return True
