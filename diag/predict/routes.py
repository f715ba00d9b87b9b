"""HTTP routes, VirtualServices, DestinationRules, upstream TLS and the DNS proxy's answers for a proxy.

Sources (istio/istio 86c9f01f):
- route configs: `pilot/pkg/networking/core/httproute.go` `BuildSidecarOutboundVirtualHosts`
  (one vhost per service `host:port`, domains = host, Kubernetes short names
  (`generateAltVirtualHostsForKubernetesService`), addresses for this proxy; last service with a
  hostname wins), `buildCatchAllVirtualHost` (`block_all` 502 / `allow_any` → PassthroughCluster
  or the Sidecar's egressProxy), `getVirtualHostsForSniffedServicePort` (auto port on a VIP: one
  vhost with domains `*`, no catch-all); Envoy picks exact domains, then the longest wildcard,
  then `*`, ignoring the port (`ignore_port_in_host_matching`).
- VirtualServices: mesh-bound (`gateways` empty or `mesh`), exportTo, hosts matching; the most
  specific VS host owns the virtual host; its routes (built and matched in `diag.predict.http`)
  replace the default route, and a request none of them matches gets 404 NR.
- DestinationRules: client namespace, then service namespace, then root namespace
  (`push_context.go` `destinationRule`), exportTo (`defaultDestinationRuleExportTo`), most
  specific host; workloadSelector DRs only for selected workloads in their namespace.
- upstream TLS: `cluster_tls.go` `buildUpstreamTLSSettings` — a DR's TLS wins (even for
  MESH_EXTERNAL); else auto-mTLS only for MESH_INTERNAL, only on endpoints labelled
  `security.istio.io/tlsMode: istio` (or with a serviceAccount), never for ORIGINAL_DST (NONE).
- DNS proxy: `pkg/dns/server/name_table.go` `BuildNameTable` — Services and entries in the
  proxy's scope with an address for this proxy (no wildcard hosts, no 0.0.0.0).
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import replace as dc_replace

from diag.model.resources import ClientTls, DestinationRule, RouteDestination, VirtualService
from diag.model.snapshot import MeshService, Snapshot, host_matches
from diag.predict.endpoints import headless_answer
from diag.predict.http import HttpRequest, HttpRoute, RouteContext, build_routes, delegate_index, first_match
from diag.predict.listeners import cluster_name
from diag.predict.model import Prediction, UpstreamTls
from diag.predict.scope import WILDCARD, ProxyScope, mesh_virtual_services, resolve_short_host, vs_hosts
from diag.predict.visibility import config_exported


@dataclass(frozen=True, kw_only=True)
class VhostChoice:
    """The virtual host Envoy picks and where its (first) route goes."""

    vhost: str  # "host:port", "block_all", "allow_any"
    cluster: str | None  # None for block_all's direct response
    service: MeshService | None = None
    via: str | None = None  # VirtualService ref
    note: str = ""
    action: str = "route"  # "route" | "redirect" | "direct_response" | "no_route" (404 NR)
    route_name: str | None = None  # the route's own name (VirtualService rules)
    status: int | None = None  # redirect code / direct response status
    weighted: tuple[tuple[str, int], ...] = ()
    tried: tuple[str, ...] = ()  # the VirtualService routes Envoy tried, in order


def _domains(scope: ProxyScope, svc: MeshService, domain_suffix: str) -> set[str]:
    names = {svc.host}
    if svc.kind == "Service" and f".svc.{domain_suffix}" in svc.host:
        name, ns = svc.resource.name, svc.namespace
        names |= {f"{name}.{ns}", f"{name}.{ns}.svc"}
        if ns == scope.source.namespace:
            names.add(name)
    addr = scope.address_for(svc)
    if addr != WILDCARD and "/" not in addr:
        names.add(addr)
    return names


def catch_all(scope: ProxyScope) -> VhostChoice:
    """`buildCatchAllVirtualHost`: allow_any (Passthrough or egressProxy) or block_all (502)."""
    if scope.mode.mode.startswith("ALLOW_ANY"):
        return VhostChoice(vhost="allow_any", cluster=scope.mode.egress_proxy or "PassthroughCluster")
    return VhostChoice(vhost="block_all", cluster=None)


def pick_vhost(
    scope: ProxyScope, route: str, port: int, host: str, request: HttpRequest | None = None
) -> VhostChoice | None:
    """The vhost of route config `route` for Host `host` and the route Envoy picks for `request`
    (default: GET /) in it (None: no vhost matches → 404 NR). Envoy picks the vhost by the Host
    header, so the request's `:authority` (when given) wins over `host`."""
    if request is not None and request.headers.get(":authority"):
        host = request.headers[":authority"]
    name = host.lower().rsplit(":", 1)[0] if host.count(":") == 1 else host.lower()
    if route != str(port):  # sniffed route "host:port" on a VIP: one vhost, domains "*"
        svc_host = route.rsplit(":", 1)[0]
        svc = scope.primary.get(svc_host)
        return VhostChoice(vhost=route, cluster=cluster_name(port, svc_host), service=svc)
    request = request or HttpRequest(headers={":authority": host})
    exact_domains, wildcards = _domain_index(scope, port)
    routed = _vs_vhost(scope, name, port, request)
    own = exact_domains.get(name)
    # a Kubernetes short name or address of a service: the virtual host a VirtualService
    # builds for the service carries the service's domains (`generateVirtualHostDomains`)
    if (
        routed is None
        and own is not None
        and own.host != name
        and name in _domains(scope, own, scope.snapshot.mesh.domain_suffix)
    ):
        routed = _vs_vhost(scope, own.host, port, request)
    if routed is not None:
        return routed
    chosen = exact_domains.get(name)
    if chosen is None:
        for svc in wildcards:
            if host_matches(svc.host, name) and (chosen is None or len(svc.host) > len(chosen.host)):
                chosen = svc
    if chosen is not None:
        return VhostChoice(
            vhost=f"{chosen.host}:{port}", cluster=cluster_name(port, chosen.host), service=chosen
        )
    return catch_all(scope)


