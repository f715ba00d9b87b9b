"""The sidecar's running config on the targets' paths, read with filtered admin calls:
``/config_dump?resource=…&name_regex=…`` (``name_regex`` must match the whole name) for listeners,
then the routes they name (RDS) or the port (``"80"``), then the clusters referenced (at most 64,
plus the catch-alls and the targets' ``outbound|PORT|…|HOST``); and ``/clusters?format=json&filter=…``
for those clusters' members. Failed xDS updates (``error_state``) become notes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from probes.model import ClusterMembership, ProbeResult, TargetSpec
from probes.sidecar_admin import AdminEndpoint, AdminError
from probes.sidecar_names import (
    dialed_addresses,
    exact_listener_regex,
    listener_name_regex,
    listener_references,
    regex_literal,
    target_cluster_patterns,
    unique,
    vhost_clusters,
)

MAX_CLUSTERS = 64
BROAD_LISTENER_BYTES = 1024 * 1024  # every listener on a target port: best effort
CATCH_ALL_CLUSTERS = ("BlackHoleCluster", "PassthroughCluster")

_LISTENER_RESOURCES = ("static_listeners", "dynamic_listeners")
_ROUTE_RESOURCES = ("static_route_configs", "dynamic_route_configs")
_CLUSTER_RESOURCES = ("static_clusters", "dynamic_active_clusters", "dynamic_warming_clusters")
_OBJECT_KEY = {"listeners": "listener", "routes": "route_config", "clusters": "cluster"}


def _unwrap(kind: str, entry: Mapping[str, Any], notes: list[str]) -> Mapping[str, Any] | None:
    """The plain Envoy object inside one config_dump entry (dynamic listeners: active, else warming)."""
    key = _OBJECT_KEY[kind]
    if key in entry:
        obj = entry[key]
    else:
        state = entry.get("active_state") or entry.get("warming_state") or {}
        obj = state.get(key)
    error = entry.get("error_state")
    if isinstance(error, Mapping):
        details = " ".join(str(error.get("details", "")).split())[:300]
        notes.append(f"{kind[:-1]} {entry.get('name', '?')}: xDS update rejected: {details}")
    return obj if isinstance(obj, Mapping) else None


def read_config(
    ep: AdminEndpoint,
    kind: str,
    resources: Sequence[str],
    name_regex: str,
    notes: list[str],
    max_bytes: int | None = None,
) -> tuple[list[Mapping[str, Any]], dict[str, list[Any]]]:
    """``/config_dump?resource=R&name_regex=…`` for each R: (the plain objects, {R: raw entries})."""
    objects: list[Mapping[str, Any]] = []
    raw: dict[str, list[Any]] = {}
    for resource in resources:
        try:
            params = {"resource": resource, "name_regex": name_regex}
            doc = ep.get_json("/config_dump", params, max_bytes)
        except AdminError as exc:
            notes.append(f"config_dump {resource}: {exc}")
            continue
        entries = doc.get("configs") or [] if isinstance(doc, Mapping) else []
        raw[resource] = list(entries)
        objects += [o for o in (_unwrap(kind, e, notes) for e in entries if isinstance(e, Mapping)) if o]
    return objects, raw


def read_membership(ep: AdminEndpoint, name_regex: str) -> tuple[ClusterMembership, ...]:
    """``/clusters?format=json&filter=…``: each cluster's hosts ("IP:PORT") and health; no hosts ⇒
    Envoy could not resolve a DNS cluster (or the cluster is ORIGINAL_DST/static without endpoints)."""
    doc = ep.get_json("/clusters", {"format": "json", "filter": name_regex})
    out: list[ClusterMembership] = []
    for status in doc.get("cluster_statuses") or [] if isinstance(doc, Mapping) else []:
        hosts: list[str] = []
        health: list[str] = []
        for host in status.get("host_statuses") or []:
            sock = (host.get("address") or {}).get("socket_address") or {}
            addr = str(sock.get("address", "?"))
            addr = f"[{addr}]" if ":" in addr else addr
            hosts.append(f"{addr}:{sock.get('port_value', '?')}")
            hs = host.get("health_status") or {}
            flags = [k for k, v in hs.items() if v is True]
            health.append(",".join(flags) or str(hs.get("eds_health_status", "UNKNOWN")))
        name = str(status.get("name"))
        out.append(ClusterMembership(cluster=name, hosts=tuple(hosts), health=tuple(health)))
    return tuple(out)


def _wanted_clusters(referenced: Sequence[str], targets: Sequence[TargetSpec], notes: list[str]) -> str:
    names = unique([*CATCH_ALL_CLUSTERS, *referenced])
    if len(names) > MAX_CLUSTERS:
        notes.append(f"{len(names)} clusters referenced; read the first {MAX_CLUSTERS}")
        names = names[:MAX_CLUSTERS]
    parts = [regex_literal(n) for n in names] + target_cluster_patterns(targets)
    return "^(" + "|".join(unique(parts)) + ")$"


def _entry_name(entry: Any) -> str:
    if isinstance(entry, Mapping):
        inner = entry.get("listener")
        return str(entry.get("name") or (inner.get("name") if isinstance(inner, Mapping) else ""))
    return ""


def _read_listeners(
    ep: AdminEndpoint, results: Sequence[ProbeResult], targets: Sequence[TargetSpec], notes: list[str]
) -> tuple[list[Mapping[str, Any]], dict[str, list[Any]]]:
    """The listeners for the dialled addresses first; then, best effort and size-capped, every
    other listener on the target ports (``<VIP>_443`` etc.: evidence for an address mismatch)."""
    exact = exact_listener_regex(dialed_addresses(results))
    listeners, raw = read_config(ep, "listeners", _LISTENER_RESOURCES, exact, notes)
    more_notes: list[str] = []
    broad = listener_name_regex(targets)
    others, more_raw = read_config(
        ep, "listeners", _LISTENER_RESOURCES, broad, more_notes, BROAD_LISTENER_BYTES
    )
    notes += [f"other listeners on the target ports not read: {n}" for n in more_notes]
    seen = {str(li.get("name")) for li in listeners}
    listeners += [li for li in others if str(li.get("name")) not in seen]
    for resource, entries in more_raw.items():
        have = {_entry_name(e) for e in raw.get(resource, [])}
        raw.setdefault(resource, []).extend(e for e in entries if _entry_name(e) not in have)
    return listeners, raw


def read_path_config(
    ep: AdminEndpoint, results: Sequence[ProbeResult], targets: Sequence[TargetSpec], notes: list[str]
) -> tuple[dict[str, list[Any]], str]:
    """The raw config_dump sections on the targets' paths, and the regex naming their clusters."""
    listeners, sources = _read_listeners(ep, results, targets, notes)
    rds_names, referenced = listener_references(listeners, targets)
    route_names = unique([*rds_names, *(str(t.port) for t in targets)])
    route_regex = "^(" + "|".join(regex_literal(n) for n in route_names) + ")$"
    routes, route_sources = read_config(ep, "routes", _ROUTE_RESOURCES, route_regex, notes)
    referenced = unique([*referenced, *(c for r in routes for c in vhost_clusters(r, targets))])
    cluster_regex = _wanted_clusters(referenced, targets, notes)
    _, cluster_sources = read_config(ep, "clusters", _CLUSTER_RESOURCES, cluster_regex, notes)
    return {**sources, **route_sources, **cluster_sources}, cluster_regex
