"""The object store: every object once (at its type's preferred version), one resourceVersion
counter, a bounded change history for watch resumption, and the write rules of the real registry.

Write rules modelled (staging/src/k8s.io/apiserver/pkg/registry/generic/registry/store.go):
optimistic concurrency on ``metadata.resourceVersion`` (409 Conflict); what mutating admission
returns is defaulted again (the API server decodes a webhook's patched object, defaults included);
a no-op update keeps the resourceVersion and emits nothing; ``generation`` moves when ``spec``
does; deleting an object with finalizers, or a scheduled non-terminal pod
(pkg/registry/core/pod/strategy.go ``CheckGracefulDeleteWithOptions``), only marks it
(``deletionTimestamp``); Orphan and Foreground propagation add the ``orphan`` /
``foregroundDeletion`` finalizer for the garbage collector.
"""

from __future__ import annotations

import builtins
import copy
import threading
from collections.abc import Callable, Mapping
from typing import Any

from lab.apiserver import objects
from lab.apiserver.admission import AdmissionChain, AdmissionRequest
from lab.apiserver.changelog import ChangeLog
from lab.apiserver.defaults import now_rfc3339
from lab.apiserver.errors import AlreadyExists, BadRequest, Conflict, Forbidden, NotFound
from lab.apiserver.patch import merge_patch
from lab.apiserver.resources import Registry, ResourceType
from lab.apiserver.selectors import label_matcher
from lab.apiserver.watchers import Subscriber, Watcher

Key = tuple[str, str, str, str]  # group, plural, namespace ("" when cluster-scoped), name
IN_PROCESS = ("system:apiserver", ("system:masters", "system:authenticated"))
Matcher = Callable[[Mapping[str, Any]], bool]


