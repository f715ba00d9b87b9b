"""The garbage collector: ownerReferences by uid (pkg/controller/garbagecollector).

- An object whose every owner is gone is deleted (Background); a reference to an owner that is gone
  is dropped from a dependent that still has another owner.
- An owner deleted with ``propagationPolicy: Orphan`` carries the ``orphan`` finalizer: its
  dependents lose their reference to it, then the finalizer goes and the owner with it.
- An owner deleted with ``Foreground`` carries ``foregroundDeletion``: its dependents are deleted
  first; when none is left, the finalizer goes and the owner with it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from lab.apiserver.controllers.base import Worker
from lab.apiserver.errors import ApiError

RECHECK_SECONDS = 0.2


def _where(obj: dict[str, Any]) -> tuple[str, str | None, str, str]:
    """(plural-less) address: apiVersion group, namespace, name, kind."""
    meta = obj["metadata"]
    return str(obj["apiVersion"]).rpartition("/")[0], meta.get("namespace"), meta["name"], obj["kind"]


class GarbageCollector(Worker):
    name = "garbage-collector"

    def wants(self, obj: dict[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        return bool(meta.get("ownerReferences") or meta.get("finalizers") or meta.get("uid"))

    def _plural(self, obj: dict[str, Any]) -> str | None:
        rtype = self.store.registry.by_kind(str(obj.get("apiVersion")), str(obj.get("kind")))
        return rtype.plural if rtype is not None else None

    def _dependents(self, uid: str) -> Iterator[dict[str, Any]]:
        for obj in self.store.objects():
            if any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or []):
                yield obj

    def handle(self, event_type: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        if event_type == "DELETED":
            self._owner_gone(meta["uid"])
            for ref in meta.get("ownerReferences") or []:
                self._recheck_owner(str(ref.get("uid")))
            return
        if meta.get("deletionTimestamp"):
            finalizers = meta.get("finalizers") or []
            if "orphan" in finalizers:
                self._orphan(obj)
            if "foregroundDeletion" in finalizers:
                self._foreground(obj)
        if event_type in ("ADDED", "SYNC") and meta.get("ownerReferences"):
            uids = {o["metadata"]["uid"] for o in self.store.objects()}
            if not any(ref.get("uid") in uids for ref in meta["ownerReferences"]):
                self._delete(obj)

    def fire(self, key: Any) -> None:
        self._recheck_owner(str(key))

    def _owner_gone(self, uid: str) -> None:
        live = {o["metadata"]["uid"] for o in self.store.objects()}
        for dependent in self._dependents(uid):
            refs = dependent["metadata"]["ownerReferences"]
            if any(ref.get("uid") in live for ref in refs):
                self._strip(dependent, uid)
            else:
                self._delete(dependent)

    def _orphan(self, owner: dict[str, Any]) -> None:
        uid = owner["metadata"]["uid"]
        for dependent in self._dependents(uid):
            self._strip(dependent, uid)
        self._drop_finalizer(owner, "orphan")

    def _foreground(self, owner: dict[str, Any]) -> None:
        """Dependents with another owner that stays lose the reference; the others are deleted."""
        uid, left = owner["metadata"]["uid"], False
        solid = {
            o["metadata"]["uid"] for o in self.store.objects() if not o["metadata"].get("deletionTimestamp")
        }
        for dependent in self._dependents(uid):
            if any(r.get("uid") in solid for r in dependent["metadata"]["ownerReferences"]):
                self._strip(dependent, uid)
                continue
            left = True
            if not dependent["metadata"].get("deletionTimestamp"):
                self._delete(dependent, "Foreground")
        if left:
            self.after(RECHECK_SECONDS, owner["metadata"]["uid"])
        else:
            self._drop_finalizer(owner, "foregroundDeletion")

    def _recheck_owner(self, uid: str) -> None:
        for obj in self.store.objects():
            meta = obj["metadata"]
            if meta.get("uid") == uid and "foregroundDeletion" in (meta.get("finalizers") or []):
                self._foreground(obj)

    def _delete(self, obj: dict[str, Any], propagation: str = "Background") -> None:
        plural = self._plural(obj)
        group, namespace, name, _ = _where(obj)
        if plural is not None:
            with contextlib.suppress(ApiError):
                self.store.delete_object(
                    plural,
                    namespace,
                    name,
                    group,
                    propagation=propagation,
                    preconditions={"uid": obj["metadata"]["uid"]},
                )

    def _strip(self, obj: dict[str, Any], uid: str) -> None:
        self._edit(
            obj,
            lambda meta: meta.__setitem__(
                "ownerReferences", [r for r in meta.get("ownerReferences") or [] if r.get("uid") != uid]
            ),
        )

    def _drop_finalizer(self, obj: dict[str, Any], finalizer: str) -> None:
        self._edit(
            obj,
            lambda meta: meta.__setitem__(
                "finalizers", [f for f in meta.get("finalizers") or [] if f != finalizer]
            ),
        )

    def _edit(self, obj: dict[str, Any], change: Any) -> None:
        plural = self._plural(obj)
        group, namespace, name, _ = _where(obj)
        for _ in range(5):
            current = self.store.get(plural or "", namespace, name, group) if plural else None
            if current is None or current["metadata"]["uid"] != obj["metadata"]["uid"]:
                return
            change(current["metadata"])
            for key in ("ownerReferences", "finalizers"):
                if not current["metadata"].get(key):
                    current["metadata"].pop(key, None)
            try:
                self.store.update(current)
                return
            except ApiError:
                continue
