"""VirtualService HTTP routes as pilot builds them for one sidecar and port, and Envoy's route match
for one request.

Sources (istio/istio 86c9f01f):
- delegates: `pilot/pkg/model/virtualservice_controller.go` `mergeVirtualServices` (a rule with
  `delegate` is replaced by the delegate's rules; a delegate has no hosts and must be exported to
  the root's namespace; a missing or hidden delegate drops only that rule) and
  `pilot/pkg/model/virtualservice.go` `MergeHTTPRoutes`/`mergeHTTPMatchRequests`/`hasConflict`
  (each delegate match must fit inside a root match, else the delegate rule is dropped; names join
  with "-"; the delegate inherits what it leaves unset, except a redirect);
- translation: `pilot/pkg/networking/core/route/route.go` `BuildHTTPRoutesForVirtualService`
  (rules in order, one route per match, stop after a catch-all: `IsCatchAllRoute`),
  `TranslateRoute` (a match whose `port` differs from the listener port is dropped;
  `sourceMatchHTTP`: a match listing `gateways` applies to sidecars only if it names `mesh`,
  otherwise `sourceLabels` must be a subset of the proxy's labels and `sourceNamespace` its
  namespace; route name `http.name[.match.name]`), `TranslateRouteMatch` (uri exact → `path`,
  prefix, regex → `safe_regex`, `case_sensitive` = not ignoreUriCase; headers, and method/authority/
  scheme as `:method`/`:authority`/`:scheme` header matchers; withoutHeaders inverted, with
  `treat_missing_header_as_empty` unless it is a presence check; queryParams),
  `GetDestinationCluster` (destination port, else the service's only port, else the listener port;
  an ExternalName alias points at its target), `applyHTTPRouteDestination` (several destinations
  → weighted clusters, weight 0 dropped), `ApplyRedirect`, `ApplyDirectResponse`;
- a VirtualService that yields no route for this proxy and port builds no virtual host
  (`buildSidecarVirtualHostsForVirtualService` returns nothing), so the host keeps its default
  route.

Envoy's route match (`envoy.config.route.v3.RouteMatch`, `HeaderMatcher`): the first route whose
path specifier and every header and query matcher match wins; `path` and `safe_regex` compare the
path without its query string (the regex must match all of it), `prefix` the start of `:path`;
a header matcher on a missing header fails unless it checks absence (inverted presence) or treats
a missing header as empty. No route matching → `404 NR` from the sidecar.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl

from diag.model.resources import HttpMatch, RouteDestination, RouteRule, StringMatch, VirtualService

JWT_CLAIM_PREFIX = "@request.auth.claims"
REDIRECT_CODES = (0, 301, 302, 303, 307, 308)


@dataclass(frozen=True, kw_only=True)
class HttpRequest:
    """What the route match reads: path (with query), method, scheme and headers (lower-case names,
    `:authority` being the Host header as sent)."""

    path: str = "/"
    method: str = "GET"
    scheme: str = "http"
    headers: Mapping[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        if lowered == ":method":
            return self.method
        if lowered == ":scheme":
            return self.scheme
        if lowered == ":path":
            return self.path
        return self.headers.get(lowered)


@dataclass(frozen=True, kw_only=True)
class HttpRoute:
    """One Envoy route built from a VirtualService rule and match.

    `action` is "route", "redirect" or "direct_response"; `destinations` are (cluster, weight)
    pairs (one with weight 0 for a single destination); `status` the redirect code or the direct
    response status; `where` names the rule (``VirtualService ns/name http[i] match[j]``).
    """

    vs: VirtualService
    where: str
    name: str
    match: HttpMatch | None
    action: str
    destinations: tuple[tuple[str, int], ...] = ()
    hosts: tuple[str, ...] = ()
    status: int | None = None

    @property
    def catch_all(self) -> bool:
        """`IsCatchAllRoute`: prefix `/` or regex `.*`, no header (method/authority/scheme count),
        query or metadata matcher."""
        m = self.match
        if m is None:
            return True
        path_all = m.uri is None or (m.uri.kind, m.uri.value) in (("prefix", "/"), ("regex", ".*"))
        has_headers = m.headers or m.without_headers or m.method or m.authority or m.scheme
        return path_all and not has_headers and not m.query_params

    def describe(self) -> str:
        """One line for evidence: where, the conditions, and what it does."""
        conditions = self.match.describe() if self.match is not None else "any request"
        return f"{self.where}: {conditions}"


def _string_ok(m: StringMatch, value: str, ignore_case: bool = False) -> bool:
    if m.kind == "present":
        return True
    if ignore_case:
        value, wanted = value.lower(), m.value.lower()
    else:
        wanted = m.value
    if m.kind == "exact":
        return value == wanted
    if m.kind == "prefix":
        return value.startswith(wanted)
    return _fullmatch(m.value, value)


def _fullmatch(pattern: str, value: str) -> bool:
    """RE2 full match (Python's syntax for the common subset; an invalid pattern never matches —
    Envoy would have rejected the route configuration)."""
    try:
        return re.fullmatch(pattern, value) is not None
    except re.error:
        return False


def _path_ok(m: HttpMatch, path: str) -> bool:
    uri = m.uri
    if uri is None or uri.kind == "present":
        return path.startswith("/")
    bare = path.split("?", 1)[0].split("#", 1)[0]
    if uri.kind == "regex":
        return _fullmatch(uri.value, bare)  # case_sensitive does not apply to regexes
    if uri.kind == "exact":
        return bare.lower() == uri.value.lower() if m.ignore_uri_case else bare == uri.value
    return path.lower().startswith(uri.value.lower()) if m.ignore_uri_case else path.startswith(uri.value)


def _header_ok(m: StringMatch, value: str | None, invert: bool) -> bool:
    """Envoy `HeaderMatcher`; `invert` is withoutHeaders (missing counts as empty unless the match
    is a presence check)."""
    if m.presence:
        present = value is not None
        return not present if invert else present
    if value is None:
        if not invert:
            return False
        value = ""  # treat_missing_header_as_empty
    ok = _string_ok(m, value)
    return not ok if invert else ok


def _query_ok(name: str, m: StringMatch, query: Mapping[str, str]) -> bool:
    if name not in query:
        return False
    return True if m.presence else _string_ok(m, query[name])


def route_matches(route: HttpRoute, request: HttpRequest) -> bool:
    """Envoy's match of one route against the request."""
    m = route.match
    if m is None:
        return request.path.startswith("/")
    if not _path_ok(m, request.path):
        return False
    for name, sm in m.headers:
        if name.startswith(JWT_CLAIM_PREFIX):
            return False  # a dynamic-metadata (JWT claim) match: no claims without authentication
        if not _header_ok(sm, request.header(name), invert=False):
            return False
    for name, sm in m.without_headers:
        if name.startswith(JWT_CLAIM_PREFIX):
            continue  # inverted metadata match on absent claims: matches
        if not _header_ok(sm, request.header(name), invert=True):
            return False
    for key, pseudo in ((":method", m.method), (":authority", m.authority), (":scheme", m.scheme)):
        if pseudo is not None and not _header_ok(pseudo, request.header(key), invert=False):
            return False
    query = dict(parse_qsl(request.path.partition("?")[2], keep_blank_values=True))
    return all(_query_ok(name, sm, query) for name, sm in m.query_params)


