"""VirtualService HTTP rules → Envoy routes (one ``http`` rule and match at a time).

Pilot sources: ``pilot/pkg/networking/core/route/route.go`` ``BuildHTTPRoutesForVirtualService``
(rule order, stop after a catch-all), ``TranslateRoute`` (static ``port``/``sourceLabels``/
``sourceNamespace``/``gateways``; name ``http.name[.match.name]``), ``TranslateRouteMatch``,
``IsCatchAllRoute``, ``applyHTTPRouteDestination`` (timeout, rewrite, retries, weights),
``GetDestinationCluster``, ``ApplyRedirect``, ``ApplyDirectResponse``, ``GetRouteOperation``.
Delegates and short names are resolved before this (``lab/istiod/vsdelegates.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lab.istiod.envoy import cluster_name
from lab.istiod.model import MeshService
from lab.istiod.resources import parse_duration_s
from lab.istiod.retry import retry_policy
from lab.istiod.vsparse import VirtualService

REDIRECT_CODES = {
    0: "MOVED_PERMANENTLY",
    301: "MOVED_PERMANENTLY",
    302: "FOUND",
    303: "SEE_OTHER",
    307: "TEMPORARY_REDIRECT",
    308: "PERMANENT_REDIRECT",
}


def _presence(spec: Mapping[str, Any]) -> bool:
    """``canBeConvertedToPresentMatch``: no value at all, or the regex ``*``."""
    return not any(k in spec for k in ("exact", "prefix", "regex")) or spec.get("regex") == "*"


def _string_match(spec: Mapping[str, Any]) -> dict[str, Any] | None:
    if "exact" in spec:
        return {"exact": str(spec["exact"])}
    if "prefix" in spec:
        return {"prefix": str(spec["prefix"])}
    if "regex" in spec:
        return {"safe_regex": {"regex": str(spec["regex"])}}
    return None


def _header_matcher(name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """``translateHeaderMatch``."""
    matcher = None if _presence(spec) else _string_match(spec)
    if matcher is None:
        return {"name": name, "present_match": True}
    return {"name": name, "string_match": matcher}


def _query_matcher(name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """``translateQueryParamMatch``."""
    matcher = None if _presence(spec) else _string_match(spec)
    if matcher is None:
        return {"name": name, "present_match": True}
    return {"name": name, "string_match": matcher}


def route_match(match: Mapping[str, Any] | None) -> dict[str, Any]:
    """``TranslateRouteMatch``: headers and withoutHeaders (inverted; a missing header counts as
    empty unless the match is a presence check) sorted by name, then method/authority/scheme."""
    out: dict[str, Any] = {"prefix": "/"}
    if not match:
        return out
    headers = [_header_matcher(str(n), s or {}) for n, s in (match.get("headers") or {}).items()]
    for name, spec in (match.get("withoutHeaders") or {}).items():
        matcher = _header_matcher(str(name), spec or {})
        matcher["invert_match"] = True
        if not _presence(spec or {}):
            matcher["treat_missing_header_as_empty"] = True
        headers.append(matcher)
    headers.sort(key=lambda h: str(h["name"]))
    uri = match.get("uri") or {}
    if "exact" in uri:
        out = {"path": str(uri["exact"])}
    elif "prefix" in uri:
        out = {"prefix": str(uri["prefix"])}
    elif "regex" in uri:
        out = {"safe_regex": {"regex": str(uri["regex"])}}
    out["case_sensitive"] = not bool(match.get("ignoreUriCase"))
    for key, header in (("method", ":method"), ("authority", ":authority"), ("scheme", ":scheme")):
        if match.get(key) is not None:
            headers.append(_header_matcher(header, match[key] or {}))
    if headers:
        out["headers"] = headers
    queries = [_query_matcher(str(n), s or {}) for n, s in (match.get("queryParams") or {}).items()]
    if queries:
        out["query_parameters"] = queries
    return out


def is_catch_all(match: Mapping[str, Any]) -> bool:
    """``IsCatchAllRoute``."""
    path_all = match.get("prefix") == "/" or (match.get("safe_regex") or {}).get("regex") == ".*"
    return bool(path_all) and not match.get("headers") and not match.get("query_parameters")


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