def _domain_index(scope: ProxyScope, port: int) -> tuple[dict[str, MeshService], list[MeshService]]:
    """Route `"<port>"`'s domains → service (the last service with a hostname wins), wildcards apart."""
    key = ("domains", port)
    cached = scope.cache.get(key)
    if isinstance(cached, tuple):
        return cached
    exact: dict[str, MeshService] = {}
    wild: dict[str, MeshService] = {}
    suffix = scope.snapshot.mesh.domain_suffix
    aliases = scope.aliases
    for svc in scope.by_port.get(port, ()):
        declared = svc.port(port)
        if declared is None or declared.protocol == "UDP":  # the one protocol of family "udp"
            continue
        host = svc.host
        if host.startswith("*"):  # svc.is_wildcard
            wild[host] = svc
            continue
        if svc.resource.kind != "Service":  # `_domains` of a ServiceEntry: the host and its address
            exact[host] = svc
            addr = scope.address_for(svc)
            if addr != WILDCARD and "/" not in addr:
                exact[addr] = svc
        else:
            for domain in _domains(scope, svc, suffix):
                exact[domain] = svc
        for alias in aliases.get(host, ()):
            for domain in _domains(scope, alias, suffix):
                exact.setdefault(domain, svc)
    index = (exact, list(wild.values()))
    scope.cache[key] = index
    return index


def _vs_candidates(scope: ProxyScope, host: str) -> list[tuple[VirtualService, str, bool]]:
    """Mesh VirtualServices covering `host`, most specific host first (exact beats the longest
    wildcard, `computeWildcardHostVirtualServiceIndex`; ties keep pilot's order): (vs, the VS host
    that matched, exact?)."""
    scored: list[tuple[int, int, VirtualService, str]] = []
    for order, vs in enumerate(mesh_virtual_services(scope, host)):
        best: tuple[int, str] | None = None
        for h in vs_hosts(scope.snapshot, vs):
            score = 100_000 if h == host else (len(h) if host_matches(h, host) else -1)
            if score >= 0 and (best is None or score > best[0]):
                best = (score, h)
        if best is not None:
            scored.append((-best[0], order, vs, best[1]))
    scored.sort(key=lambda item: (item[0], item[1]))
    return [(vs, h, -neg == 100_000) for neg, _, vs, h in scored]


