"""HTTP routes, VirtualServices, DestinationRules, upstream TLS and the DNS proxy's answers for a proxy.

Sources (istio/istio 86c9f01f):
- route configs: `pilot/pkg/networking/core/httproute.go` `BuildSidecarOutboundVirtualHosts`
  (one vhost per service `host:port`, domains = host, Kubernetes short names
  (`generateAltVirtualHostsForKubernetesService`), addresses for this proxy; last service with a
  hostname wins), `buildCatchAllVirtualHost` (`block_all` 502 / `allow_any` → PassthroughCluster
  or the Sidecar's egressProxy), `getVirtualHostsForSniffedServicePort` (auto port on a VIP: one
  vhost with domains `*`, no catch-all); Envoy picks exact domains, then the longest wildcard,
  then `*`, ignoring the port (`ignore_port_in_host_matching`).
- VirtualServices: mesh-bound (`gateways` empty or `mesh`), exportTo, hosts matching.
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

from diag.predict_listeners import cluster_name
from diag.predict_model import UpstreamTls
from diag.predict_scope import WILDCARD, ProxyScope, mesh_virtual_services, resolve_short_host, vs_hosts
from diag.resources import ClientTls, DestinationRule, VirtualService
from diag.snapshot import MeshService, Snapshot, host_matches
from diag.visibility import config_exported


@dataclass(frozen=True, kw_only=True)
class VhostChoice:
    """The virtual host Envoy picks and where its (first) route goes."""

    vhost: str  # "host:port", "block_all", "allow_any"
    cluster: str | None  # None for block_all's direct response
    service: MeshService | None = None
    via: str | None = None  # VirtualService ref
    note: str = ""


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


def pick_vhost(scope: ProxyScope, route: str, port: int, host: str) -> VhostChoice | None:
    """The vhost of route config `route` for Host `host` (None: no vhost matches → 404 NR)."""
    name = host.lower().rsplit(":", 1)[0] if host.count(":") == 1 else host.lower()
    if route != str(port):  # sniffed route "host:port" on a VIP: one vhost, domains "*"
        svc_host = route.rsplit(":", 1)[0]
        svc = scope.primary.get(svc_host)
        return VhostChoice(vhost=route, cluster=cluster_name(port, svc_host), service=svc)
    routed = _vs_vhost(scope, name, port)
    if routed is not None:
        return routed
    exact_domains, wildcards = _domain_index(scope, port)
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
    for svc in scope.by_port.get(port, ()):
        declared = svc.port(port)
        if declared is None or declared.family == "udp":
            continue
        if svc.is_wildcard:
            wild[svc.host] = svc
            continue
        for domain in _domains(scope, svc, suffix):
            exact[domain] = svc
        for alias in scope.aliases.get(svc.host, ()):
            for domain in _domains(scope, alias, suffix):
                exact.setdefault(domain, svc)
    index = (exact, list(wild.values()))
    scope.cache[key] = index
    return index


def _vs_vhost(scope: ProxyScope, host: str, port: int) -> VhostChoice | None:
    """The VirtualService that owns `host`'s vhost: an exact host beats a wildcard (most specific
    wins, `computeWildcardHostVirtualServiceIndex`); otherwise the first in pilot's order."""
    best: tuple[int, VirtualService, str] | None = None
    for vs in mesh_virtual_services(scope, host):
        if not any(r.destinations or r.has_direct_response or r.has_redirect for r in vs.http):
            continue
        for h in vs_hosts(scope.snapshot, vs):
            score = 100_000 if h == host else (len(h) if host_matches(h, host) else -1)
            if score >= 0 and (best is None or score > best[0]):
                best = (score, vs, h)
    if best is None:
        return None
    _, vs, vh_host = best
    first = next(r for r in vs.http if r.destinations or r.has_direct_response or r.has_redirect)
    note = "first http route taken; its match conditions are not evaluated" if first.match else ""
    if not first.destinations:
        return VhostChoice(
            vhost=f"{vh_host}:{port}", cluster=None, via=vs.ref, note="direct response/redirect"
        )
    dest = first.destinations[0]
    dest_host = resolve_short_host(dest.host, vs.namespace, scope.snapshot.mesh.domain_suffix)
    return VhostChoice(
        vhost=f"{vh_host}:{port}",
        cluster=cluster_name(dest.port or port, dest_host, dest.subset),
        service=scope.primary_for(dest_host),
        via=vs.ref,
        note=note,
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
    addrs = [scope.address_for(s) for s in scope.by_host.get(svc.host, ())]
    answer = tuple(dict.fromkeys(a for a in addrs if a != WILDCARD and "/" not in a))
    return answer or None
