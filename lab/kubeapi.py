"""The lab's API server as pods reach it, the way a real cluster wires it:

- **A listener inside the lab's network**: the API also serves on ``RunNames.api_address``:6443
  in the internet netns (every pod's default route leads there), with a certificate whose SAN is
  the ``kubernetes`` Service's ClusterIP, as kube-apiserver's serving certificate carries the
  first IP of the service range.
- **The ``default/kubernetes`` Service** (ClusterIP ``10.96.0.1``, port ``https`` 443 → 6443)
  and its EndpointSlice and Endpoints naming that listener, as kube-apiserver's endpoint
  reconciler writes them (``pkg/controlplane/reconcilers``). The lab has no kube-proxy: a pod
  with a sidecar reaches the ClusterIP through Envoy, which knows the Service from the registry
  like any other (``outbound|443||kubernetes.default.svc.cluster.local``, TLS passed through on
  a port named ``https``), so the API stays reachable under ``REGISTRY_ONLY`` as it does in a
  real mesh. A pod without a sidecar (or with the ClusterIP excluded from capture) cannot reach
  it here.
- **What the kubelet gives every container** (``container_api_env``, ``service_account_volume``):
  ``KUBERNETES_SERVICE_HOST``/``_PORT`` (always, as ``pkg/kubelet/kubelet_pods.go`` does for the
  master service, whatever ``enableServiceLinks`` says), and unless ``automountServiceAccountToken``
  is false, the ServiceAccount's token, the cluster CA and the namespace under
  ``/var/run/secrets/kubernetes.io/serviceaccount`` — so ``load_incluster_config`` works in a lab
  pod. The token authenticates as ``system:serviceaccount:NS:NAME`` (groups
  ``system:serviceaccounts`` and ``system:serviceaccounts:NS``); RBAC decides the rest.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lab.netns import ip_batch

KUBERNETES_SERVICE_IP = "10.96.0.1"
HTTPS_PORT = 443
SECURE_PORT = 6443
SA_MOUNT = Path("secrets/kubernetes.io/serviceaccount")  # under /run (= /var/run)


def serve_to_pods(lab: Any) -> str:
    """Serve the lab's API (``Lab(api=True)``) at the lab's API address too, create the
    ``kubernetes`` Service (pushed to the sidecars like any Service) and let the kubelet mount
    ServiceAccount tokens from now on; returns the address."""
    api = lab.control_plane.api
    lab.control_plane.kubelet.api = api
    names = lab.names
    address = str(names.api_address)
    ip_batch([f"addr add {address}/32 dev lo"], names.internet_netns)
    thread = lab._internet.thread

    def make_socket() -> socket.socket:
        sock: socket.socket = thread.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, SECURE_PORT))
        return sock

    api.serve_also(make_socket, lab._ca.context_for(KUBERNETES_SERVICE_IP))
    for obj in kubernetes_service(address):
        api.store.create(obj)
    return address


def kubernetes_service(address: str) -> list[dict[str, Any]]:
    """``default/kubernetes``: the Service, its EndpointSlice and its Endpoints."""
    meta = {"name": "kubernetes", "namespace": "default"}
    port = {"name": "https", "port": SECURE_PORT, "protocol": "TCP"}
    return [
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {**meta, "labels": {"component": "apiserver", "provider": "kubernetes"}},
         "spec": {"type": "ClusterIP", "clusterIP": KUBERNETES_SERVICE_IP, "sessionAffinity": "None",
                  "ports": [{"name": "https", "port": HTTPS_PORT, "protocol": "TCP",
                             "targetPort": SECURE_PORT}]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {**meta, "labels": {"kubernetes.io/service-name": "kubernetes"}},
         "addressType": "IPv4",
         "endpoints": [{"addresses": [address], "conditions": {"ready": True}}], "ports": [port]},
        {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta,
         "subsets": [{"addresses": [{"ip": address}], "ports": [port]}]},
    ]  # fmt: skip


def container_api_env(store: Any) -> dict[str, str]:
    """The master service's variables, when the ``kubernetes`` Service exists."""
    service = store.get("services", "default", "kubernetes")
    if service is None:
        return {}
    spec = service.get("spec") or {}
    host, port = str(spec.get("clusterIP")), int((spec.get("ports") or [{}])[0].get("port", HTTPS_PORT))
    return {
        "KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": str(port),
        "KUBERNETES_SERVICE_PORT_HTTPS": str(port), "KUBERNETES_PORT": f"tcp://{host}:{port}",
        "KUBERNETES_PORT_443_TCP": f"tcp://{host}:{port}", "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
        "KUBERNETES_PORT_443_TCP_PORT": str(port), "KUBERNETES_PORT_443_TCP_ADDR": host,
    }  # fmt: skip


def service_account_volume(api: Any, pod: Mapping[str, Any], run_dir: Path) -> Path | None:
    """Write the pod's ServiceAccount volume under ``run_dir`` (mounted over the container's
    ``/run``) and return ``run_dir``; ``None`` when no token is mounted (automount off, or no
    ServiceAccount object, where a real pod would not even be admitted)."""
    spec = pod.get("spec") or {}
    namespace = str((pod.get("metadata") or {}).get("namespace") or "default")
    name = str(spec.get("serviceAccountName") or "default")
    account = api.store.get("serviceaccounts", namespace, name)
    if account is None:
        return None
    automount = spec.get("automountServiceAccountToken")
    if automount is None:
        automount = account.get("automountServiceAccountToken")
    if automount is False:
        return None
    user = f"system:serviceaccount:{namespace}:{name}"
    try:
        token = api.token_of(user)
    except KeyError:
        token = api.add_user(user, groups=["system:serviceaccounts", f"system:serviceaccounts:{namespace}"])
    folder = run_dir / SA_MOUNT
    folder.mkdir(parents=True, exist_ok=True)
    files = {"token": token, "namespace": namespace, "ca.crt": Path(api.ca.ca_file).read_text()}
    for fname, text in files.items():
        (folder / fname).write_text(text)
        (folder / fname).chmod(0o644)
    for part in [run_dir, *folder.relative_to(run_dir).parents, SA_MOUNT]:
        (run_dir / part).chmod(0o755)
    return run_dir