def vs_routes(scope: ProxyScope, vs: VirtualService, port: int) -> tuple[HttpRoute, ...]:
    """The Envoy routes `vs` gives this proxy on `port` (cached per scope)."""
    key = ("vs-routes", vs.ref, port)
    cached = scope.cache.get(key)
    if isinstance(cached, tuple):
        return cached
    snapshot = scope.snapshot
    delegates = scope.cache.get("vs-delegates")
    if not isinstance(delegates, dict):
        delegates = delegate_index(snapshot.virtual_services)
        scope.cache["vs-delegates"] = delegates
    ctx = RouteContext(
        labels=scope.source.labels,
        namespace=scope.source.namespace,
        port=port,
        delegates=delegates,
        cluster_for=lambda dest, ns, listen: _destination_cluster(scope, dest, ns, listen),
        default_export_to=snapshot.mesh.default_virtual_service_export_to,
    )
    routes = build_routes(vs, ctx)
    scope.cache[key] = routes
    return routes


def _destination_cluster(
    scope: ProxyScope, dest: RouteDestination, namespace: str, port: int
) -> tuple[str, str]:
    """`GetDestinationCluster`: (cluster name, destination host)."""
    host = resolve_short_host(dest.host, namespace, scope.snapshot.mesh.domain_suffix)
    svc = scope.primary.get(host)
    target = host
    if svc is not None and svc.resolution == "ALIAS" and svc.external_name:
        target = svc.external_name.lower().rstrip(".")
    number = dest.port
    if number is None and svc is not None:
        ports = scope.primary_ports.get(svc.host, set())
        if len(ports) == 1:
            number = next(iter(ports))
    return cluster_name(number or port, target, dest.subset), host


def _vs_vhost(scope: ProxyScope, host: str, port: int, request: HttpRequest) -> VhostChoice | None:
    """The virtual host a VirtualService owns for `host`, and the route Envoy picks in it.

    A VirtualService yielding no route for this proxy and port builds no virtual host: a host that
    is a service then keeps its default route, any other host falls to the next VirtualService."""
    is_service = scope.primary_for(host) is not None
    for vs, vh_host, _exact in _vs_candidates(scope, host):
        routes = vs_routes(scope, vs, port)
        if not routes:
            if is_service:
                return None
            continue
        vhost = f"{vh_host}:{port}"
        tried = tuple(r.describe() for r in routes)
        chosen = first_match(routes, request)
        if chosen is None:
            return VhostChoice(vhost=vhost, cluster=None, via=vs.ref, action="no_route", tried=tried,
                               note="no route of the virtual host matches the request (404 NR)")
        if chosen.action != "route":
            verb = "redirects" if chosen.action == "redirect" else "answers directly"
            return VhostChoice(vhost=vhost, cluster=None, via=chosen.vs.ref, action=chosen.action,
                               route_name=chosen.name, status=chosen.status, tried=tried,
                               note=f"{chosen.where} {verb} ({chosen.status})")
        heaviest = max(range(len(chosen.destinations)), key=lambda i: chosen.destinations[i][1], default=None)
        if heaviest is None:
            return VhostChoice(vhost=vhost, cluster=None, via=chosen.vs.ref, route_name=chosen.name,
                               tried=tried, note=f"{chosen.where} has no destination")
        cluster = chosen.destinations[heaviest][0]
        weighted = chosen.destinations if len(chosen.destinations) > 1 else ()
        note = ("weighted: " + ", ".join(f"{c} {w}" for c, w in weighted)) if weighted else ""
        return VhostChoice(vhost=vhost, cluster=cluster, service=scope.primary_for(chosen.hosts[heaviest]),
                           via=chosen.vs.ref, route_name=chosen.name, weighted=weighted,
                           tried=tried, note=note)
    return None


def with_route_outcome(prediction: Prediction, choice: VhostChoice) -> Prediction:
    """The prediction with what a VirtualService route did: no route → 404 NR from the sidecar
    (blocked, `envoy` "no_route"), a redirect (`envoy` "redirect"; the client follows it), a direct
    response (`envoy` the virtual host, as for `block_all`; blocked from 400 on)."""
    if choice.via is None or not choice.tried:
        # pilot's own routes: `DefaultRouteName` "default", or the catch-all vhost's one route
        # (`util.BlackHole` "block_all", `util.Passthrough` "allow_any")
        name = choice.vhost if choice.vhost in ("block_all", "allow_any") else "default"
        return dc_replace(prediction, route_name=name)
    verdict, envoy, status = prediction.verdict, prediction.envoy, choice.status
    if choice.action == "no_route":
        verdict, envoy, status = "blocked", "no_route", 404
    elif choice.action == "redirect":
        verdict, envoy = "allowed", "redirect"
    elif choice.action == "direct_response":
        verdict = "blocked" if (status or 0) >= 400 else "allowed"
        envoy = choice.vhost
    return dc_replace(
        prediction,
        verdict=verdict,
        envoy=envoy,
        http_action=choice.action,
        route_name=choice.route_name,
        routes_tried=choice.tried,
        weighted=choice.weighted,
        local_status=status if choice.action != "route" else None,
    )