def first_match(routes: Sequence[HttpRoute], request: HttpRequest) -> HttpRoute | None:
    """The route Envoy picks (None: 404 NR)."""
    return next((r for r in routes if route_matches(r, request)), None)


def http_request(call: Any) -> HttpRequest:
    """The request a `diag.predict.sidecar.Call` makes: its path, method and headers; `:authority` is the
    Host header an HTTP client sends (the host, with the port unless it is 80), unless the call
    gives its own `host` header."""
    headers = {str(k).lower(): str(v) for k, v in getattr(call, "headers", ()) or ()}
    host = str(getattr(call, "host", "") or "").lower()
    port = int(getattr(call, "port", 80) or 80)
    authority = headers.pop("host", None) or (host if port == 80 else f"{host}:{port}")
    headers[":authority"] = authority
    return HttpRequest(
        path=str(getattr(call, "path", "/") or "/"),
        method=str(getattr(call, "method", "GET") or "GET").upper(),
        headers=headers,
    )


# ---- building the routes ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RouteContext:
    """What translation needs from the proxy: its labels and namespace, the listener port, how to
    find a delegate, and `cluster_for(destination, vs namespace, port)` (`GetDestinationCluster`)."""

    labels: Mapping[str, str]
    namespace: str
    port: int
    delegates: Mapping[tuple[str, str], VirtualService]
    cluster_for: Any
    default_export_to: tuple[str, ...] = ("*",)
    gateway: str = "mesh"  # the proxy's gateway name: "mesh" (a sidecar) or "ns/name" (a Gateway)


