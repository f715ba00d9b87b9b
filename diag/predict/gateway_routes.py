"""What an egress gateway's own config does with a call once it arrives: the VirtualServices bound
to the Gateway, the HTTP route configuration and virtual host, the TLS-passthrough / TCP filter
chains, and the upstream cluster behind them.

As istiod builds a gateway's config (`pilot/pkg/networking/core/gateway.go`):

- HTTP servers (plaintext, or TLS terminated: SIMPLE, MUTUAL, ISTIO_MUTUAL) share a route
  configuration per port — `http.<port>` for plaintext, `https.<port>.<port name>.<gateway>.<ns>`
  for a terminated HTTPS server (`pilot/pkg/model/gateway.go` `gatewayRDSRouteName`); its virtual
  hosts are the hosts of the VirtualServices bound to the Gateway (`gateways: [ns/name]`) that a
  server host covers (`ns/host`: `*` any namespace, `.` the Gateway's); without any, one
  `blackhole:<port>` virtual host with no routes ("Empty route list will cause Envoy to 404 NR");
- a plaintext server with `tls.httpsRedirect` marks its virtual hosts `require_tls: ALL`, adding a
  route-less one for each server host (as written) no VirtualService gives one: a plaintext request
  gets a 301 before any route matches ("tls-redirect");
- a route rule applies when its `match.gateways` (if set) names this Gateway and its `port` (if
  set) is the server's port (`pilot/pkg/networking/core/route/route.go` `sourceMatchHTTP`);
- a TLS PASSTHROUGH server gets one filter chain per VirtualService `tls` match whose `sniHosts`
  the server hosts cover (`buildGatewayNetworkFiltersFromTLSRoutes`); a plain TCP server one chain
  from the `tcp` routes (`buildGatewayNetworkFiltersFromTCPRoutes`); nothing matching → no chain;
- the upstream cluster is `outbound|<port>|<subset>|<host>`; a gateway cannot use ORIGINAL_DST, so
  a ServiceEntry with resolution NONE gets an EDS cluster without endpoints
  (`pilot/pkg/networking/core/cluster.go`): 503 UH.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from diag.model.resources import Gateway, GatewayServer, RouteDestination, RouteRule, VirtualService
from diag.model.snapshot import MeshService, Snapshot, host_matches
from diag.predict.http import HttpRoute, RouteContext, build_routes, delegate_index, first_match, http_request
from diag.predict.listeners import cluster_name
from diag.predict.model import Call
from diag.predict.scope import resolve_short_host
from diag.predict.visibility import service_exported


@dataclass(frozen=True, kw_only=True)
class GatewayRoute:
    """The route (or filter chain) the gateway picks: names, the VS, the cluster and its host;
    `reason` "no-vhost" | "no-route" | "no-filter-chain" when there is none, "tls-redirect" when the
    virtual host requires TLS."""

    route: str | None = None
    vhost: str | None = None
    filter_chain: str | None = None
    virtual_service: str | None = None
    cluster: str | None = None
    host: str | None = None
    reason: str = ""
    note: str = ""


def gateway_key(gw: Gateway) -> str:
    return f"{gw.namespace}/{gw.name}"


def bound_virtual_services(snapshot: Snapshot, gw: Gateway) -> list[VirtualService]:
    """VirtualServices listing this Gateway in `gateways` (short names are in the VS's namespace), in
    pilot's order (`pilot/pkg/model/config.go`: creation time, then name, then namespace)."""
    key = gateway_key(gw)
    found = [
        vs
        for vs in snapshot.virtual_services
        if any((g if "/" in g else f"{vs.namespace}/{g}") == key for g in vs.gateways)
    ]
    return sorted(
        found, key=lambda vs: (vs.created or "", vs.name, vs.namespace)
    )  # configCompareByCreationTime


def _server_hosts(server: GatewayServer, gw: Gateway) -> list[tuple[str, str]]:
    """(namespace, host) of each `ns/host` (no namespace = any; "." = the Gateway's)."""
    out = []
    for text in server.hosts:
        ns, _, name = text.rpartition("/")
        ns = gw.namespace if ns == "." else (ns or "*")
        out.append((ns, name.lower()))
    return out


def _covers(server_host: str, host: str) -> bool:
    return host_matches(server_host, host) or host_matches(host, server_host)


def vs_hosts_on(servers: Sequence[GatewayServer], gw: Gateway, vs: VirtualService) -> list[str]:
    """The intersection of the VS hosts with the hosts the servers expose to the VS's namespace,
    the more specific name of each matching pair (`host.Names.Intersection`)."""
    out: list[str] = []
    for ns, server_host in (h for s in servers for h in _server_hosts(s, gw)):
        if ns not in ("*", vs.namespace):
            continue
        for vs_host in (h.lower() for h in vs.hosts):
            if host_matches(server_host, vs_host):
                out.append(vs_host)
            elif host_matches(vs_host, server_host):
                out.append(server_host)
    return list(dict.fromkeys(out))


def server_covers(server: GatewayServer, gw: Gateway, host: str) -> bool:
    """A server host (any namespace) covers `host`."""
    return any(_covers(sh, host.lower()) for _, sh in _server_hosts(server, gw))


def route_name(server: GatewayServer, gw: Gateway, listener_port: int) -> str:
    """`gatewayRDSRouteName`: `http.<listener port>`, or `https.<server port>.<port name>.<gw>.<ns>`
    for a terminated HTTPS server."""
    if server.tls_mode in ("", "PASSTHROUGH", "AUTO_PASSTHROUGH") or server.port.protocol != "HTTPS":
        return f"http.{listener_port}"
    return f"https.{server.port.number}.{server.port.name}.{gw.name}.{gw.namespace}"


def _cluster_for(snapshot: Snapshot, dest: RouteDestination, namespace: str, port: int) -> tuple[str, str]:
    host = resolve_short_host(dest.host, namespace, snapshot.mesh.domain_suffix)
    return cluster_name(dest.port or port, host, dest.subset), host


def http_route(
    snapshot: Snapshot,
    servers: Sequence[tuple[Gateway, GatewayServer]],
    call: Call,
    labels: dict[str, str],
    listener_port: int,
    redirects: Callable[[Gateway, GatewayServer], bool] = lambda _g, _s: False,
) -> GatewayRoute:
    """The virtual host and route of the gateway's HTTP route configuration for the call: the
    servers sharing it (of every Gateway selecting the workload), their VirtualServices' routes
    merged per host in order (`buildGatewayHTTPRouteConfig` `vHostDedupMap`)."""
    gw0, first = servers[0]
    port = first.port.number
    name = route_name(first, gw0, listener_port)
    by_host: dict[str, list[tuple[Gateway, VirtualService]]] = {}
    require_tls: set[str] = set()  # `VirtualHost.require_tls: ALL`
    for gw, server in servers:
        redirect = not server.tls_mode and redirects(gw, server)
        for vs in bound_virtual_services(snapshot, gw):
            for h in vs_hosts_on([server], gw, vs):
                pairs = by_host.setdefault(h, [])
                if (gw, vs) not in pairs:
                    pairs.append((gw, vs))
                if redirect:
                    require_tls.add(h)
        for written in (h.lower() for h in server.hosts) if redirect else ():  # as written, `ns/` too
            require_tls.add(written)
            by_host.setdefault(written, [])
    if not by_host:
        return GatewayRoute(
            route=name,
            vhost=f"blackhole:{port}",
            reason="no-route",
            note=f"no VirtualService bound to {gw0.ref} has a host on its port {port} servers",
        )
    host = call.host.lower()
    hits = [h for h in by_host if host_matches(h, host)]
    if not hits:
        return GatewayRoute(route=name, reason="no-vhost", note=f"no virtual host of {name} covers {host}")
    vh_host = max(hits, key=lambda h: (not h.startswith("*"), len(h)))
    if vh_host in require_tls:
        note = f"virtual host {vh_host}:{port} requires TLS (a server's tls.httpsRedirect): 301 to https"
        return GatewayRoute(route=name, vhost=f"{vh_host}:{port}", reason="tls-redirect", note=note)
    if not by_host[vh_host]:
        return GatewayRoute(route=name, vhost=f"{vh_host}:{port}", reason="no-route", note="no routes")
    routes: list[HttpRoute] = []
    delegates = delegate_index(snapshot.virtual_services)
    for gw, vs in by_host[vh_host]:
        ctx = RouteContext(
            labels=labels,
            namespace=gw.namespace,
            port=port,
            delegates=delegates,
            cluster_for=lambda d, ns, p: _cluster_for(snapshot, d, ns, p),
            default_export_to=snapshot.mesh.default_virtual_service_export_to,
            gateway=gateway_key(gw),
        )
        routes.extend(build_routes(vs, ctx))
    vhost = f"{vh_host}:{port}"
    refs = ", ".join(vs.ref for _, vs in by_host[vh_host])
    chosen = first_match(routes, http_request(call))
    if chosen is None or chosen.action != "route" or not chosen.destinations:
        what = "no route matches the request" if chosen is None else f"{chosen.where} does not route"
        return GatewayRoute(
            route=name,
            vhost=vhost,
            virtual_service=chosen.vs.ref if chosen is not None else by_host[vh_host][0][1].ref,
            reason="no-route" if chosen is None else "",
            note=f"{refs}: {what}",
        )
    i = max(range(len(chosen.destinations)), key=lambda k: chosen.destinations[k][1])
    return GatewayRoute(
        route=name,
        vhost=vhost,
        virtual_service=chosen.vs.ref,
        cluster=chosen.destinations[i][0],
        host=chosen.hosts[i],
    )


def _l4_rule_applies(rule: RouteRule, gw: Gateway, vs: VirtualService, port: int, sni: str | None) -> bool:
    if not rule.match:
        return rule.kind == "tcp"
    for m in rule.match:
        gateways = [str(g) for g in m.get("gateways") or ()]
        if gateways and gateway_key(gw) not in {g if "/" in g else f"{vs.namespace}/{g}" for g in gateways}:
            continue
        if m.get("port") and int(m["port"]) != port:
            continue
        if rule.kind == "tls":
            sni_hosts = [str(h).lower() for h in m.get("sniHosts") or ()]
            if not sni or not any(host_matches(h, sni) for h in sni_hosts):
                continue
        return True
    return False


def l4_route(
    snapshot: Snapshot, gw: Gateway, servers: Sequence[GatewayServer], sni: str | None, kind: str
) -> GatewayRoute:
    """The filter chain of a TLS passthrough (`kind` "tls", matched by SNI) or TCP server."""
    port = servers[0].port.number
    for vs in bound_virtual_services(snapshot, gw):
        if not vs_hosts_on(servers, gw, vs):
            continue
        for rule in vs.tls if kind == "tls" else vs.tcp:
            if rule.destinations and _l4_rule_applies(rule, gw, vs, port, sni):
                cluster, host = _cluster_for(snapshot, rule.destinations[0], vs.namespace, port)
                chain = f"{{server_names={sni}}}" if kind == "tls" else "{}"
                return GatewayRoute(filter_chain=chain, virtual_service=vs.ref, cluster=cluster, host=host)
    what = f"SNI {sni or '(none)'}" if kind == "tls" else "TCP"
    return GatewayRoute(
        reason="no-filter-chain",
        note=f"no VirtualService bound to {gw.ref} has a {kind} route for {what} on port {port}",
    )


def destination(snapshot: Snapshot, host: str, port: int, namespace: str) -> MeshService | None:
    """The service behind a gateway cluster, as the gateway's namespace sees it (exportTo)."""
    for svc in snapshot.services_for_host(host):
        if svc.port(port) is not None and service_exported(snapshot, svc, namespace).allowed:
            return svc
    return None