def _dr_host_score(dr_host: str, host: str) -> int | None:
    dr = dr_host.lower()
    if dr == host:
        return 100_000
    if dr.startswith("*") and host_matches(dr, host):
        return len(dr)
    return None


def destination_rule(snapshot: Snapshot, scope: ProxyScope, host: str) -> DestinationRule | None:
    """The DR pilot applies for `host` (client ns → service ns → root ns; most specific host)."""
    source = scope.source
    svc = scope.primary_for(host)
    order = [source.namespace, svc.namespace if svc else None, snapshot.mesh.root_namespace]
    for ns in order:
        if ns is None:
            continue
        best: tuple[int, DestinationRule] | None = None
        for dr in snapshot.destination_rules:
            if dr.namespace != ns:
                continue
            selector = dr.workload_selector
            if selector is not None and (
                ns != source.namespace or any(source.labels.get(k) != v for k, v in selector.items())
            ):
                continue
            if not config_exported(snapshot, dr.export_to, dr.namespace, source.namespace, "DestinationRule"):
                continue
            score = _dr_host_score(dr.host, host.lower())
            if score is not None and (best is None or score > best[0]):
                best = (score, dr)
        if best is not None:
            return best[1]
    return None


def _dr_tls(dr: DestinationRule, port: int, subset: str) -> ClientTls | None:
    for sub in dr.subsets:
        if sub.name == subset and sub.traffic_policy is not None:
            tls = sub.traffic_policy.tls_for_port(port)
            if tls is not None:
                return tls
    return dr.traffic_policy.tls_for_port(port) if dr.traffic_policy is not None else None


def upstream_tls_for(
    snapshot: Snapshot, scope: ProxyScope, svc: MeshService, port: int, subset: str = ""
) -> UpstreamTls:
    """Upstream TLS of the service's cluster on `port`."""
    dr = destination_rule(snapshot, scope, svc.host)
    if dr is not None:
        tls = _dr_tls(dr, port, subset)
        if tls is not None:
            return UpstreamTls(mode=tls.mode, decided_by=dr.ref, sni=tls.sni)
    if not snapshot.mesh.enable_auto_mtls or svc.location != "MESH_INTERNAL" or svc.resolution == "NONE":
        return UpstreamTls(mode="NONE")
    if svc.kind == "Service":
        return UpstreamTls(mode="AUTO_ISTIO_MUTUAL", decided_by=svc.ref)
    if any(ep.istio_mtls for ep in svc.endpoints):
        return UpstreamTls(mode="AUTO_ISTIO_MUTUAL", decided_by=svc.ref)
    return UpstreamTls(mode="NONE")


def dns_answer_for(scope: ProxyScope, host: str) -> tuple[str, ...] | None:
    """What the agent's DNS proxy answers for `host` from this proxy's scope (capture only)."""
    if not scope.dns_capture:
        return None
    name = host.lower().rstrip(".")
    svc = scope.primary.get(name)
    if svc is None:
        suffix = f".svc.{scope.snapshot.mesh.domain_suffix}"

        for candidate in (f"{name}.{scope.source.namespace}{suffix}", f"{name}{suffix}"):
            svc = scope.primary.get(candidate)
            if svc is not None and svc.kind == "Service":
                break
            svc = None
    if svc is None:
        return None
    if svc.kind == "Service" and svc.headless:
        return headless_answer(svc) or None  # name_table.go: a headless Service's ready endpoints
    addrs = [scope.address_for(s) for s in scope.by_host.get(svc.host, ())]
    answer = tuple(dict.fromkeys(a for a in addrs if a != WILDCARD and "/" not in a))
    return answer or None
