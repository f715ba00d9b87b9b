"""Fixes: the smallest safe YAML for a diagnosis (`diagnoses[].fix` in docs/schema.md; the same
safety rules as preset bundles, docs/presets.md).

Safety rules every builder here follows (why a TCP entry needs an address: docs/codes/MP0107.md):

- exact hosts only (never a wildcard the target did not ask for);
- new entries live in the source's namespace with ``exportTo: ["."]``, so nothing outside that
  namespace changes; patches of existing objects only add the source namespace;
- HTTP/HTTPS/TLS entries use ``resolution: DNS`` (NONE would let a client claim any Host/SNI);
- never a TCP (or protocol-less) entry without ``addresses``: without a VIP it would own
  ``0.0.0.0:port`` for every workload that sees it (MP0107). A TCP entry gets the dialled address
  with ``resolution: NONE``; when that address is unknown there is no fix, only advice.

Each builder returns a `diag.rules.base.Fix` whose ``objects`` are the parsed documents (the
round-trip test applies them to the snapshot) and whose ``yaml`` is their rendering.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import yaml

from diag.rules.base import Fix

PROTOCOL_FOR_CALL = {"http": "HTTP", "https": "HTTPS", "tls": "TLS", "tcp": "TCP"}
_SERVER_FIELDS = ("status",)
_META_DROP = ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields", "selfLink")


def render(objects: Sequence[Mapping[str, Any]]) -> str:
    """YAML documents, keys in the order written (deterministic)."""
    return "---\n".join(yaml.safe_dump(dict(o), sort_keys=False, default_flow_style=False) for o in objects)


def make_fix(summary: str, objects: Sequence[Mapping[str, Any]]) -> Fix:
    return Fix(summary=summary, yaml=render(objects), objects=tuple(objects))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:50] or "host"


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def service_entry(
    host: str,
    port: int,
    protocol: str,
    namespace: str,
    *,
    address: str | None = None,
    domain_suffix: str = "cluster.local",
) -> Fix | None:
    """A new entry for exactly ``host:port`` (None when no safe entry can be written).

    ``address`` must be one the user gave or the probe observed, never an assumed or stand-in one.
    No entry is written for IP literals, wildcards, names with a trailing dot, short names (the pod
    resolves them through its search domains) or names of the cluster's own domain (in-mesh hosts
    are never external)."""
    proto = PROTOCOL_FOR_CALL.get(protocol.lower(), protocol.upper())
    host = host.lower()
    if _is_ip(host) or host.endswith(".") or "*" in host or "." not in host:
        return None
    if host == domain_suffix or host.endswith(("." + domain_suffix, ".svc")):
        return None
    spec: dict[str, Any] = {
        "hosts": [host],
        "exportTo": ["."],
        "location": "MESH_EXTERNAL",
        "ports": [{"number": port, "name": f"{proto.lower()}-{port}", "protocol": proto}],
        "resolution": "DNS",
    }
    if proto == "TCP":
        if not address or not _is_ip(address):
            return None
        ip = ipaddress.ip_address(address)
        spec["addresses"] = [f"{ip}/{ip.max_prefixlen}"]
        spec["resolution"] = "NONE"
    obj = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": f"{_slug(host)}-{port}", "namespace": namespace},
        "spec": spec,
    }
    what = f"{proto} {host}:{port}" + (f" at {spec['addresses'][0]}" if "addresses" in spec else "")
    return make_fix(f"register {what} for namespace {namespace} only", [obj])


def clean(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of an object as the user would re-apply it (no status or server-set metadata)."""
    obj = copy.deepcopy(dict(raw))
    for key in _SERVER_FIELDS:
        obj.pop(key, None)
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        for key in _META_DROP:
            meta.pop(key, None)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict):
            annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
            if not annotations:
                meta.pop("annotations")
    return obj


def patched(raw: Mapping[str, Any], change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """`clean(raw)` with ``change`` applied to it (``spec`` created if missing)."""
    obj = clean(raw)
    obj.setdefault("spec", {})
    change(obj)
    return obj


def add_port(raw: Mapping[str, Any], port: int, protocol: str) -> dict[str, Any]:
    proto = PROTOCOL_FOR_CALL.get(protocol.lower(), protocol.upper())

    def change(obj: dict[str, Any]) -> None:
        obj["spec"].setdefault("ports", []).append(
            {"number": port, "name": f"{proto.lower()}-{port}", "protocol": proto}
        )

    return patched(raw, change)


def set_port_protocol(raw: Mapping[str, Any], port: int, protocol: str) -> dict[str, Any]:
    def change(obj: dict[str, Any]) -> None:
        for item in obj["spec"].get("ports", []) or []:
            if isinstance(item, dict) and int(item.get("number", 0) or 0) == port:
                item["protocol"] = protocol
                item["name"] = f"{protocol.lower()}-{port}"

    return patched(raw, change)


def export_to_namespace(
    raw: Mapping[str, Any], namespace: str, *, annotation: bool = False
) -> dict[str, Any]:
    """Add ``namespace`` to an entry's ``exportTo`` (or a Service's exportTo annotation), keeping
    its own namespace (``.``)."""

    def change(obj: dict[str, Any]) -> None:
        if annotation:
            annotations = obj.setdefault("metadata", {}).setdefault("annotations", {})
            current = [
                p.strip() for p in str(annotations.get("networking.istio.io/exportTo", ".")).split(",")
            ]
            annotations["networking.istio.io/exportTo"] = ",".join(_merged(current, namespace))
            return
        current = [str(x) for x in obj["spec"].get("exportTo") or ["."]]
        obj["spec"]["exportTo"] = _merged(current, namespace)

    return patched(raw, change)


def _merged(current: list[str], namespace: str) -> list[str]:
    kept = [x for x in current if x and x != "~"] or ["."]
    return kept if namespace in kept else [*kept, namespace]


def sidecar_import(raw: Mapping[str, Any], entry_namespace: str, host: str) -> dict[str, Any]:
    """Add ``<entry namespace>/<host>`` to the first egress listener without an explicit port."""

    def change(obj: dict[str, Any]) -> None:
        egress = obj["spec"].setdefault("egress", [])
        target = next((e for e in egress if isinstance(e, dict) and not e.get("port")), None)
        if target is None:
            target = {"hosts": []}
            egress.append(target)
        hosts = target.setdefault("hosts", [])
        item = f"{entry_namespace}/{host}"
        if item not in hosts:
            hosts.append(item)

    return patched(raw, change)


def destination_rule_port_tls(
    host: str, namespace: str, port: int, mode: str, *, base: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A DestinationRule (or a patch of ``base``) setting ``tls.mode`` for one port only."""
    if base is not None:
        obj = clean(base)
    else:
        obj = {
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": {"name": f"{_slug(host)}-{port}-tls", "namespace": namespace},
            "spec": {"host": host, "exportTo": ["."]},
        }
    policy = obj.setdefault("spec", {}).setdefault("trafficPolicy", {})
    levels = [
        p
        for p in policy.get("portLevelSettings", []) or []
        if not (isinstance(p, dict) and (p.get("port") or {}).get("number") == port)
    ]
    levels.append({"port": {"number": port}, "tls": {"mode": mode}})
    policy["portLevelSettings"] = levels
    return obj
