"""VirtualService HTTP routes for a sidecar (``gateways`` empty or ``mesh``).

Pilot sources:
- ``pilot/pkg/model/push_context.go`` ``initVirtualServices`` and ``model/virtualservice.go``
  ``SelectVirtualServices``: VSs exported to the proxy's namespace (``exportTo``, default ``*``),
  private ones first, then exported, then public, each in creation order; a VS is imported when one
  of its hosts matches (either way, ``host.Name.Matches``) a Sidecar egress host of its namespace.
- ``pilot/pkg/model/sidecar.go`` ``computeWildcardHostVirtualServiceIndex``: each service takes
  the most specific VS host (exact, else the longest wildcard; the first VS wins a tie).
- ``pilot/pkg/networking/core/route/route.go`` ``BuildSidecarVirtualHostWrapper``,
  ``separateVSHostsAndServices``, ``buildSidecarVirtualHostsForVirtualService``: a VS's routes
  replace the default vhost of every service it matches that has an HTTP/auto port of the route's
  number; hosts matching no service get their own vhost on port 80 only; ``BuildHTTPRoutesForVirtualService``
  / ``TranslateRoute``: one Envoy route per ``http[].match`` (``sourceLabels``/``sourceNamespace``/
  ``gateways``/``port`` evaluated statically), stopping after a catch-all; route name
  ``http.name[.match.name]``; no fallback route is added (an unmatched request gets 404 NR).
- ``route.go`` ``TranslateRouteMatch`` (uri exact/prefix/regex, headers, ``:method``,
  ``:authority``, ``case_sensitive``), ``applyHTTPRouteDestination``/``GetDestinationCluster``
  (``outbound|port|subset|host``; the port is the destination's, else the service's only port,
  else the listener port; weights → ``weighted_clusters``), ``ApplyRedirect``,
  ``ApplyDirectResponse``, ``setTimeout``, ``retry.ConvertPolicy`` (VS ``retries`` else the mesh
  default).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lab.istiod.envoy import cluster_name
from lab.istiod.hosts import matches, most_specific, subset_of
from lab.istiod.imports import HostImports
from lab.istiod.model import MeshService
from lab.istiod.resources import parse_duration_s
from lab.istiod.scope import MeshSettings
from lab.istiod.vsparse import VirtualService

REDIRECT_CODES = {
    0: "MOVED_PERMANENTLY",
    301: "MOVED_PERMANENTLY",
    302: "FOUND",
    303: "SEE_OTHER",
    307: "TEMPORARY_REDIRECT",
    308: "PERMANENT_REDIRECT",
}


def select_virtual_services(
    vss: Sequence[VirtualService], mesh: MeshSettings, ns: str, imports: Mapping[str, HostImports]
) -> list[VirtualService]:
    """``SelectVirtualServices`` for the mesh gateway."""
    ordered = sorted(
        (v for v in vss if v.mesh_bound), key=lambda v: (v.meta.created, v.meta.namespace, v.meta.name)
    )
    private, exported, public = [], [], []
    for vs in ordered:
        export = set(vs.export_to) or set(mesh.default_vs_export_to)
        if "*" in export:
            public.append(vs)
        elif "~" in export:
            continue
        elif vs.meta.namespace == ns and ("." in export or ns in export):
            private.append(vs)
        elif ns in export:
            exported.append(vs)
    wildcard = imports.get("*")
    out: list[VirtualService] = []
    for vs in [*private, *exported, *public]:
        own = imports.get(vs.meta.namespace)
        for h in vs.hosts:
            excluded = (own and own.excludes(h)) or (wildcard and wildcard.excludes(h))
            imported = any(
                imp and any(matches(h, pattern) for pattern in imp.hosts) for imp in (own, wildcard)
            )
            if imported and not excluded:
                out.append(vs)
                break
    return out


def most_specific_index(vss: Sequence[VirtualService], hostnames: Sequence[str]) -> dict[str, VirtualService]:
    """``computeWildcardHostVirtualServiceIndex``: service host → the VS with its most specific host."""
    first_by_host: dict[str, VirtualService] = {}
    for vs in vss:
        for h in vs.hosts:
            first_by_host.setdefault(h, vs)
    out = {}
    for hostname in hostnames:
        best = most_specific(hostname, list(first_by_host))
        if best is not None:
            out[hostname] = first_by_host[best]
    return out


def _string_match(spec: Mapping[str, Any]) -> dict[str, Any] | None:
    if "exact" in spec:
        return {"exact": str(spec["exact"])}
    if "prefix" in spec:
        return {"prefix": str(spec["prefix"])}
    if "regex" in spec:
        return {"safe_regex": {"regex": str(spec["regex"])}}
    return None


def _header_matcher(name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    matcher = _string_match(spec)
    if matcher is None:
        return {"name": name, "present_match": True}
    return {"name": name, "string_match": matcher}


def route_match(match: Mapping[str, Any] | None) -> dict[str, Any]:
    """``TranslateRouteMatch``."""
    out: dict[str, Any] = {"prefix": "/"}
    if not match:
        return out
    headers = [_header_matcher(str(n), s or {}) for n, s in sorted((match.get("headers") or {}).items())]
    uri = match.get("uri") or {}
    if "exact" in uri:
        out = {"path": str(uri["exact"])}
    elif "prefix" in uri:
        out = {"prefix": str(uri["prefix"])}
    elif "regex" in uri:
        out = {"safe_regex": {"regex": str(uri["regex"])}}
    out["case_sensitive"] = not bool(match.get("ignoreUriCase"))
    for key, header in (("method", ":method"), ("authority", ":authority"), ("scheme", ":scheme")):
        if match.get(key):
            headers.append(_header_matcher(header, match[key]))
    if headers:
        out["headers"] = headers
    return out


def is_catch_all(match: Mapping[str, Any]) -> bool:
    """``IsCatchAllRoute``."""
    path_all = match.get("prefix") == "/" or (match.get("safe_regex") or {}).get("regex") == ".*"
    return bool(path_all) and not match.get("headers")


def destination_cluster(
    destination: Mapping[str, Any], services: Mapping[str, MeshService], port: int
) -> str:
    """``GetDestinationCluster`` (ExternalName aliases already point at the concrete service)."""
    host = str(destination.get("host") or "").lower()
    if not host:
        return "UnknownService"
    number = (destination.get("port") or {}).get("number")
    svc = services.get(host)
    if svc is not None and svc.external_name:
        host = svc.external_name
    if number is None and svc is not None and len(svc.ports) == 1:
        number = svc.ports[0].number
    return cluster_name(
        int(number if number is not None else port), host, str(destination.get("subset") or "")
    )


def _source_matches(match: Mapping[str, Any] | None, labels: Mapping[str, str], ns: str) -> bool:
    """``sourceMatchHTTP``."""
    if not match:
        return True
    gateways = match.get("gateways") or []
    if gateways:
        return "mesh" in gateways
    wanted = match.get("sourceLabels") or {}
    if any(labels.get(k) != v for k, v in wanted.items()):
        return False
    return not match.get("sourceNamespace") or match.get("sourceNamespace") == ns


def _action(
    http: Mapping[str, Any],
    services: Mapping[str, MeshService],
    port: int,
    mesh_retry: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """``applyHTTPRouteDestination``: cluster or weighted clusters, timeout, rewrite, retries."""
    from lab.istiod.routes import retry_policy

    timeout = parse_duration_s(http.get("timeout")) or 0.0
    duration = f"{timeout:g}s"
    action: dict[str, Any] = {"timeout": duration, "max_grpc_timeout": duration}
    rewrite = http.get("rewrite") or {}
    if rewrite.get("uri"):
        action["prefix_rewrite"] = str(rewrite["uri"])
    if rewrite.get("authority"):
        action["host_rewrite_literal"] = str(rewrite["authority"])
    destinations = list(http.get("route") or [])
    if len(destinations) == 1:
        action["cluster"] = destination_cluster(destinations[0].get("destination") or {}, services, port)
    else:
        action["weighted_clusters"] = {
            "clusters": [
                {
                    "name": destination_cluster(d.get("destination") or {}, services, port),
                    "weight": int(d["weight"]),
                }
                for d in destinations
                if int(d.get("weight") or 0) > 0
            ]
        }
    retries = http.get("retries")
    policy = retry_policy(retries if retries is not None else mesh_retry)
    if policy is not None:
        action["retry_policy"] = policy
    return action


def _redirect(spec: Mapping[str, Any], port: int) -> dict[str, Any] | None:
    """``ApplyRedirect`` (None for an unsupported code: pilot drops the action)."""
    code = int(spec.get("redirectCode") or 0)
    if code not in REDIRECT_CODES:
        return None
    out: dict[str, Any] = {"response_code": REDIRECT_CODES[code]}
    if spec.get("authority"):
        out["host_redirect"] = str(spec["authority"])
    if spec.get("uri"):
        out["path_redirect"] = str(spec["uri"])
    if spec.get("scheme"):
        out["scheme_redirect"] = str(spec["scheme"])
    redirect_port = spec.get("port") or (port if spec.get("derivePort") == "FROM_REQUEST_PORT" else None)
    scheme = str(spec.get("scheme") or "http")
    if redirect_port and (int(redirect_port), scheme) not in ((80, "http"), (443, "https")):
        out["port_redirect"] = int(redirect_port)
    return out


def translate_route(
    vs: VirtualService,
    http: Mapping[str, Any],
    match: Mapping[str, Any] | None,
    port: int,
    services: Mapping[str, MeshService],
    labels: Mapping[str, str],
    ns: str,
    mesh_retry: Mapping[str, Any] | None,
) -> dict[str, Any] | None:
    """``TranslateRoute`` for one ``http`` rule and one of its matches (None when it does not apply)."""
    if match is not None and match.get("port") and int(match["port"]) != port:
        return None
    if not _source_matches(match, labels, ns):
        return None
    name = str(http.get("name") or "")
    if match is not None and match.get("name"):
        name = f"{name}.{match['name']}"
    out: dict[str, Any] = {"match": route_match(match)}
    if name:
        out["name"] = name
    if http.get("redirect"):
        redirect = _redirect(http["redirect"], port)
        if redirect is None:
            return None
        out["redirect"] = redirect
    elif http.get("directResponse"):
        direct = http["directResponse"]
        response: dict[str, Any] = {"status": int(direct.get("status") or 200)}
        body = (direct.get("body") or {}).get("string")
        if body is not None:
            response["body"] = {"inline_string": str(body)}
        out["direct_response"] = response
    else:
        out["route"] = _action(http, services, port, mesh_retry)
    cluster = (out.get("route") or {}).get("cluster", "")
    path = (
        out["match"].get("prefix", "/") + "*" if "prefix" in out["match"] else out["match"].get("path", "/*")
    )
    if cluster.startswith("outbound|"):
        _, number, _, host = cluster.split("|", 3)
        out["decorator"] = {"operation": f"{host}:{number}{path}"}
    else:
        out["decorator"] = {"operation": f"{vs.meta.name}:{port}{path}"}
    config = f"/apis/networking.istio.io/v1/namespaces/{vs.meta.namespace}/virtual-service/{vs.meta.name}"
    out["metadata"] = {"filter_metadata": {"istio": {"config": config}}}
    return out


def build_vs_routes(
    vs: VirtualService,
    port: int,
    services: Mapping[str, MeshService],
    labels: Mapping[str, str],
    ns: str,
    mesh_retry: Mapping[str, Any] | None,
) -> list[dict[str, Any]]:
    """``BuildHTTPRoutesForVirtualService``: routes in rule order, stopping after a catch-all."""
    out: list[dict[str, Any]] = []
    for http in vs.http:
        matches_ = list(http.get("match") or [])
        if not matches_:
            route = translate_route(vs, http, None, port, services, labels, ns, mesh_retry)
            if route is not None:
                out.append(route)
            break
        caught = False
        for match in matches_:
            route = translate_route(vs, http, match, port, services, labels, ns, mesh_retry)
            if route is not None:
                out.append(route)
                if is_catch_all(route["match"]):
                    caught = True
                    break
        if caught:
            break
    return out


def split_hosts(
    vs: VirtualService, services: Mapping[str, MeshService], index: Mapping[str, VirtualService]
) -> tuple[list[str], list[MeshService]]:
    """``separateVSHostsAndServices``: (hosts matching no service, services the VS applies to)."""
    plain: list[str] = []
    matched: list[MeshService] = []
    for h in vs.hosts:
        if h.startswith("*"):
            found = [s for name, s in services.items() if matches(name, h)]
            matched.extend(s for s in found if index.get(s.hostname) is vs and s not in matched)
            if not found:
                plain.append(h)
        elif h in services:
            if services[h] not in matched:
                matched.append(services[h])
        else:
            plain.append(h)
    return plain, matched


__all__ = ["build_vs_routes", "select_virtual_services", "split_hosts", "subset_of"]


def _vs_applies_to_port(vs: VirtualService, services: Mapping[str, MeshService]) -> bool:
    """``selectVirtualServices`` (httproute.go): on ports other than 80 only VSs naming a service."""
    for h in vs.hosts:
        if h in services:
            return True
        if any(matches(h, name) for name in services if h.startswith("*") or name.startswith("*")):
            return True
    return False


def vs_wrappers(
    vss: Sequence[VirtualService],
    port: int,
    by_host: Mapping[str, MeshService],
    labels: Mapping[str, str],
    ns: str,
    mesh_retry: Mapping[str, Any] | None,
) -> list[tuple[list[str], list[MeshService], list[dict[str, Any]]]]:
    """``BuildSidecarVirtualHostWrapper``'s VS part for one port: (plain hosts, services, routes)."""
    from lab.istiod import protocol

    trimmed = {h: s.with_ports(tuple(p for p in s.ports if p.number == port)) for h, s in by_host.items()}
    candidates = vss if port == 80 else [vs for vs in vss if _vs_applies_to_port(vs, by_host)]
    index = most_specific_index(vss, list(by_host))
    out = []
    for vs in candidates:
        routes = build_vs_routes(vs, port, trimmed, labels, ns, mesh_retry)
        if not routes:
            continue
        plain, matched = split_hosts(vs, by_host, index)
        http_services = [
            s
            for s in matched
            if any(protocol.is_http_or_sniffed(p.protocol) for p in trimmed[s.hostname].ports)
        ]
        if http_services or port == 80:
            out.append((plain, http_services, routes))
    return out