def _gateway_name(name: str, namespace: str) -> str:
    """A VirtualService's gateway reference as "mesh" or "ns/name" (short names: the VS's namespace)."""
    return name if name == "mesh" or "/" in name else f"{namespace}/{name}"


def _source_matches(m: HttpMatch | None, ctx: RouteContext, namespace: str = "") -> bool:
    """`sourceMatchHTTP` for a sidecar (gateway names = {"mesh"}) or a gateway (its "ns/name")."""
    if m is None:
        return True
    if m.gateways:
        return ctx.gateway in {_gateway_name(g, namespace) for g in m.gateways}
    if any(ctx.labels.get(k) != v for k, v in m.source_labels.items()):
        return False
    return not m.source_namespace or m.source_namespace == ctx.namespace


def _translate(vs: VirtualService, rule: RouteRule, index: int, m: HttpMatch | None,
               j: int | None, ctx: RouteContext) -> HttpRoute | None:
    """`TranslateRoute` (None: the match does not apply to this proxy and port)."""
    if m is not None and m.port and m.port != ctx.port:
        return None
    if not _source_matches(m, ctx, vs.namespace):
        return None
    name = rule.name + (f".{m.name}" if m is not None and m.name else "")
    where = f"{vs.ref} http[{index}]" + (f" match[{j}]" if j is not None else "")
    if rule.redirect_code is not None:
        if rule.redirect_code not in REDIRECT_CODES:
            return None  # pilot leaves the route without an action
        return HttpRoute(vs=vs, where=where, name=name, match=m, action="redirect",
                         status=rule.redirect_code or 301)
    if rule.direct_status is not None:
        return HttpRoute(vs=vs, where=where, name=name, match=m, action="direct_response",
                         status=rule.direct_status)
    dests: list[RouteDestination] = list(rule.destinations)
    if len(dests) > 1:
        dests = [d for d in dests if d.weight]
    pairs = tuple(ctx.cluster_for(d, vs.namespace, ctx.port) for d in dests)
    weights = tuple(
        (cluster, d.weight if len(dests) > 1 else 0) for (cluster, _), d in zip(pairs, dests, strict=True)
    )
    return HttpRoute(vs=vs, where=where, name=name, match=m, action="route", destinations=weights,
                     hosts=tuple(h for _, h in pairs))


def build_routes(vs: VirtualService, ctx: RouteContext) -> tuple[HttpRoute, ...]:
    """`BuildHTTPRoutesForVirtualService` on the merged (delegates resolved) rules."""
    out: list[HttpRoute] = []
    for index, (rule, owner) in enumerate(merged_rules(vs, ctx)):
        if not rule.http_match:
            route = _translate(owner, rule, index, None, None, ctx)
            if route is not None:
                out.append(route)
            break
        caught = False
        for j, m in enumerate(rule.http_match):
            route = _translate(owner, rule, index, m, j, ctx)
            if route is not None:
                out.append(route)
                if route.catch_all:
                    caught = True
                    break
        if caught:
            break
    return tuple(out)


def merged_rules(vs: VirtualService, ctx: RouteContext) -> list[tuple[RouteRule, VirtualService]]:
    """The root's rules with each `delegate` rule replaced by the merged delegate rules (each with
    the VirtualService whose destinations it names, for short-name resolution)."""
    out: list[tuple[RouteRule, VirtualService]] = []
    for rule in vs.http:
        if rule.delegate is None:
            out.append((rule, vs))
            continue
        ns, name = rule.delegate
        delegate = ctx.delegates.get((ns or vs.namespace, name))
        if delegate is None:
            continue
        export = delegate.export_to or ctx.default_export_to
        if not config_exported_to(export, delegate.namespace, vs.namespace):
            continue
        for sub in delegate.http:
            merged = merge_rule(rule, sub)
            if merged is not None:
                out.append((merged, delegate))
    return out


def config_exported_to(export: Sequence[str], owner: str, namespace: str) -> bool:
    """exportTo ("*", "." = own namespace, names) contains `namespace`."""
    return "*" in export or namespace in export or ("." in export and owner == namespace)


def merge_rule(root: RouteRule, delegate: RouteRule) -> RouteRule | None:
    """`mergeHTTPRoute` (None: the delegate's matches conflict with the root's)."""
    matches = _merge_matches(root.http_match, delegate.http_match)
    if matches is None:
        return None
    name = delegate.name or root.name
    if delegate.name and root.name:
        name = f"{root.name}-{delegate.name}"
    direct = delegate.direct_status if delegate.direct_status is not None else root.direct_status
    return replace(delegate, name=name, http_match=matches, direct_status=direct)


