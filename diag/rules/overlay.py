"""A snapshot with a few objects replaced, built from an existing one without rebuilding it.

`overlay(snapshot, objects)` is `Snapshot.build` of the snapshot's objects with every object of
``objects`` put in place of the one with the same ref (or added), without validation — what
checking a fix needs (`diag.rules.fixcheck`). Instead of converting and indexing every service
again, it keeps the untouched `MeshService`s and patches only the index entries of the services
that go or come, in the order a full build gives them (entries' services first, in object order,
then Kubernetes Services'). The exportTo buckets (`diag.predict.scope`) are carried over the same
way when the snapshot has them and no Namespace changes; the other caches (per-source scopes,
listeners) start empty.

Only the kinds a fix writes are patched (ServiceEntry, Sidecar, DestinationRule, VirtualService,
Namespace and the other plain lists); anything else (a Kubernetes Service, whose conversion reads
other objects, or a kind the snapshot derives more from) falls back to a full build, so the result
is always the full build's. `tests/diag/test_snapshot_overlay.py` compares the two field by field.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from diag.model.resources import (
    DestinationRule,
    EnvoyFilter,
    Gateway,
    Namespace,
    Pod,
    ProxyConfigResource,
    Resource,
    ServiceEntry,
    Sidecar,
    VirtualService,
    WasmPlugin,
)
from diag.model.snapshot import MeshService, Snapshot, _convert, _group_by_namespace, _indexes

# The plain per-kind lists of a snapshot: replacing an object there changes nothing else.
LISTS: Mapping[type, str] = {
    ServiceEntry: "service_entries",
    Sidecar: "sidecars",
    DestinationRule: "destination_rules",
    VirtualService: "virtual_services",
    Gateway: "gateways",
    Pod: "pods",
    ProxyConfigResource: "proxy_configs",
    EnvoyFilter: "envoy_filters",
    WasmPlugin: "wasm_plugins",
}
INDEXED = ("exact_host", "wildcard_suffix", "by_port", "by_address", "cidr_services")
DERIVED = ("mesh_services", *INDEXED, "invalid", "warnings")


class _Refs:
    """The refs of the objects written, tested cheaply: by name first (a ref is built per call)."""

    def __init__(self, objects: Iterable[Resource]) -> None:
        self.refs = {o.ref for o in objects}
        self.names = {o.name for o in objects}

    def __contains__(self, obj: object) -> bool:
        return isinstance(obj, Resource) and obj.name in self.names and obj.ref in self.refs


def overlay(
    snapshot: Snapshot, objects: Sequence[Resource], rebuild: Callable[[], Iterable[Resource]]
) -> Snapshot:
    """``snapshot`` with ``objects`` in place of the objects of the same ref (see the module
    docstring). ``rebuild()`` gives every object of the snapshot, for when a full build is needed."""
    refs = _Refs(objects)
    if not _patchable(snapshot, objects, refs):
        kept = [o for o in rebuild() if o not in refs]
        return Snapshot.build(kept + list(objects), snapshot.mesh, istio_version=snapshot.istio_version,
                              validate=False)  # fmt: skip
    # a full build without validation has no validation messages either
    changes: dict[str, Any] = {"cache": {}, "invalid": (), "warnings": ()}
    for kind, name in LISTS.items():
        old: tuple[Resource, ...] = getattr(snapshot, name)
        added = [o for o in objects if type(o) is kind]
        if added or any(o in refs for o in old):
            changes[name] = tuple(o for o in old if o not in refs) + tuple(added)
    namespaces = [o for o in objects if isinstance(o, Namespace)]
    if namespaces or any(n in refs for n in snapshot.namespaces.values()):
        kept_ns = {k: n for k, n in snapshot.namespaces.items() if n not in refs}
        changes["namespaces"] = kept_ns | {n.name: n for n in namespaces}
    if "sidecars" in changes:
        changes["sidecars_by_namespace"] = _group_by_namespace(changes["sidecars"])
    moved: tuple[set[int], list[MeshService], dict[int, int]] = (set(), [], {})
    if "service_entries" in changes:
        moved = _services(snapshot, [o for o in objects if isinstance(o, ServiceEntry)], refs, changes)
    out = dataclasses.replace(snapshot, **changes)
    if "namespaces" not in changes:  # discoverySelectors read the Namespaces' labels
        _carry_export_buckets(snapshot, out, *moved)
    return out


def _patchable(snapshot: Snapshot, objects: Sequence[Resource], refs: _Refs) -> bool:
    """Every object written is of a kind patched here, and no object it replaces is in another of
    the snapshot's lists (Kubernetes Services, control planes, any kind added later)."""
    if any(type(o) not in LISTS and type(o) is not Namespace for o in objects):
        return False
    for f in dataclasses.fields(snapshot):
        value = getattr(snapshot, f.name)
        if f.name in LISTS.values() or f.name in DERIVED or not isinstance(value, tuple):
            continue
        if any(isinstance(o, Resource) and o in refs for o in value):
            return False
    return True