def destination_hosts(vss: Sequence[VirtualService]) -> dict[str, set[int]]:
    """``virtualServiceDestinations``: host → destination ports (0: every port)."""
    out: dict[str, set[int]] = {}
    for vs in vss:
        for rule in (*vs.http, *vs.tls, *vs.tcp):
            for route in rule.get("route") or []:
                dest = route.get("destination") or {}
                if dest.get("host"):
                    number = int((dest.get("port") or {}).get("number") or 0)
                    out.setdefault(str(dest["host"]).lower(), set()).add(number)
    return out


def destination_services(
    vss: Sequence[VirtualService], registry: Sequence[MeshService], ns: str, visible: Sequence[MeshService]
) -> list[MeshService]:
    """``collectImportedServices``: services VS destinations name, for CDS even when the Sidecar does
    not import them — the one in the proxy's namespace, else the first visible namespace
    alphabetically; trimmed to the destination ports (``serviceMatchingVirtualServicePorts``)."""
    out = []
    visible_keys = {(s.hostname, s.namespace) for s in visible}
    for host, ports in destination_hosts(vss).items():
        candidates = [s for s in registry if s.hostname == host]
        own = [s for s in candidates if s.namespace == ns]
        if not own:
            shown = sorted(
                (s for s in candidates if (s.hostname, s.namespace) in visible_keys),
                key=lambda s: s.namespace,
            )
            own = [s for s in shown if s.namespace == shown[0].namespace] if shown else []
        for svc in own[:1]:
            if 0 in ports:
                out.append(svc)
                continue
            kept = tuple(p for p in svc.ports if p.number in ports)
            if kept:
                out.append(svc if len(kept) == len(svc.ports) else svc.with_ports(kept))
    return out