def _merge_matches(root: tuple[HttpMatch, ...], leaf: tuple[HttpMatch, ...]) -> tuple[HttpMatch, ...] | None:
    if not root:
        return leaf
    if not leaf:
        return root
    out: list[HttpMatch] = []
    for sub in leaf:
        found = False
        for top in root:
            if _has_conflict(top, sub):
                continue
            out.append(_merge_match(top, sub))
            found = True
        if not found:
            return None
    return tuple(out) or None


def _merge_match(root: HttpMatch, leaf: HttpMatch) -> HttpMatch:
    """`mergeHTTPMatchRequest`: the delegate's fields, the root's where the delegate leaves one unset."""
    name = leaf.name or root.name
    if leaf.name and root.name:
        name = f"{root.name}-{leaf.name}"
    return replace(
        leaf,
        name=name,
        uri=leaf.uri or root.uri,
        scheme=leaf.scheme or root.scheme,
        method=leaf.method or root.method,
        authority=leaf.authority or root.authority,
        headers=_merge_named(root.headers, leaf.headers),
        without_headers=_merge_named(root.without_headers, leaf.without_headers),
        query_params=_merge_named(root.query_params, leaf.query_params),
        port=leaf.port or root.port,
        source_labels={**root.source_labels, **leaf.source_labels},
        source_namespace=leaf.source_namespace or root.source_namespace,
        gateways=leaf.gateways or root.gateways,
    )


def _merge_named(
    root: tuple[tuple[str, StringMatch], ...], leaf: tuple[tuple[str, StringMatch], ...]
) -> tuple[tuple[str, StringMatch], ...]:
    merged = dict(root)
    merged.update(leaf)
    return tuple(sorted(merged.items()))


def _value(m: StringMatch | None, kind: str) -> str:
    """`GetExact()`/`GetPrefix()`/`GetRegex()`: the value when `m` is of that kind, else ""."""
    return m.value if m is not None and m.kind == kind else ""


def _string_conflict(root: StringMatch | None, leaf: StringMatch | None) -> bool:
    """`stringMatchConflict`."""
    if root is None or leaf is None:
        return False
    if _value(root, "regex") and (_value(leaf, "regex") or _value(leaf, "prefix") or _value(leaf, "exact")):
        return True
    if _value(leaf, "regex") and (_value(root, "regex") or _value(root, "prefix") or _value(root, "exact")):
        return True
    if exact := _value(root, "exact"):
        return bool(_value(leaf, "prefix")) or _value(leaf, "exact") != exact
    if prefix := _value(root, "prefix"):
        if _value(leaf, "prefix"):
            return not _value(leaf, "prefix").startswith(prefix)
        if _value(leaf, "exact"):
            return not _value(leaf, "exact").startswith(prefix)
    return True


def _has_conflict(root: HttpMatch, leaf: HttpMatch) -> bool:
    """`hasConflict`."""
    pairs = ((root.uri, leaf.uri), (root.scheme, leaf.scheme), (root.method, leaf.method),
             (root.authority, leaf.authority))
    if any(_string_conflict(a, b) for a, b in pairs):
        return True
    for mine, theirs in ((root.headers, leaf.headers), (root.without_headers, leaf.without_headers),
                         (root.query_params, leaf.query_params)):
        table = dict(mine)
        if any(_string_conflict(table.get(k), v) for k, v in theirs):
            return True
    if root.ignore_uri_case != leaf.ignore_uri_case:
        return True
    if root.port and leaf.port and root.port != leaf.port:
        return True
    if root.source_namespace and leaf.source_namespace != root.source_namespace:
        return True
    if any(k in root.source_labels and root.source_labels[k] != v for k, v in leaf.source_labels.items()):
        return True
    if root.gateways and leaf.gateways:
        return len(root.gateways) < len(leaf.gateways) or not set(leaf.gateways) <= set(root.gateways)
    return False


def delegate_index(virtual_services: Sequence[VirtualService]) -> dict[tuple[str, str], VirtualService]:
    """VirtualServices without hosts (delegates) by (namespace, name)."""
    return {(v.namespace, v.name): v for v in virtual_services if not v.hosts}


__all__ = [
    "HttpRequest",
    "HttpRoute",
    "RouteContext",
    "build_routes",
    "delegate_index",
    "first_match",
    "http_request",
    "route_matches",
]