def _services(
    snapshot: Snapshot, entries: Sequence[ServiceEntry], refs: _Refs, out: dict[str, Any]
) -> tuple[set[int], list[MeshService], dict[int, int]]:
    """Put in ``out`` the mesh services and their indexes with the entries of ``refs`` replaced by
    ``entries``; return the ids of the services gone, those that came and each one's place."""
    gone = [s for s in snapshot.mesh_services if s.resource in refs and s.kind == "ServiceEntry"]
    came = list(_convert(entries, (), snapshot.mesh.domain_suffix))
    gone_ids = {id(s) for s in gone}
    kept = [s for s in snapshot.mesh_services if id(s) not in gone_ids]
    split = next((i for i, s in enumerate(kept) if s.kind != "ServiceEntry"), len(kept))
    services = (*kept[:split], *came, *kept[split:])
    position = {id(s): i for i, s in enumerate(services)}
    out["mesh_services"] = services
    for name in INDEXED:
        old = getattr(snapshot, name)
        if isinstance(old, tuple):
            out[name] = _patched(old, gone, came, gone_ids, position, name, None)
            continue
        keys = {k for s in (*gone, *came) for k in _indexes([s])[name]}
        table = dict(old)
        reorder = False
        for key in keys:
            before = table.get(key, ())
            value = _patched(before, gone, came, gone_ids, position, name, key)
            if value:
                table[key] = value
            else:
                table.pop(key, None)
            reorder = reorder or not before or not value or before[0] is not value[0]
        if reorder:
            table = _in_build_order(table, position, name)
        out[name] = table
    return gone_ids, came, position


def _patched(
    old: tuple[MeshService, ...],
    gone: Sequence[MeshService],
    came: Sequence[MeshService],
    gone_ids: set[int],
    position: Mapping[int, int],
    name: str,
    key: Any,
) -> tuple[MeshService, ...]:
    """One index entry (``key`` of index ``name``, or the list ``name`` when key is None) without
    the services that went and with those that came, in the full build's order."""
    if not gone and not came:
        return old
    new = [s for s in old if id(s) not in gone_ids] if gone_ids else list(old)
    for svc in came:
        mine = _indexes([svc])[name]
        if (key is None and mine) or (key is not None and key in mine):
            bisect.insort(new, svc, key=lambda s: position[id(s)])  # the rest is in order already
    return tuple(new)


def _in_build_order(
    table: dict[Any, tuple[MeshService, ...]], position: Mapping[int, int], name: str
) -> dict[Any, tuple[MeshService, ...]]:
    """The keys in a full build's order: by their first service, and the keys one service opens
    (several ports, addresses) in that service's own order."""
    items = sorted(table.items(), key=lambda kv: position[id(kv[1][0])])
    ties = {i for i in range(1, len(items)) if items[i][1][0] is items[i - 1][1][0]}
    for i in sorted(ties):  # runs of keys of one service: in its own order (few: one per extra port)
        if i - 1 in ties:
            continue
        end = i + 1
        while end < len(items) and items[end][1][0] is items[i][1][0]:
            end += 1
        own = list(_indexes([items[i][1][0]])[name])
        items[i - 1 : end] = sorted(items[i - 1 : end], key=lambda kv: own.index(kv[0]))
    return dict(items)


def _carry_export_buckets(
    parent: Snapshot, child: Snapshot, gone: set[int], came: list[MeshService], position: Mapping[int, int]
) -> None:
    """Give `child`, an overlay of `parent` whose Namespaces and mesh are the same and whose
    services differ by ``gone`` (ids) and ``came``, the parent's export buckets patched, if the
    parent has them: the same lists without the services gone, the new ones put in pilot's order
    (``position`` is each service's place in the child, which breaks ties as a stable sort does)."""
    from diag.predict.scope import _export_bucket as export_bucket
    from diag.predict.scope import _order_key as order_key

    cached = parent.cache.get("export-buckets")
    if not isinstance(cached, tuple):
        return
    if not gone and not came:
        child.cache["export-buckets"] = cached
        return
    private, public = cached

    def order(svc: MeshService) -> tuple[tuple[str, str, str], int]:
        return order_key(svc), position[id(svc)]

    new_private = {ns: [s for s in found if id(s) not in gone] for ns, found in private.items()}
    new_public = [s for s in public if id(s) not in gone]
    in_scope: dict[str, bool] = {}
    for svc in came:
        bucket = export_bucket(child, svc, in_scope)
        if bucket == "*":
            bisect.insort(new_public, svc, key=order)
        elif bucket is not None:
            for ns in bucket:
                bisect.insort(new_private.setdefault(ns, []), svc, key=order)
    child.cache["export-buckets"] = (new_private, new_public)
