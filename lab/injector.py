"""The lab's sidecar injector: a mutating admission hook on pod creation, as istiod's
``istio-sidecar-injector`` webhook behaves for the parts meshprobe relies on.

Whether a pod is injected (``pkg/kube/inject/inject.go`` ``injectRequired`` and the default
webhook selectors in ``manifests/charts/istio-control/istio-discovery/templates/mutatingwebhook.yaml``):

- never with ``hostNetwork``, nor in ``kube-system``/``kube-public``;
- namespace label ``istio-injection=enabled`` (or ``istio.io/rev``): injected unless the pod says
  ``sidecar.istio.io/inject: "false"``;
- namespace without those labels: injected only when the pod's ``sidecar.istio.io/inject`` label
  (or the legacy annotation) is ``"true"``; ``istio-injection=disabled`` wins over the pod;
- ambient namespaces or pods (``istio.io/dataplane-mode=ambient``) are not injected.

What is injected (``injection-template.yaml`` of the same chart): an ``istio-init`` init container,
the ``istio-proxy`` container running as the proxy uid/gid (1337) with a readiness probe on
``:15021/healthz/ready``, the ``sidecar.istio.io/status`` annotation, and the labels
``security.istio.io/tlsMode: istio`` and ``service.istio.io/canonical-name``. With native
sidecars (``sidecar.istio.io/nativeSidecar: "true"`` on the pod, or the mesh default — Istio's
``ENABLE_NATIVE_SIDECARS``, ``pkg/kube/inject/webhook.go``), ``istio-proxy`` is an init container
with ``restartPolicy: Always`` and a startup probe instead. ``holdApplicationUntilProxyStarts``
(in ``proxy.istio.io/config``) puts the proxy first, as the template does.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from lab.envoy import PROXY_GID, PROXY_UID

PROXY_IMAGE = "lab.example/istio/proxyv2:1.26.0"
PROXY_CONTAINER = "istio-proxy"
INIT_CONTAINER = "istio-init"
NEVER_INJECTED = frozenset({"kube-system", "kube-public"})
TRUTHY = frozenset({"true", "y", "yes", "on", "enabled"})

NamespaceLabels = Callable[[str], Mapping[str, str]]


def inject_required(pod: Mapping[str, Any], namespace_labels: Mapping[str, str]) -> bool:
    """Whether the default webhooks select ``pod`` and ``injectRequired`` agrees."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    if spec.get("hostNetwork") or meta.get("namespace") in NEVER_INJECTED:
        return False
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    if "ambient" in (labels.get("istio.io/dataplane-mode"), namespace_labels.get("istio.io/dataplane-mode")):
        return False
    asked = labels.get("sidecar.istio.io/inject", annotations.get("sidecar.istio.io/inject"))
    ns_injection = namespace_labels.get("istio-injection")
    if ns_injection == "disabled":
        return False
    if ns_injection == "enabled" or "istio.io/rev" in namespace_labels:
        return asked is None or str(asked).lower() in TRUTHY
    return asked is not None and str(asked).lower() in TRUTHY


def proxy_config(pod: Mapping[str, Any]) -> dict[str, Any]:
    """The pod's ``proxy.istio.io/config`` annotation as a dict (empty when absent or not a map)."""
    raw = ((pod.get("metadata") or {}).get("annotations") or {}).get("proxy.istio.io/config")
    if not raw:
        return {}
    try:
        loaded = yaml.safe_load(raw)
    except yaml.YAMLError:
        return {}
    return dict(loaded) if isinstance(loaded, Mapping) else {}


def wants_native(pod: Mapping[str, Any], native_default: bool) -> bool:
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get("sidecar.istio.io/nativeSidecar")
    return native_default if value is None else str(value).lower() == "true"


