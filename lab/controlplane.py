"""The lab's control plane: the stand-in Kubernetes API server (``lab.apiserver``), the sidecar
injector (``lab.injector``) as its mutating admission hook, the kubelet (``lab.kubelet``), and the
link that makes the API the source of the lab's mesh: every change to an Istio object, a Service,
an EndpointSlice, a Namespace or the ``istio`` ConfigMap is pushed to the sidecars (after
``propagation_delay`` seconds, as istiod's debounce and push take time), the way istiod watches
the API server.

The objects a ``Lab`` starts with are created through the store, and its ``mode`` becomes the
``istio`` ConfigMap in ``istio-system`` (``outboundTrafficPolicy``), so that ``meshprobe check``
and ``kubectl`` read exactly what the sidecars were built from.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from lab.injector import make_injector
from lab.kubelet import Kubelet

ROOT_NAMESPACE = "istio-system"
MESH_GROUPS = {"networking.istio.io", "security.istio.io", "extensions.istio.io", "telemetry.istio.io"}
MESH_CORE_KINDS = {"Service", "Namespace", "EndpointSlice", "ConfigMap"}


class ControlPlane:
    """API server + injector + kubelet + mesh sync for one ``Lab`` (module docstring)."""

    def __init__(
        self,
        lab: Any,
        workdir: Path,
        *,
        istio_crds: bool = True,
        native_sidecars: bool = False,
        propagation_delay: float = 0.0,
    ) -> None:
        from lab.apiserver import ApiServer

        self.lab = lab
        self.api = ApiServer(workdir / "api", lab._ca, istio_crds=istio_crds)
        self.kubelet = Kubelet(lab, self.api.store, workdir / "kubelet")
        self.native_sidecars = native_sidecars
        self.propagation_delay = propagation_delay
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._sync_thread = threading.Thread(target=self._sync_loop, name="lab-mesh-sync", daemon=True)
        self._unsubscribe: Any = None
        self._push_lock = threading.Lock()
        self.pushes = 0

    @property
    def store(self) -> Any:
        return self.api.store

    def start(self, objects: Sequence[Mapping[str, Any]], mesh: Mapping[str, Any], mode: str | None) -> Path:
        """Start everything, load ``objects`` and the mesh config; returns the admin kubeconfig."""
        self.api.start()
        self.api.add_mutating(make_injector(self._namespace_labels, native_default=self.native_sidecars))
        self.api.set_log_source(self.kubelet.logs)
        self.api.set_port_dialer(self._dial)
        self.kubelet.log_unavailable = _log_unavailable()
        self._seed(objects, mesh, mode)
        from lab.gateway_lab import seed_api  # the egress gateway's Pod, Service, ServiceAccount

        seed_api(self.store, self.lab)
        self._unsubscribe = self.store.subscribe(self._on_event)
        self._sync_thread.start()
        self.kubelet.start()
        return self.api.kubeconfig()

    def _dial(self, namespace: str, pod: str, port: int, timeout: float) -> socket.socket:
        """``pods/portforward``: connect to ``localhost:port`` inside the pod's network namespace, as
        the kubelet's runtime does (the egress gateway's Pod, or a lab pod of that name)."""
        gateway = self.lab.gateway
        if gateway is not None and (namespace, pod) == (gateway.namespace, f"{gateway.spec.name}-lab"):
            target = gateway
        else:
            target = self.lab.pods.get((namespace, pod))
        if target is None:
            raise OSError(f'pod "{pod}" is not running on this node')
        sock: socket.socket = target.thread.socket()
        try:
            sock.settimeout(timeout)
            sock.connect(("127.0.0.1", port))
        except OSError as exc:
            sock.close()
            reason = exc.strerror.lower() if exc.strerror else str(exc)
            raise OSError(
                f"failed to connect to localhost:{port} inside the pod's network namespace: {reason}"
            ) from None
        return sock

    def close(self) -> None:
        """Stop the kubelet (its pods), the sync and the API server; never raises."""
        self._stop.set()
        self._dirty.set()
        if self._unsubscribe is not None:
            with contextlib.suppress(Exception):
                self._unsubscribe()
        with contextlib.suppress(Exception):
            self.kubelet.close()
        if self._sync_thread.is_alive():
            self._sync_thread.join(5)
        with contextlib.suppress(Exception):
            self.api.close()

    def replace_objects(self, objects: Sequence[Mapping[str, Any]]) -> float:
        """``meshprobe lab apply``: make the API's mesh objects exactly ``objects`` (create, update,
        delete) and push them to the sidecars now; returns the seconds the push took."""
        store = self.store
        wanted = {_key(o): o for o in objects if o.get("kind") != "Namespace"}
        for obj in objects:
            if obj.get("kind") == "Namespace":
                self._ensure_namespace(obj)
        keep_mesh_config = not any(_is_mesh_configmap(o) for o in objects)  # the mode set at `lab up`
        from lab.gateway_lab import lab_managed

        for obj in self.mesh_objects():
            if obj.get("kind") == "Namespace" or _key(obj) in wanted or lab_managed(obj):
                continue
            if keep_mesh_config and _is_mesh_configmap(obj):
                continue
            meta = obj.get("metadata") or {}
            store.delete(_plural(store, obj), meta.get("namespace"), str(meta.get("name")), group=_group(obj))
        for key, obj in wanted.items():
            ns = key[2]
            if ns:
                self._ensure_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
            body = _fresh(obj)
            current = store.get(_plural(store, obj), ns or None, key[3], group=_group(obj))
            if current is None:
                store.create(body)
            else:
                body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                store.update(body)
        started = time.monotonic()
        self.push()
        return time.monotonic() - started

    # ---- mesh sync -----------------------------------------------------------------------------

    def mesh_objects(self) -> list[dict[str, Any]]:
        """What istiod would read: Istio objects, Services, EndpointSlices, Namespaces, the mesh ConfigMap."""
        out = []
        for obj in self.store.objects():
            if _is_mesh_object(obj):
                out.append(obj)
        return out

    def push(self, allow_rejected: bool = False) -> None:
        """Push the API's mesh objects as they are now. Pushes are serialised and each reads the
        store only once it holds the lock, so the last push always carries the latest API state: a
        background sync that read a half-applied set can never land after a later push."""
        with self._push_lock:
            self.lab.apply(self.mesh_objects(), allow_rejected=allow_rejected)

    def _on_event(self, kind: str, obj: Mapping[str, Any]) -> None:
        if _is_mesh_object(obj):
            self._dirty.set()

    def _sync_loop(self) -> None:
        while not self._stop.is_set():
            self._dirty.wait()
            if self._stop.is_set():
                return
            time.sleep(max(self.propagation_delay, 0.01))  # coalesce a burst, like istiod's debounce
            self._dirty.clear()
            try:
                self.push(allow_rejected=True)
                self.pushes += 1
            except Exception as exc:  # keep syncing; the lab records the failure
                self.lab.push_errors.append(f"mesh sync: {exc}")

    # ---- seeding -------------------------------------------------------------------------------

    def _seed(self, objects: Sequence[Mapping[str, Any]], mesh: Mapping[str, Any], mode: str | None) -> None:
        store = self.store
        namespaces = {ROOT_NAMESPACE}
        for obj in objects:
            if obj.get("kind") == "Namespace":
                self._ensure_namespace(obj)
        for obj in objects:
            ns = (obj.get("metadata") or {}).get("namespace")
            if obj.get("kind") != "Namespace" and ns:
                namespaces.add(str(ns))
        for ns in sorted(namespaces):
            self._ensure_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        for obj in objects:
            if obj.get("kind") == "Namespace":
                continue
            body = _fresh(obj)
            body.setdefault("metadata", {}).setdefault("namespace", "default") if _namespaced(obj) else None
            store.create(body)
        if not any(_is_mesh_configmap(o) for o in objects) and (mesh or mode):
            config = dict(mesh)
            if mode:
                config["outboundTrafficPolicy"] = {"mode": mode}
            store.create({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "istio", "namespace": ROOT_NAMESPACE},
                "data": {"mesh": yaml.safe_dump(config, sort_keys=True)},
            })  # fmt: skip

    def _ensure_namespace(self, obj: Mapping[str, Any]) -> None:
        name = (obj.get("metadata") or {}).get("name")
        if self.store.get("namespaces", None, str(name)) is None:
            self.store.create(_fresh(obj))

    def _namespace_labels(self, namespace: str) -> Mapping[str, str]:
        obj = self.store.get("namespaces", None, namespace) or {}
        return dict((obj.get("metadata") or {}).get("labels") or {})


def _is_mesh_object(obj: Mapping[str, Any]) -> bool:
    group = str(obj.get("apiVersion") or "").rpartition("/")[0]
    if group in MESH_GROUPS:
        return True
    kind = obj.get("kind")
    if kind == "ConfigMap":
        return _is_mesh_configmap(obj)
    return kind in MESH_CORE_KINDS


def _is_mesh_configmap(obj: Mapping[str, Any]) -> bool:
    meta = obj.get("metadata") or {}
    name = str(meta.get("name") or "")
    return obj.get("kind") == "ConfigMap" and meta.get("namespace") == ROOT_NAMESPACE and (
        name == "istio" or name.startswith("istio-")
    )


def _key(obj: Mapping[str, Any]) -> tuple[str, str, str, str]:
    meta = obj.get("metadata") or {}
    ns = str(meta.get("namespace") or ("default" if _namespaced(obj) else ""))
    return (_group(obj), str(obj.get("kind")), ns, str(meta.get("name")))


def _group(obj: Mapping[str, Any]) -> str:
    return str(obj.get("apiVersion") or "").rpartition("/")[0]


def _plural(store: Any, obj: Mapping[str, Any]) -> str:
    rtype = store.registry.by_kind(str(obj.get("apiVersion")), str(obj.get("kind")))
    if rtype is None:
        raise ValueError(f"the lab's API does not serve {obj.get('apiVersion')} {obj.get('kind')}")
    return str(rtype.plural)


def _namespaced(obj: Mapping[str, Any]) -> bool:
    return obj.get("kind") not in ("Namespace", "ClusterRole", "ClusterRoleBinding")


def _fresh(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy without server-set fields (so a dump from a real cluster loads)."""
    import copy

    body = copy.deepcopy(dict(obj))
    meta = body.setdefault("metadata", {})
    for key in ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields", "selfLink",
                "ownerReferences"):
        meta.pop(key, None)
    body.pop("status", None)
    return body


def _log_unavailable() -> type[Exception]:
    from lab.apiserver import LogUnavailable

    return LogUnavailable
