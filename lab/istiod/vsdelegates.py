"""VirtualService delegation and short names, as istiod prepares VirtualServices before building
routes.

Pilot sources:
- ``pilot/pkg/model/virtualservice_controller.go`` ``delegateVirtualServices`` and
  ``mergeVirtualServices``: a VirtualService without hosts is a delegate and never applies on its
  own; in a root (one with hosts), each ``http`` rule with ``delegate`` is replaced by the delegate's
  rules merged into it — unless the delegate is missing or not exported to the root's namespace,
  in which case only that rule is dropped. Short names are resolved in each object's own namespace
  (``ResolveVirtualServiceShortnames``).
- ``pilot/pkg/model/virtualservice.go`` ``mergeHTTPRoute``, ``mergeHTTPMatchRequests``,
  ``mergeHTTPMatchRequest``, ``hasConflict``, ``stringMatchConflict``: every delegate match must
  fit inside some root match (else the delegate rule is dropped); the merged match takes the
  delegate's fields and the root's where the delegate leaves one unset (maps merged, the delegate's
  keys winning); names join with ``-``; the delegate rule inherits the root's directResponse,
  rewrite, timeout, retries, fault, mirror, CORS and headers, but not a redirect.
- ``pkg/config/model`` ``ResolveShortnameToFQDN``: a name without a dot (not ``*``, not an IP)
  becomes ``name.<namespace>.svc.cluster.local``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from lab.istiod.vsparse import VirtualService

INHERITED = ("rewrite", "directResponse", "timeout", "retries", "fault", "mirror", "mirrorPercent",
             "mirrorPercentage", "corsPolicy", "mirrors", "headers")
MATCH_FIELDS = ("uri", "scheme", "method", "authority")
MAP_FIELDS = ("headers", "withoutHeaders", "queryParams")


def fqdn(name: str, namespace: str, suffix: str = "cluster.local") -> str:
    """``ResolveShortnameToFQDN``."""
    if not name or name == "*" or "." in name:
        return name
    try:
        ipaddress.ip_address(name)
        return name
    except ValueError:
        return f"{name}.{namespace}.svc.{suffix}"


def resolve_short_names(vs: VirtualService) -> VirtualService:
    """Hosts and route destinations with short names made fully qualified in the VS's namespace."""
    ns = vs.meta.namespace

    def rules(items: Sequence[Mapping[str, Any]]) -> tuple[dict[str, Any], ...]:
        out = []
        for rule in items:
            copy = dict(rule)
            routes = []
            for dest in rule.get("route") or []:
                dest = dict(dest)
                target = dict(dest.get("destination") or {})
                if target.get("host"):
                    target["host"] = fqdn(str(target["host"]).lower(), ns)
                dest["destination"] = target
                routes.append(dest)
            if routes:
                copy["route"] = routes
            out.append(copy)
        return tuple(out)

    return replace(
        vs,
        hosts=tuple(fqdn(h, ns) for h in vs.hosts),
        http=rules(vs.http),
        tls=rules(vs.tls),
        tcp=rules(vs.tcp),
    )


def _kind(spec: Any) -> tuple[str, str]:
    """(exact|prefix|regex, value) of a StringMatch, ("", "") when none is set."""
    spec = spec or {}
    for kind in ("exact", "prefix", "regex"):
        if spec.get(kind):
            return kind, str(spec[kind])
    return "", ""


def _string_conflict(root: Any, leaf: Any) -> bool:
    """``stringMatchConflict``."""
    if root is None or leaf is None:
        return False
    (rk, rv), (lk, lv) = _kind(root), _kind(leaf)
    if rk == "regex" and lk:
        return True
    if lk == "regex" and rk:
        return True
    if rk == "exact":
        return lk == "prefix" or (lv if lk == "exact" else "") != rv
    if rk == "prefix" and lk in ("prefix", "exact"):
        return not lv.startswith(rv)
    return True


