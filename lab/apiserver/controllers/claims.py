"""Controller references: which controller owns an object, adoption of orphans that match a
controller's selector, release of owned objects that stopped matching — ``ClaimObject`` in
pkg/controller/controller_ref_manager.go (``BaseControllerRefManager``, ``PodControllerRefManager``,
``ReplicaSetControllerRefManager``), as the ReplicaSet controller claims pods and the Deployment
controller ReplicaSets.

- An object whose *controller* ownerReference names another controller is never touched.
- An object we control that still matches stays ours; one that no longer matches is released (our
  ownerReference removed), unless we are being deleted.
- An orphan — no ownerReference with ``controller: true``; other ownerReferences do not count —
  that matches is adopted: our controller ownerReference is added (``AdoptPod`` patches it in),
  unless the orphan or we are being deleted, and only after a fresh read shows that we still exist
  with the same uid (``RecheckDeletionTimestamp``).

This is why anything that must never be adopted needs a controller ownerReference of its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any

from lab.apiserver.errors import ApiError, Conflict
from lab.apiserver.selectors import selector_matches

Obj = dict[str, Any]
RETRIES = 5


def controller_of(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ownerReference with ``controller: true`` (``metav1.GetControllerOf``), if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


def controlled_by(obj: Mapping[str, Any], owner: Mapping[str, Any]) -> bool:
    ref = controller_of(obj)
    return ref is not None and ref.get("uid") == owner["metadata"]["uid"]


def controller_ref(owner: Mapping[str, Any]) -> dict[str, Any]:
    """``metav1.NewControllerRef``: a controlling, deletion-blocking reference to ``owner``."""
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def claim(
    store: Any,
    owner: Obj,
    resource: str,
    group: str,
    candidates: list[Obj],
    selector: Mapping[str, Any] | None,
) -> list[Obj]:
    """Adopt and release among ``candidates``; returns the objects ``owner`` controls afterwards."""
    uid, being_deleted = owner["metadata"]["uid"], bool(owner["metadata"].get("deletionTimestamp"))
    owned: list[Obj] = []
    for obj in candidates:
        ref = controller_of(obj)
        matches = selector_matches(selector, obj["metadata"].get("labels"))
        if ref is not None:
            if ref.get("uid") != uid:
                continue
            if matches or being_deleted:
                owned.append(obj)
            else:
                _write(store, resource, group, obj, lambda o: _release(o, uid))
            continue
        if not matches or being_deleted or obj["metadata"].get("deletionTimestamp"):
            continue
        if not _still_there(store, owner):
            continue
        adopted = _write(store, resource, group, obj, lambda o: _adopt(o, owner))
        if adopted is not None and controlled_by(adopted, owner):
            owned.append(adopted)
    return owned


def _still_there(store: Any, owner: Obj) -> bool:
    """``RecheckDeletionTimestamp``: the owner, read again, has the same uid and is not being deleted."""
    meta = owner["metadata"]
    plural = store.registry.by_kind(owner["apiVersion"], owner["kind"]).plural
    fresh = store.get(plural, meta.get("namespace"), meta["name"], owner["apiVersion"].rpartition("/")[0])
    return (
        fresh is not None
        and fresh["metadata"]["uid"] == meta["uid"]
        and not fresh["metadata"].get("deletionTimestamp")
    )


def _adopt(obj: Obj, owner: Obj) -> bool:
    meta = obj["metadata"]
    if controller_of(obj) is not None or meta.get("deletionTimestamp"):
        return False
    ref = controller_ref(owner)
    meta["ownerReferences"] = [r for r in meta.get("ownerReferences") or [] if r.get("uid") != ref["uid"]] + [
        ref
    ]
    return True


def _release(obj: Obj, uid: str) -> bool:
    meta = obj["metadata"]
    refs = meta.get("ownerReferences") or []
    kept = [r for r in refs if r.get("uid") != uid]
    if len(kept) == len(refs):
        return False
    if kept:
        meta["ownerReferences"] = kept
    else:
        meta.pop("ownerReferences", None)
    return True


def _write(store: Any, resource: str, group: str, obj: Obj, change: Callable[[Obj], bool]) -> Obj | None:
    """Apply ``change`` to the latest version of ``obj`` (same uid) and write it, retrying on conflict."""
    meta = obj["metadata"]
    for _ in range(RETRIES):
        current: Obj | None = store.get(resource, meta.get("namespace"), meta["name"], group)
        if current is None or current["metadata"]["uid"] != meta["uid"]:
            return None
        if not change(current):
            return current
        try:
            return dict(store.update(current))
        except Conflict:
            continue
        except ApiError:
            return None
    return None


def write_status(store: Any, resource: str, group: str, obj: Obj, status: dict[str, Any]) -> None:
    """Patch ``status`` in when it differs from what ``obj`` has (keys it lost are removed)."""
    old = obj.get("status") or {}
    if status == old:
        return
    patch: dict[str, Any] = {**{key: None for key in old if key not in status}, **status}
    meta = obj["metadata"]
    with contextlib.suppress(ApiError):
        store.patch_status(resource, meta.get("namespace"), meta["name"], patch, group)
