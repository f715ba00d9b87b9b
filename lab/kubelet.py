"""The lab's kubelet (and scheduler): runs the pods created through the stand-in API server as lab
pods, and reports their status back through the store, as a node's kubelet does.

For each pod (one worker thread each, ``lab.podworker.PodWorker``):

1. **Schedule**: bind it to the one node (``spec.nodeName``) unless its ``nodeSelector`` does not
   match the node's labels (or ``faults.unschedulable``): then ``PodScheduled=False``,
   ``Unschedulable``, and the pod stays Pending, as kube-scheduler leaves it.
2. **Pull**: every image must resolve (``lab.images``); otherwise ``ErrImagePull`` then
   ``ImagePullBackOff`` and the pod stays Pending.
3. **Sandbox**: a lab pod (netns, capture rules, Envoy, agent) built from the pod as injected —
   the ``istio-proxy`` container's uid/gid, the pod's labels and annotations
   (``proxy.istio.io/config``, ``traffic.sidecar.istio.io/*``), config generated from what is
   visible to the namespace right now. A pod without ``istio-proxy`` gets no sidecar.
4. **Containers** run as host processes in the pod's netns as the container's uid/gid
   (``securityContext``, container over pod over image), stdout and stderr into the container log.
   A native sidecar (init container with ``restartPolicy: Always``) starts first and the app
   waits for its startup probe (``/healthz/ready``), as does an app behind
   ``holdApplicationUntilProxyStarts``; a native sidecar that exits while the app runs is
   restarted; after the app containers exit, native sidecars are stopped. A regular sidecar keeps
   the pod Running until it exits (``quitquitquit``).
5. **Status**: Pending → Running → Succeeded/Failed, container states, restart counts, podIP,
   conditions (``Ready`` needs every ``readinessGates`` condition True, so a gate nobody sets keeps
   a pod out of Ready), ``activeDeadlineSeconds`` (``DeadlineExceeded``), ephemeral containers
   (run in the pod's netns, never restarted).
6. **Deletion**: a pod with ``deletionTimestamp`` is killed, its lab pod torn down, and the
   object removed from the store.

Kubernetes sources: ``pkg/kubelet/kubelet.go`` (syncPod), ``pkg/kubelet/kuberuntime``
(container start order, sidecar restart), ``pkg/kubelet/status/generate.go`` (conditions),
``pkg/kubelet/active_deadline.go``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.podworker import PodWorker

NODE_NAME = "lab-node"
NODE_LABELS = {
    "kubernetes.io/hostname": NODE_NAME,
    "kubernetes.io/os": "linux",
    "kubernetes.io/arch": "amd64",
}


@dataclass
class KubeletFaults:
    """Knobs tests turn to make the node misbehave the way real nodes do."""

    unschedulable: bool = False  # no node fits: pods stay Pending, PodScheduled=False
    proxy_never_starts: bool = False  # istio-proxy never becomes ready (captured traffic refused)
    start_delay: float = 0.0  # seconds before a scheduled pod's sandbox is created


class LogUnavailableError(Exception):
    """The container has no log yet (message as the real API server words it)."""


class Kubelet:
    """Runs pods of ``store`` as lab pods of ``lab`` (see the module docstring)."""

    def __init__(
        self, lab: Any, store: Any, workdir: Path, *, log_unavailable: type[Exception] | None = None
    ) -> None:
        self.lab = lab
        self.store = store
        self.workdir = workdir
        self.faults = KubeletFaults()
        self.node_name = NODE_NAME
        self.node_labels = dict(NODE_LABELS)
        self.log_unavailable = log_unavailable or LogUnavailableError
        self.api: Any = None  # the ApiServer, for ServiceAccount tokens (lab.kubeapi)
        self._workers: dict[tuple[str, str], PodWorker] = {}
        self._done: set[str] = set()  # uids whose worker has finished (a terminal pod is not run again)
        self._lock = threading.Lock()
        self._unsubscribe: Callable[[], None] | None = None
        self._closed = False

    def start(self) -> Kubelet:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._unsubscribe = self.store.subscribe(self._on_event)
        for pod in self.store.list("pods"):
            self._on_event("ADDED", pod)
        return self

    def close(self) -> None:
        """Stop every pod worker (killing containers, removing lab pods); never raises."""
        self._closed = True
        if self._unsubscribe is not None:
            with contextlib.suppress(Exception):
                self._unsubscribe()
        with self._lock:
            workers = list(self._workers.values())
            self._workers.clear()
        for worker in workers:
            worker.stop(remove=False)
        for worker in workers:
            worker.join(10)

    # ---- events --------------------------------------------------------------------------------

    def _on_event(self, kind: str, obj: Mapping[str, Any]) -> None:
        if obj.get("kind") != "Pod" or self._closed:
            return
        meta = obj.get("metadata") or {}
        if (meta.get("labels") or {}).get("lab.meshprobe.io/managed-by") == "lab":
            return  # the lab runs it itself (the egress gateway, lab.gateway_lab)
        key = (str(meta.get("namespace")), str(meta.get("name")))
        with self._lock:
            worker = self._workers.get(key)
            if worker is not None and worker.uid != meta.get("uid"):
                worker = None  # a new pod with an old name: the old worker is already finishing
            if kind == "DELETED":
                if worker is not None:
                    worker.stop(remove=False)
                return
            if worker is None:
                if meta.get("uid") in self._done and not meta.get("deletionTimestamp"):
                    return
                if meta.get("deletionTimestamp"):
                    self.store.remove("pods", key[0], key[1])
                    return
                worker = PodWorker(self, obj)
                self._workers[key] = worker
                worker.start()
                return
        worker.update(obj)

    def forget(self, worker: PodWorker) -> None:
        with self._lock:
            self._done.add(worker.uid)
            if self._workers.get(worker.key) is worker:
                del self._workers[worker.key]

    # ---- logs ----------------------------------------------------------------------------------

    def logs(
        self, namespace: str, pod: str, container: str, *, follow: bool = False, tail_lines: int | None = None
    ) -> Iterator[bytes]:
        """The container's log (for ``ApiServer.set_log_source``)."""
        with self._lock:
            worker = self._workers.get((namespace, pod))
        path = worker.log_path(container) if worker is not None else self._old_log(namespace, pod, container)
        if path is None or not path.exists():
            raise self.log_unavailable(
                f'container "{container}" in pod "{pod}" is waiting to start: ContainerCreating'
            )
        return _read_log(
            path, follow=follow, tail_lines=tail_lines, running=lambda: _running(worker, container)
        )

    def _old_log(self, namespace: str, pod: str, container: str) -> Path | None:
        matches = sorted(self.workdir.glob(f"{namespace}_{pod}_*/{container}.log"))
        return matches[-1] if matches else None


def _running(worker: PodWorker | None, container: str) -> bool:
    return worker is not None and worker.container_running(container)


def _read_log(
    path: Path, *, follow: bool, tail_lines: int | None, running: Callable[[], bool]
) -> Iterator[bytes]:
    import time

    with path.open("rb") as handle:
        data = handle.read()
        if tail_lines is not None:
            lines = data.splitlines(keepends=True)
            data = b"".join(lines[-tail_lines:]) if tail_lines > 0 else b""
        if data:
            yield data
        while follow:
            chunk = handle.read()
            if chunk:
                yield chunk
                continue
            if not running():
                rest = handle.read()
                if rest:
                    yield rest
                return
            time.sleep(0.05)