def _has_conflict(root: Mapping[str, Any], leaf: Mapping[str, Any]) -> bool:
    """``hasConflict``."""
    if any(_string_conflict(root.get(f), leaf.get(f)) for f in MATCH_FIELDS):
        return True
    for field in MAP_FIELDS:
        mine = root.get(field) or {}
        if any(_string_conflict(mine.get(k), v) for k, v in (leaf.get(field) or {}).items()):
            return True
    if bool(root.get("ignoreUriCase")) != bool(leaf.get("ignoreUriCase")):
        return True
    if root.get("port") and leaf.get("port") and root["port"] != leaf["port"]:
        return True
    if root.get("sourceNamespace") and leaf.get("sourceNamespace") != root["sourceNamespace"]:
        return True
    labels = root.get("sourceLabels") or {}
    if any(k in labels and labels[k] != v for k, v in (leaf.get("sourceLabels") or {}).items()):
        return True
    mine, theirs = list(root.get("gateways") or []), list(leaf.get("gateways") or [])
    if mine and theirs:
        return len(mine) < len(theirs) or not set(theirs) <= set(mine)
    return False


def _merge_match(root: Mapping[str, Any], leaf: Mapping[str, Any]) -> dict[str, Any]:
    """``mergeHTTPMatchRequest``."""
    out = dict(leaf)
    if root.get("name") and leaf.get("name"):
        out["name"] = f"{root['name']}-{leaf['name']}"
    elif root.get("name"):
        out["name"] = root["name"]
    for field in (*MATCH_FIELDS, "port", "sourceNamespace", "gateways", "statPrefix"):
        if not out.get(field) and root.get(field):
            out[field] = root[field]
    for field in (*MAP_FIELDS, "sourceLabels"):
        merged = {**(root.get(field) or {}), **(leaf.get(field) or {})}
        if merged:
            out[field] = merged
    return out


def _merge_matches(
    root: Sequence[Mapping[str, Any]], leaf: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]] | None:
    """``mergeHTTPMatchRequests`` (None: conflict)."""
    if not root:
        return [dict(m) for m in leaf]
    if not leaf:
        return [dict(m) for m in root]
    out: list[dict[str, Any]] = []
    for sub in leaf:
        fits = [_merge_match(top, sub) for top in root if not _has_conflict(top, sub)]
        if not fits:
            return None
        out.extend(fits)
    return out or None


def merge_rule(root: Mapping[str, Any], delegate: Mapping[str, Any]) -> dict[str, Any] | None:
    """``mergeHTTPRoute`` (None: the delegate rule conflicts with the root rule)."""
    matches = _merge_matches(list(root.get("match") or []), list(delegate.get("match") or []))
    if matches is None:
        return None
    out = dict(delegate)
    out["match"] = matches
    if root.get("name") and delegate.get("name"):
        out["name"] = f"{root['name']}-{delegate['name']}"
    elif root.get("name"):
        out["name"] = root["name"]
    for field in INHERITED:
        if out.get(field) is None and root.get(field) is not None:
            out[field] = root[field]
    return out


def with_delegates(vss: Sequence[VirtualService], default_export_to: frozenset[str]) -> list[VirtualService]:
    """Root VirtualServices (short names resolved) with their delegate rules merged in; delegates
    themselves are left out."""
    resolved = [resolve_short_names(v) for v in vss]
    delegates = {(v.meta.namespace, v.meta.name): v for v in resolved if not v.hosts}
    out = []
    for vs in resolved:
        if not vs.hosts:
            continue
        if not any(rule.get("delegate") for rule in vs.http):
            out.append(vs)
            continue
        rules: list[dict[str, Any]] = []
        for rule in vs.http:
            ref = rule.get("delegate")
            if not ref:
                rules.append(dict(rule))
                continue
            key = (str(ref.get("namespace") or vs.meta.namespace), str(ref.get("name") or ""))
            delegate = delegates.get(key)
            if delegate is None:
                continue
            export = set(delegate.export_to) or set(default_export_to)
            visible = "*" in export or vs.meta.namespace in export
            if not visible and "." in export:
                visible = delegate.meta.namespace == vs.meta.namespace
            if not visible:
                continue
            root = {k: v for k, v in rule.items() if k != "delegate"}
            rules += [m for m in (merge_rule(root, sub) for sub in delegate.http) if m is not None]
        out.append(replace(vs, http=tuple(rules)))
    return out