def inject(pod: Mapping[str, Any], *, native: bool, revision: str = "default") -> dict[str, Any]:
    """``pod`` with the sidecar injected (a new dict)."""
    out = copy.deepcopy(dict(pod))
    meta = out.setdefault("metadata", {})
    spec = out.setdefault("spec", {})
    labels = meta.setdefault("labels", {})
    annotations = meta.setdefault("annotations", {})
    hold = bool(proxy_config(pod).get("holdApplicationUntilProxyStarts"))
    proxy = _proxy_container(native)
    init = {
        "name": INIT_CONTAINER,
        "image": PROXY_IMAGE,
        "args": [
            "istio-iptables",
            "-p",
            "15001",
            "-z",
            "15006",
            "-u",
            str(PROXY_UID),
            "-m",
            "REDIRECT",
            "-i",
            "*",
            "-x",
            "",
            "-b",
            "*",
            "-d",
            "15090,15021,15020",
        ],
        "securityContext": {
            "runAsUser": 0,
            "runAsGroup": 0,
            "runAsNonRoot": False,
            "capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]},
        },
    }
    inits = list(spec.get("initContainers") or [])
    containers = list(spec.get("containers") or [])
    if native:
        spec["initContainers"] = [init, proxy, *inits]
    else:
        spec["initContainers"] = [init, *inits]
        spec["containers"] = [proxy, *containers] if hold else [*containers, proxy]
    labels.setdefault("security.istio.io/tlsMode", "istio")
    labels.setdefault("service.istio.io/canonical-name", labels.get("app") or meta.get("name") or "")
    labels.setdefault("service.istio.io/canonical-revision", labels.get("version") or "latest")
    annotations["sidecar.istio.io/status"] = json.dumps(
        {
            "initContainers": [INIT_CONTAINER] + ([PROXY_CONTAINER] if native else []),
            "containers": [] if native else [PROXY_CONTAINER],
            "volumes": ["istio-envoy", "istio-data", "istio-podinfo", "istio-token", "istiod-ca-cert"],
            "imagePullSecrets": None,
            "revision": revision,
        }
    )
    return out


def _proxy_container(native: bool) -> dict[str, Any]:
    probe = {
        "httpGet": {"path": "/healthz/ready", "port": 15021},
        "periodSeconds": 1,
        "failureThreshold": 600,
    }
    container: dict[str, Any] = {
        "name": PROXY_CONTAINER,
        "image": PROXY_IMAGE,
        "args": ["proxy", "sidecar"],
        "ports": [{"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}],
        "securityContext": {
            "runAsUser": PROXY_UID,
            "runAsGroup": PROXY_GID,
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    if native:
        container["restartPolicy"] = "Always"
        container["startupProbe"] = probe
    else:
        container["readinessProbe"] = probe
    return container


def make_injector(namespace_labels: NamespaceLabels, *, native_default: bool = False) -> Callable[[Any], Any]:
    """A mutating hook for ``lab.apiserver.ApiServer.add_mutating``: injects pods on CREATE."""

    def hook(request: Any) -> dict[str, Any] | None:
        if request.resource != "pods" or request.operation != "CREATE" or request.subresource:
            return None
        pod = request.obj
        namespace = request.namespace or (pod.get("metadata") or {}).get("namespace") or "default"
        if not inject_required(pod, namespace_labels(namespace)):
            return None
        return inject(pod, native=wants_native(pod, native_default))

    return hook


def sidecar_container(pod: Mapping[str, Any]) -> tuple[dict[str, Any] | None, bool]:
    """The pod's ``istio-proxy`` container and whether it is native (an init container with
    ``restartPolicy: Always``); ``(None, False)`` for a pod without a sidecar."""
    spec = pod.get("spec") or {}
    for container in spec.get("initContainers") or []:
        if container.get("name") == PROXY_CONTAINER and container.get("restartPolicy") == "Always":
            return dict(container), True
    for container in spec.get("containers") or []:
        if container.get("name") == PROXY_CONTAINER:
            return dict(container), False
    return None, False
