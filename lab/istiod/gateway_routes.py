"""VirtualServices bound to a gateway and the gateway's HTTP route configurations.

Pilot sources:
- ``pilot/pkg/model/push_context.go`` ``VirtualServicesForGateway`` with ``initVirtualServices``
  (``resolveGatewayName``: a bare ``gateways`` entry means ``<VS namespace>/<name>``): the VSs naming
  the gateway and exported to the proxy's namespace (``exportTo``, default
  ``defaultVirtualServiceExportTo``) — private, then exported, then public, each oldest first (then
  by name and namespace, ``model/config.go`` ``configCompareByCreationTime``).
- ``pilot/pkg/networking/core/gateway.go`` ``buildGatewayHTTPRouteConfig``: for each server of the
  route, each VS whose hosts intersect the server's hosts (``host.NamesForNamespace`` +
  ``Names.Intersection``) gives its routes (``BuildHTTPRoutesForVirtualService`` on the *server* port,
  with the gateway's name for ``match.gateways``; a VS yielding no route adds nothing) to one vhost
  ``host:<server port>`` per intersecting host (domains ``[host]``; a host seen again gets the
  routes appended); ``collapseDuplicateRoutes`` merges hosts sharing one route list; ``SortVHostRoutes`` moves
  catch-all routes last; a server with ``tls.httpsRedirect`` marks its hosts' vhosts
  ``require_tls: ALL`` and adds one (without routes) for a host no VS gave; no vhost at all →
  ``blackhole:<port>`` with ``*`` and no routes (404 NR).
- ``route/route.go`` ``sourceMatchHTTP``: a match listing ``gateways`` applies only to those.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from lab.istiod.gateway_servers import Server
from lab.istiod.hosts import subset_of
from lab.istiod.model import MeshService
from lab.istiod.routes import MAX_DIRECT_RESPONSE_BODY
from lab.istiod.vsparse import VirtualService
from lab.istiod.vsroutes import build_vs_routes, is_catch_all


def gateway_ref(name: str, vs_namespace: str) -> str:
    """``resolveGatewayName``."""
    if name == "mesh" or "/" in name:
        return name
    return f"{vs_namespace}/{name}"


def bound_gateways(vs: VirtualService) -> set[str]:
    return {gateway_ref(g, vs.meta.namespace) for g in vs.gateways}


def virtual_services_for_gateway(vss: Sequence[VirtualService], gateway: str, proxy_ns: str,
                                 default_export: frozenset[str]) -> list[VirtualService]:
    """``VirtualServicesForGateway``."""
    ordered = sorted((v for v in vss if gateway in bound_gateways(v)),
                     key=lambda v: (v.meta.created, v.meta.name, v.meta.namespace))
    private, exported, public = [], [], []
    for vs in ordered:
        export = set(vs.export_to) or set(default_export)
        if "*" in export:
            public.append(vs)
        elif "~" in export:
            continue
        elif vs.meta.namespace == proxy_ns and ("." in export or proxy_ns in export):
            private.append(vs)
        elif proxy_ns in export:
            exported.append(vs)
    return [*private, *exported, *public]


def names_for_namespace(hosts: Sequence[str], namespace: str) -> list[str]:
    """``host.NamesForNamespace``: ``ns/host`` entries count only for VSs in ``ns`` (or ``*``)."""
    out = []
    for h in hosts:
        if "/" in h:
            ns, name = h.split("/", 1)
            if ns in (namespace, "*"):
                out.append(name)
        else:
            out.append(h)
    return out


def intersection(a: Sequence[str], b: Sequence[str]) -> list[str]:
    """``host.Names.Intersection``: for each overlapping pair, the more specific host."""
    out: list[str] = []
    for x in a:
        for y in b:
            pick = x if subset_of(x, y) else y if subset_of(y, x) else None
            if pick is not None and pick not in out:
                out.append(pick)
    return out


def for_gateway(vs: VirtualService, gateway: str) -> VirtualService:
    """The VS's HTTP rules as seen by ``gateway``: matches naming other gateways dropped, matches
    naming this one kept (marked ``mesh`` so the shared translation accepts them)."""
    rules = []
    for rule in vs.http:
        matches = rule.get("match")
        if not matches:
            rules.append(rule)
            continue
        kept = []
        for m in matches:
            names = {gateway_ref(str(g), vs.meta.namespace) for g in m.get("gateways") or ()}
            if not names:
                kept.append(m)
            elif gateway in names:
                kept.append({**m, "gateways": ["mesh"]})
        if kept:
            rules.append({**rule, "match": kept})
    return replace(vs, http=tuple(rules))


def route_config(name: str, servers: Sequence[Server], vss: Sequence[VirtualService],
                 services: Mapping[str, MeshService], labels: Mapping[str, str], proxy_ns: str,
                 mesh_retry: Mapping[str, Any] | None, default_export: frozenset[str]) -> dict[str, Any]:
    """``buildGatewayHTTPRouteConfig`` for route ``name`` served by ``servers``."""
    vhosts: dict[str, dict[str, Any]] = {}
    origin: dict[str, tuple[str, str] | None] = {}  # host -> the (gateway, VS) its routes came from
    cache: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for server in servers:
        bound = virtual_services_for_gateway(vss, server.gateway, proxy_ns, default_export)
        for vs in bound:
            hosts = intersection(names_for_namespace(server.hosts, vs.meta.namespace), list(vs.hosts))
            if not hosts:
                continue
            key = (server.gateway, f"{vs.meta.name}/{vs.meta.namespace}")
            if key not in cache:
                view = for_gateway(vs, server.gateway)
                cache[key] = build_vs_routes(view, server.number, services, labels, proxy_ns, mesh_retry)
            routes = cache[key]
            if not routes:  # "no routes matched": the VS adds no vhost
                continue
            for host in (h.lower() for h in hosts):
                if host in vhosts:
                    vhosts[host]["routes"].extend(copy.deepcopy(routes))
                    origin[host] = None
                    continue
                vhosts[host] = {"name": f"{host}:{server.number}", "domains": [host],
                                "routes": copy.deepcopy(routes), "include_request_attempt_count": True}
                origin[host] = key
            if (server.tls or {}).get("httpsRedirect"):
                for host in hosts:
                    vhosts[host.lower()]["require_tls"] = "ALL"
        if (server.tls or {}).get("httpsRedirect"):
            for host in (h.lower() for h in server.hosts):  # as written (an "ns/" prefix kept)
                if host in vhosts:
                    vhosts[host]["require_tls"] = "ALL"
                    continue
                vhosts[host] = {"name": f"{host}:{server.number}", "domains": [host], "routes": [],
                                "include_request_attempt_count": True, "require_tls": "ALL"}
                origin[host] = None
    out: list[dict[str, Any]]
    if not vhosts:
        port = servers[0].number if servers else 0
        out = [{"name": f"blackhole:{port}", "domains": ["*"], "routes": []}]
    else:
        out = _collapse(vhosts, origin)
        for v in out:
            v["routes"] = [r for r in v["routes"] if not is_catch_all(r["match"])] + [
                r for r in v["routes"] if is_catch_all(r["match"])]
        out.sort(key=lambda v: str(v["name"]))
    return {"name": name, "virtual_hosts": out, "validate_clusters": False,
            "ignore_port_in_host_matching": True,
            "max_direct_response_body_size_bytes": MAX_DIRECT_RESPONSE_BODY}


def _collapse(vhosts: Mapping[str, dict[str, Any]],
              origin: Mapping[str, tuple[str, str] | None]) -> list[dict[str, Any]]:
    """``collapseDuplicateRoutes``: hosts whose routes are the same VS route list share the vhost
    of the first host alphabetically."""
    primary: dict[tuple[str, str], dict[str, Any]] = {}
    out = []
    for host in sorted(vhosts):
        v = vhosts[host]
        key = origin.get(host)
        same = primary.get(key) if key is not None else None
        if same is not None and same.get("require_tls") == v.get("require_tls"):
            same["domains"].extend(v["domains"])
            continue
        if key is not None:
            primary[key] = v
        out.append(v)
    return out