class Store:
    """Thread-safe object store; see the package docstring for the public methods."""

    def __init__(
        self, registry: Registry, admission: AdmissionChain | None = None, history: int = 10000
    ) -> None:
        self.registry = registry
        self.admission = admission or AdmissionChain()
        self._lock = threading.RLock()
        self._objects: dict[Key, dict[str, Any]] = {}
        self._log = ChangeLog(history)
        self.dispatcher = self._log.dispatcher
        self.created_hooks: list[Callable[[dict[str, Any]], None]] = []

    # ---- reads -------------------------------------------------------------------------------

    def rtype(self, resource: str, group: str = "") -> ResourceType:
        rtype = self.registry.by_plural(group, resource)
        if rtype is None:
            raise NotFound(resource, resource, group)
        return rtype

    def get(self, resource: str, namespace: str | None, name: str, group: str = "") -> dict[str, Any] | None:
        with self._lock:
            found = self._objects.get((group, resource, namespace or "", name))
            return copy.deepcopy(found) if found is not None else None

    def list(
        self, resource: str, namespace: str | None = None, group: str = "", label_selector: str | None = None
    ) -> builtins.list[dict[str, Any]]:
        return self.list_with_rv(resource, namespace, group, label_matcher(label_selector))[0]

    def list_with_rv(
        self, resource: str, namespace: str | None, group: str, matches: Matcher
    ) -> tuple[builtins.list[dict[str, Any]], str]:
        with self._lock:
            items = [
                copy.deepcopy(obj)
                for (g, r, ns, _), obj in self._objects.items()
                if g == group and r == resource and (namespace is None or ns == namespace) and matches(obj)
            ]
            rv = str(self._log.rv)
        items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        return items, rv

    def objects(self, groups: set[str] | None = None) -> builtins.list[dict[str, Any]]:
        with self._lock:
            return [
                copy.deepcopy(o)
                for (g, *_), o in sorted(self._objects.items())
                if groups is None or g in groups
            ]

    @property
    def resource_version(self) -> str:
        with self._lock:
            return str(self._log.rv)

    # ---- writes ------------------------------------------------------------------------------

    def create(
        self,
        obj: dict[str, Any],
        *,
        admission: bool = False,
        dry_run: bool = False,
        user: tuple[str, tuple[str, ...]] = IN_PROCESS,
    ) -> dict[str, Any]:
        rtype = self._type_of(obj)
        new = objects.prepare_create(rtype, copy.deepcopy(obj))
        meta = new["metadata"]
        namespace = meta.get("namespace", "")
        if rtype.namespaced:
            self._require_namespace(rtype, namespace, meta["name"])
        if admission:
            new = self._admit("CREATE", rtype, "", (namespace, meta["name"]), new, None, user, dry_run)
            objects.redefault(rtype, new)
        objects.validate(rtype, new, None)
        key = (rtype.group, rtype.plural, namespace, meta["name"])
        with self._lock:
            if key in self._objects:
                raise AlreadyExists(rtype.plural, meta["name"], rtype.group)
            if dry_run:
                return copy.deepcopy(new)
            self._commit("ADDED", rtype, key, new, None)
            created = copy.deepcopy(new)
        for hook in list(self.created_hooks):
            hook(copy.deepcopy(created))
        return created

    def update(
        self,
        obj: dict[str, Any],
        *,
        admission: bool = False,
        dry_run: bool = False,
        subresource: str = "",
        user: tuple[str, tuple[str, ...]] = IN_PROCESS,
    ) -> dict[str, Any]:
        rtype = self._type_of(obj)
        meta = obj.get("metadata") or {}
        key = (
            rtype.group,
            rtype.plural,
            meta.get("namespace", "") if rtype.namespaced else "",
            str(meta.get("name", "")),
        )
        asked_rv = meta.get("resourceVersion")
        while True:
            current = self._current(rtype, key)
            if asked_rv and asked_rv != current["metadata"]["resourceVersion"]:
                raise Conflict(rtype.plural, key[3], rtype.group)
            new = objects.prepare_update(rtype, copy.deepcopy(obj), current, subresource)
            if admission:
                new = self._admit("UPDATE", rtype, subresource, key[2:], new, current, user, dry_run)
                objects.redefault(rtype, new)
            objects.validate(rtype, new, current, subresource)
            with self._lock:
                now = self._objects.get(key)
                if now is None:
                    raise NotFound(rtype.plural, key[3], rtype.group)
                if now["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"]:
                    if asked_rv:
                        raise Conflict(rtype.plural, key[3], rtype.group)
                    continue
                new["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                if new == current or dry_run:
                    return copy.deepcopy(new)
                if objects.ready_to_remove(new):
                    self._commit("DELETED", rtype, key, new, current)
                else:
                    self._commit("MODIFIED", rtype, key, new, current)
                return copy.deepcopy(new)

    def patch_status(
        self, resource: str, namespace: str | None, name: str, status: dict[str, Any], group: str = ""
    ) -> dict[str, Any]:
        rtype = self.rtype(resource, group)
        key = (group, resource, namespace or "", name)
        with self._lock:
            current = self._current(rtype, key)
            new = copy.deepcopy(current)
            new["status"] = merge_patch(current.get("status") or {}, status)
            if new != current:
                self._commit("MODIFIED", rtype, key, new, current)
            return copy.deepcopy(new)

    def delete(
        self,
        resource: str,
        namespace: str | None,
        name: str,
        group: str = "",
        propagation: str = "Background",
    ) -> None:
        self.delete_object(resource, namespace, name, group, propagation=propagation)

    def delete_object(
        self,
        resource: str,
        namespace: str | None,
        name: str,
        group: str = "",
        *,
        propagation: str = "Background",
        grace_period: int | None = None,
        dry_run: bool = False,
        preconditions: Mapping[str, str] | None = None,
        admission: bool = False,
        user: tuple[str, tuple[str, ...]] = IN_PROCESS,
    ) -> tuple[dict[str, Any], bool]:
        """Delete (or mark for deletion); returns the object and whether it is gone now."""
        if propagation not in ("Background", "Foreground", "Orphan"):
            raise BadRequest(
                f'propagationPolicy: Unsupported value: "{propagation}": supported values: '
                '"Foreground", "Background", "Orphan"'
            )
        rtype = self.rtype(resource, group)
        key = (group, resource, (namespace or "") if rtype.namespaced else "", name)
        current = self._current(rtype, key)
        for field, want in (preconditions or {}).items():
            have = current["metadata"].get(field)
            if want and want != have:
                label = "UID" if field == "uid" else "ResourceVersion"
                raise Conflict(
                    resource,
                    name,
                    group,
                    f"Precondition failed: {label} in precondition: {want}, {label} in object meta: {have}",
                )
        if admission:
            self._admit("DELETE", rtype, "", (key[2], name), current, current, user, dry_run)
        with self._lock:
            current = self._current(rtype, key)
            new = objects.mark_deleted(rtype, copy.deepcopy(current), propagation, grace_period, now_rfc3339)
            if dry_run:
                return (new if new is not None else current), new is None
            if new is None:
                self._commit("DELETED", rtype, key, current, current)
                return copy.deepcopy(current), True
            if new != current:
                self._commit("MODIFIED", rtype, key, new, current)
            return copy.deepcopy(new), False

    def remove(self, resource: str, namespace: str | None, name: str, group: str = "") -> None:
        """Final removal, whatever the graceful state (e.g. the kubelet finished a pod's deletion)."""
        rtype = self.rtype(resource, group)
        key = (group, resource, namespace or "", name)
        with self._lock:
            current = self._objects.get(key)
            if current is not None:
                self._commit("DELETED", rtype, key, current, current)

    # ---- watch and subscribe -----------------------------------------------------------------

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        return self.dispatcher.subscribe(fn)

    def watch(
        self,
        rtype: ResourceType,
        namespace: str | None,
        resource_version: str | None,
        matches: Matcher,
        initial_bookmark: bool = False,
    ) -> Watcher:
        """A watcher preloaded with what the client missed (or ADDED for everything, no RV / "0")."""
        watcher = Watcher(rtype.group, rtype.plural, namespace, matches)
        with self._lock:
            if resource_version and resource_version != "0" and not initial_bookmark:
                self._log.replay(watcher, resource_version)
            else:
                items, rv = self.list_with_rv(rtype.plural, namespace, rtype.group, matches)
                for item in items:
                    watcher.queue.put(("ADDED", item))
                if initial_bookmark:
                    watcher.queue.put(("BOOKMARK", objects.bookmark(rtype, rv, initial_end=True)))
            self._log.watchers.add(watcher)
        return watcher

    def stop_watch(self, watcher: Watcher) -> None:
        with self._lock:
            self._log.watchers.discard(watcher)
        watcher.close()

    def drop_watches(self) -> int:
        """Close every open watch stream; returns how many there were."""
        with self._lock:
            return self._log.drop_watches()

    def compact(self) -> str:
        """Forget the change history (as etcd compaction does): older resourceVersions now get 410."""
        with self._lock:
            return self._log.compact()

    def close(self) -> None:
        self.drop_watches()
        self.dispatcher.close()

    # ---- internals ---------------------------------------------------------------------------

    def _admit(
        self,
        operation: str,
        rtype: ResourceType,
        subresource: str,
        where: tuple[str, str],
        obj: dict[str, Any],
        old: dict[str, Any] | None,
        user: tuple[str, tuple[str, ...]],
        dry_run: bool,
    ) -> dict[str, Any]:
        """Run the admission chain (outside the lock: hooks may read the store)."""
        request = AdmissionRequest(
            operation,
            rtype.plural,
            rtype.group,
            subresource,
            where[0],
            where[1],
            obj,
            old,
            user[0],
            user[1],
            rtype.kind,
            dry_run,
        )
        return self.admission.admit(request)

    def _type_of(self, obj: Mapping[str, Any]) -> ResourceType:
        api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
        rtype = self.registry.by_kind(api_version, kind)
        if rtype is None or not rtype.stored:
            raise BadRequest(f'no kind "{kind}" is registered for version "{api_version}"')
        return rtype

    def _current(self, rtype: ResourceType, key: Key) -> dict[str, Any]:
        with self._lock:
            found = self._objects.get(key)
            if found is None:
                raise NotFound(rtype.plural, key[3], rtype.group)
            return copy.deepcopy(found)

    def _require_namespace(self, rtype: ResourceType, namespace: str, name: str) -> None:
        if not namespace:
            raise BadRequest(f'{rtype.kind} "{name}": metadata.namespace is required for a namespaced kind')
        ns = self.get("namespaces", None, namespace)
        if ns is None:
            raise NotFound("namespaces", namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise Forbidden(
                rtype.plural,
                name,
                rtype.group,
                f"unable to create new content in namespace {namespace} because it is being terminated",
            )

    def _commit(
        self, kind: str, rtype: ResourceType, key: Key, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        """Under the lock: store (or drop) the object and record the change."""
        self._log.record(kind, rtype, key[2], obj, old)
        if kind == "DELETED":
            self._objects.pop(key, None)
        else:
            self._objects[key] = obj
