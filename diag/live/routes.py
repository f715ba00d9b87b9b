"""HTTP routing inside a connection manager: the virtual host by Host (exact, then suffix
wildcards, then prefix wildcards, then ``*``; istio ``pilot/pkg/simulation/traffic.go``
``matchVirtualHost``), the first route whose ``RouteMatch`` holds (path, headers, query
parameters), and its action: cluster (weighted: the heaviest), direct response or redirect.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

from diag.live.call import LiveCall, LivePath, with_changes
from diag.live.fields import InvalidConfig, Json, as_mapping, as_messages, as_number, as_text

REDIRECT_CODES = {
    "MOVED_PERMANENTLY": 301,
    "FOUND": 302,
    "SEE_OTHER": 303,
    "TEMPORARY_REDIRECT": 307,
    "PERMANENT_REDIRECT": 308,
}


def match_vhost(vhosts: Iterable[Json], host: str) -> Json | None:
    """Envoy's virtual-host lookup: exact, then ``*suffix`` (longest), ``prefix*`` (longest), ``*``."""
    listed = [v for v in vhosts if isinstance(v, Mapping)]
    host = host.lower()
    for vh in listed:
        if any(str(d).lower() == host for d in vh.get("domains", []) or []):
            return vh
    for wildcard_first in (True, False):
        best: tuple[int, Json] | None = None
        for vh in listed:
            for d in (str(x).lower() for x in vh.get("domains", []) or []):
                if d == "*" or len(d) < 2:
                    continue
                if wildcard_first and d.startswith("*") and host.endswith(d[1:]) and len(host) > len(d) - 1:
                    best = best if best and best[0] >= len(d) else (len(d), vh)
                if (
                    not wildcard_first
                    and d.endswith("*")
                    and host.startswith(d[:-1])
                    and len(host) > len(d) - 1
                ):
                    best = best if best and best[0] >= len(d) else (len(d), vh)
        if best:
            return best[1]
    return next((vh for vh in listed if "*" in (vh.get("domains") or [])), None)


def route_action(vhost: Json, call: LiveCall, base: LivePath) -> LivePath:
    """The first route whose match holds, and its action (no route: 404 NR)."""
    for route in as_messages(vhost.get("routes"), "virtual_hosts.routes"):
        if not _route_matches(as_mapping(route.get("match"), "routes.match"), call):
            continue
        entry = as_text(route.get("name"), "routes.name") or None
        direct = as_mapping(route.get("direct_response"), "routes.direct_response")
        if direct:
            status = as_number(direct.get("status"), "direct_response.status")
            if not 200 <= status <= 599:
                raise InvalidConfig(f"direct_response.status: {status} is not in [200, 600)")
            return with_changes(base, outcome="direct_response", route_entry=entry, direct_status=status)
        redirect = as_mapping(route.get("redirect"), "routes.redirect")
        if redirect:
            named = redirect.get("response_code") or "MOVED_PERMANENTLY"
            if isinstance(named, int) and not isinstance(named, bool) and 0 <= named < len(REDIRECT_CODES):
                named = list(REDIRECT_CODES)[named]  # the enum's number
            code = REDIRECT_CODES.get(named) if isinstance(named, str) else None
            if code is None:
                raise InvalidConfig(f"redirect.response_code: {redirect.get('response_code')!r}")
            return with_changes(base, outcome="redirect", route_entry=entry, direct_status=code)
        action = as_mapping(route.get("route"), "routes.route")
        weighted = as_messages(
            as_mapping(action.get("weighted_clusters"), "route.weighted_clusters").get("clusters"),
            "weighted_clusters.clusters",
        )
        cluster = as_text(action.get("cluster"), "route.cluster") or heaviest(weighted)
        notes = base.notes
        if len(weighted) > 1:
            notes = (*notes, "weighted: " + ", ".join(f"{c} {w}" for c, w in weights(weighted)))
        if cluster is None and action.get("cluster_header"):
            notes = (*notes, f"cluster from header {action['cluster_header']}")
        return with_changes(base, route_entry=entry, cluster=cluster, notes=notes, weighted=weights(weighted))
    return with_changes(base, outcome="no_route")


def heaviest(weighted: Sequence[Json]) -> str | None:
    """The cluster with the largest weight (the first of equals)."""
    best: tuple[int, str] | None = None
    for item in weighted:
        weight = as_number(item.get("weight"), "weighted_clusters.clusters.weight")
        name = as_text(item.get("name"), "weighted_clusters.clusters.name")
        if best is None or weight > best[0]:
            best = (weight, name)
    return best[1] if best else None


