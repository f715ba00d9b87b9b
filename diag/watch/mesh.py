"""The live mesh, kept current by API watches rather than polling (docs/watch.md, How it reads
the mesh).

``MeshWatch.start()`` reads the mesh once (``diag.live.meshread.read_mesh``, as check does) and starts
one watch per kind that changes what a sidecar does with egress: Istio's kinds, Namespaces, the
mesh config ConfigMap (``istio`` in istio-system) and the targets ConfigMap, if any (each watched
by name: ``fieldSelector=metadata.name=``, which RBAC can grant with ``resourceNames``).
Services and EndpointSlices are read with the mesh but not watched (EndpointSlices change with
every pod; a Service change shows at the next change of the kinds watched).
Any event marks the mesh stale; ``current()`` re-reads it at most once per batch of events. A
watch that ends is resumed from its last resourceVersion; one that expired (410) lists again.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence

from diag import errors
from diag.cluster import Cluster, WatchExpired, resource_path
from diag.live.meshread import ISTIO_KINDS, ROOT_NAMESPACE, LiveMesh, pick_version, read_mesh, served_versions

log = logging.getLogger("meshprobe.watch")
WATCH_SECONDS = 300  # each watch request's timeoutSeconds; it is resumed at once


class MeshWatch:
    """The mesh as seen from ``namespace``; ``current()`` is always up to date with the watches."""

    def __init__(
        self, cluster: Cluster, namespace: str, *, revision: str | None = None, configmaps: Sequence[str] = ()
    ) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.revision = revision
        self.configmaps = tuple(configmaps)  # in ``namespace``: the targets ConfigMap
        self.generation = 0  # bumped on every event
        self.reads = 0
        self._read_generation = -1
        self._mesh: LiveMesh | None = None
        self._lock = threading.Lock()
        self._changed = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.watching: list[str] = []
        self.warnings: dict[str, str] = {}  # what → why its watch last failed (cleared when it works)

    def start(self) -> None:
        """Read the mesh, then watch every relevant kind (one daemon thread each)."""
        self.current()
        for path, what, selector in self._watched():
            thread = threading.Thread(
                target=self._watch, args=(path, what, selector), name=f"watch {what}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
            self.watching.append(what)

    def stop(self) -> None:
        self._stop.set()

    def current(self) -> LiveMesh:
        """The mesh, re-read when a watch has seen a change since the last read."""
        with self._lock:
            generation = self.generation
            if self._mesh is None or generation != self._read_generation:
                self._mesh = read_mesh(self.cluster, [self.namespace], revision=self.revision)
                self._read_generation = generation
                self.reads += 1
            return self._mesh

    def wait_changed(self, timeout: float) -> bool:
        """Block until a watch event arrives or ``timeout`` passes; True on a change."""
        changed = self._changed.wait(timeout)
        self._changed.clear()
        return changed

    def _watched(self) -> list[tuple[str, str, dict[str, str]]]:
        """(path, what, query) per watch."""
        paths: list[tuple[str, str, dict[str, str]]] = []
        for group in sorted({g for g, _, _ in ISTIO_KINDS}):
            served = served_versions(self.cluster, group)
            for g, resource, _ in ISTIO_KINDS:
                version = pick_version(resource, served) if g == group else None
                if version is not None:
                    paths.append((resource_path(group, version, resource), resource, {}))
        paths.append(("/api/v1/namespaces", "namespaces", {}))
        mesh = f"istio-{self.revision}" if self.revision and self.revision != "default" else "istio"
        named = [(ROOT_NAMESPACE, mesh), *((self.namespace, name) for name in self.configmaps)]
        for ns, name in named:
            selector = {"fieldSelector": f"metadata.name={name}"}
            paths.append((resource_path("", "v1", "configmaps", ns), f"configmap {ns}/{name}", selector))
        return paths

    def _watch(self, path: str, what: str, selector: dict[str, str]) -> None:
        """List (for a resourceVersion), then watch; resume on end, re-list on 410, back off on errors."""
        version: str | None = None
        backoff = 1.0
        while not self._stop.is_set():
            try:
                if version is None:
                    listed = self.cluster.request("GET", path, query=selector, what=f"list {what}")
                    version = str((listed.get("metadata") or {}).get("resourceVersion") or "")
                version = self._follow(path, what, version, selector)
                backoff = 1.0
                self.warnings.pop(what, None)
            except WatchExpired:
                version = None
                self._mark()  # events may have been missed
            except errors.MeshprobeError as exc:
                if self._stop.is_set():
                    break
                self.warnings[what] = exc.message
                log.warning("watch %s: %s (retrying in %.0f s)", what, exc.message, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 60.0)
                version = None

    def _follow(self, path: str, what: str, version: str, selector: dict[str, str]) -> str:
        query = {**selector, "watch": "true", "timeoutSeconds": str(WATCH_SECONDS)}
        query["allowWatchBookmarks"] = "true"
        if version:
            query["resourceVersion"] = version
        for line in self.cluster.stream(path, query=query, what=f"watch {what}", timeout=WATCH_SECONDS + 10):
            if self._stop.is_set():
                break
            try:
                event = json.loads(line)
            except ValueError:
                continue
            obj = event.get("object") or {}
            if event.get("type") == "ERROR":
                if obj.get("code") == 410:
                    raise WatchExpired(str(obj.get("message")))
                break
            version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
            if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                self._mark()
        return version

    def _mark(self) -> None:
        with self._lock:
            self.generation += 1
        self._changed.set()


def configmap_targets(cluster: Cluster, namespace: str, name: str, key: str = "targets") -> list[str]:
    """Targets from a ConfigMap's ``key``: one per line; blank lines and ``#`` comments skipped."""
    cm = cluster.get(resource_path("", "v1", "configmaps", namespace, name), what=f"get configmap {name}")
    text = str((cm.get("data") or {}).get(key) or "")
    return _lines(text.splitlines())


def _lines(lines: Sequence[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        item = line.split("#", 1)[0].strip()
        if item and item not in out:
            out.append(item)
    return out