def weights(weighted: Sequence[Json]) -> tuple[tuple[str, int], ...]:
    return tuple(
        (as_text(c.get("name"), "clusters.name"), as_number(c.get("weight"), "clusters.weight"))
        for c in weighted
    )


def _route_matches(rule: Json, call: LiveCall) -> bool:
    """Envoy ``RouteMatch``: the path specifier (``path``/``safe_regex`` on the path without its
    query, ``prefix`` on the start of ``:path``; ``case_sensitive`` false compares path and prefix
    case-insensitively), then every header and query-parameter matcher."""
    path = call.path or "/"
    bare = path.split("?", 1)[0].split("#", 1)[0]
    sensitive = _flag(rule.get("case_sensitive"), True)
    if "prefix" in rule and not _starts(path, str(rule["prefix"]), sensitive):
        return False
    exact = as_text(rule.get("path"), "match.path") if "path" in rule else None
    if exact is not None and not (bare == exact if sensitive else bare.lower() == exact.lower()):
        return False
    if "safe_regex" in rule and not _regex_full(rule["safe_regex"], bare):
        return False
    if "path_separated_prefix" in rule:
        pfx = str(rule["path_separated_prefix"])
        if not (bare == pfx or _starts(bare, pfx.rstrip("/") + "/", sensitive)):
            return False
    headers = {
        **dict(call.headers),
        ":authority": call.host or "",
        ":path": path,
        ":method": call.method,
        ":scheme": "http",
    }
    if not all(_header_matches(h, headers) for h in _list_of(rule.get("headers"), "headers")):
        return False
    query = dict(parse_qsl(path.partition("?")[2], keep_blank_values=True))
    return all(_query_matches(q, query) for q in _list_of(rule.get("query_parameters"), "query_parameters"))


def _flag(value: Any, default: bool) -> bool:
    """A protobuf BoolValue as JSON (a bare bool, or ``{"value": bool}``)."""
    if isinstance(value, Mapping):
        value = value.get("value", default)
    return default if value is None else bool(value)


def _starts(value: str, prefix: str, sensitive: bool) -> bool:
    return value.startswith(prefix) if sensitive else value.lower().startswith(prefix.lower())


def _list_of(value: Any, name: str) -> list[Json]:
    if value is None:
        return []
    if not isinstance(value, list | tuple) or not all(isinstance(v, Mapping) for v in value):
        raise InvalidConfig(f"{name}: expected a list of matchers")
    return list(value)


def _regex_full(rule: Any, value: str) -> bool:
    """RE2 full match; a pattern that does not compile is config Envoy rejects."""
    pattern = rule.get("regex", "") if isinstance(rule, Mapping) else None
    if not isinstance(pattern, str):
        raise InvalidConfig("safe_regex: no regex")
    try:
        return re.fullmatch(pattern, value) is not None
    except re.error as exc:
        raise InvalidConfig(f"safe_regex {pattern!r}: {exc}") from None


def _header_matches(rule: Json, headers: Mapping[str, str]) -> bool:
    """Envoy ``HeaderMatcher``: present/string match, ``invert_match``, and
    ``treat_missing_header_as_empty`` (a missing header is then matched as "")."""
    value = headers.get(str(rule.get("name", "")).lower())
    if value is None and rule.get("treat_missing_header_as_empty"):
        value = ""
    if "present_match" in rule:
        ok = (value is not None) == bool(rule["present_match"])
    elif value is None:
        ok = False
    else:
        ok = _string_matches(rule.get("string_match") or {"exact": rule.get("exact_match", value)}, value)
    return ok != bool(rule.get("invert_match"))


def _query_matches(rule: Json, query: Mapping[str, str]) -> bool:
    """Envoy ``QueryParameterMatcher``: present, or a string match on the parameter's value."""
    value = query.get(str(rule.get("name", "")))
    if value is None:
        return False
    if rule.get("present_match"):
        return True
    matcher = rule.get("string_match")
    return _string_matches(matcher, value) if isinstance(matcher, Mapping) else True


def _string_matches(rule: Json, value: str) -> bool:
    if rule.get("ignore_case"):
        value = value.lower()
        rule = {k: (v.lower() if isinstance(v, str) else v) for k, v in rule.items()}
    if "exact" in rule:
        return value == str(rule["exact"])
    if "prefix" in rule:
        return value.startswith(str(rule["prefix"]))
    if "suffix" in rule:
        return value.endswith(str(rule["suffix"]))
    if "contains" in rule:
        return str(rule["contains"]) in value
    if "safe_regex" in rule:
        return _regex_full(rule["safe_regex"], value)
    return False
