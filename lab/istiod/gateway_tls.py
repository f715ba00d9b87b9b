"""Gateway filter chains for TCP and TLS servers, and the downstream TLS context of terminating
servers.

Pilot sources (``pilot/pkg/networking/core``):
- ``gateway.go`` ``createGatewayTCPFilterChainOpts``: no ``tls`` → one chain from the first VS
  ``tcp`` rule matching the server (``buildGatewayNetworkFiltersFromTCPRoutes``: VS hosts overlapping
  the server's, ``pickMatchingGatewayHosts``; ``l4MultiMatch`` on ``port`` and ``gateways``);
  terminating ``tls`` (SIMPLE/MUTUAL/ISTIO_MUTUAL) → the same, with the server's SNI hosts and a
  TLS context; ``PASSTHROUGH`` → one chain per matching ``tls[].match`` with its ``sniHosts``
  (``buildGatewayNetworkFiltersFromTLSRoutes``; duplicate SNI hosts on a port skipped).
- ``networkfilter.go`` ``buildOutboundNetworkFilters``: one destination → ``tcp_proxy`` to
  ``GetDestinationCluster`` (stat prefix = cluster), several → ``weighted_clusters`` (stat prefix
  ``<VS name>.<VS namespace>``); ``buildCompleteNetworkFilters`` puts the network RBAC filters first.
- ``listener.go`` ``BuildListenerTLSContext``: ALPN ``h2,http/1.1`` (a TCP server terminating
  ISTIO_MUTUAL: ``istio-peer-exchange,h2,http/1.1``); MUTUAL/ISTIO_MUTUAL require a client
  certificate; ISTIO_MUTUAL serves the proxy's own certificate and validates peers against the
  mesh root (here: files from :class:`lab.istiod.GatewayView`); SIMPLE/MUTUAL use the server's
  ``serverCertificate``/``privateKey``/``caCertificates`` files (``credentialName`` is not modelled).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lab.istiod.envoy import TCP_PROXY, tcp_proxy_filter
from lab.istiod.gateway_routes import gateway_ref, virtual_services_for_gateway
from lab.istiod.gateway_servers import Server
from lab.istiod.hosts import matches
from lab.istiod.model import MeshService
from lab.istiod.vschains import route_destinations
from lab.istiod.vsparse import VirtualService

DOWNSTREAM_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
ALPN_HTTP = ["h2", "http/1.1"]
ALPN_DOWNSTREAM_MX = ["istio-peer-exchange", "h2", "http/1.1"]


@dataclass(frozen=True)
class GatewayCerts:
    """Files standing in for the gateway's SDS secrets (``default`` and ``ROOTCA``)."""

    cert_chain: str | None = None
    private_key: str | None = None
    mesh_ca: str | None = None


@dataclass
class GatewayChain:
    """One filter chain: SNI match, downstream TLS context, and either network filters or an HCM
    (``route`` names its route configuration)."""

    sni_hosts: list[str] = field(default_factory=list)
    tls_context: dict[str, Any] | None = None
    filters: list[dict[str, Any]] = field(default_factory=list)
    route: str = ""
    stat_prefix: str = ""


def downstream_tls(server: Server, certs: GatewayCerts, tcp_terminating: bool,
                   notes: list[str]) -> dict[str, Any] | None:
    """``BuildListenerTLSContext`` for a terminating server (None, with a note, when the lab has no
    certificate to serve)."""
    tls = server.tls or {}
    mode = server.tls_mode
    where = f"Gateway {server.gateway} server port {server.number}"
    alpn = ALPN_DOWNSTREAM_MX if (mode == "ISTIO_MUTUAL" and tcp_terminating) else ALPN_HTTP
    common: dict[str, Any] = {"alpn_protocols": list(alpn)}
    if mode == "ISTIO_MUTUAL":
        chain, key, ca = certs.cert_chain, certs.private_key, certs.mesh_ca
    else:
        if tls.get("credentialName") or tls.get("credentialNames"):
            notes.append(f"{where}: credentialName (SDS from a Secret) is not modelled: chain left out")
            return None
        chain, key = str(tls.get("serverCertificate") or ""), str(tls.get("privateKey") or "")
        ca = str(tls.get("caCertificates") or "") or None
    if not chain or not key:
        notes.append(f"{where}: {mode} without certificate files in the lab: chain left out")
        return None
    common["tls_certificates"] = [{"certificate_chain": {"filename": chain},
                                   "private_key": {"filename": key}}]
    require = mode in ("MUTUAL", "ISTIO_MUTUAL")
    if require or mode == "OPTIONAL_MUTUAL":
        if ca:
            validation: dict[str, Any] = {"trusted_ca": {"filename": ca}}
            sans = [str(s) for s in tls.get("subjectAltNames") or ()]
            if sans:
                validation["match_typed_subject_alt_names"] = [
                    {"san_type": "URI" if s.startswith("spiffe://") else "DNS", "matcher": {"exact": s}}
                    for s in sans]
            common["validation_context"] = validation
        else:
            notes.append(f"{where}: {mode} without a CA file in the lab: client certificates not verified")
    return {"@type": DOWNSTREAM_TLS, "common_tls_context": common, "require_client_certificate": require}


def _l4_match(match: Mapping[str, Any], server: Server, vs_ns: str) -> bool:
    """``l4SingleMatch``: ``port`` and ``gateways``."""
    port = int(match.get("port") or 0)
    if port and port != server.number:
        return False
    names = {gateway_ref(str(g), vs_ns) for g in match.get("gateways") or ()}
    return not names or server.gateway in names


def matching_hosts(server: Server, vs: VirtualService) -> list[str]:
    """``pickMatchingGatewayHosts``."""
    out = []
    for vs_host in vs.hosts:
        for gw_host in server.hosts:
            if "/" in gw_host:
                ns, gw_host = gw_host.split("/", 1)
                if ns != vs.meta.namespace:
                    continue
            if matches(gw_host, vs_host) and vs_host not in out:
                out.append(vs_host)
    return out


def network_filters(routes: Sequence[Mapping[str, Any]], vs: VirtualService, server: Server,
                    services: Mapping[str, MeshService],
                    rbac: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``buildOutboundNetworkFilters`` (+ the RBAC filters ahead of the proxy)."""
    dests = route_destinations(routes, services, server.number)
    if len(routes) == 1:
        proxy = tcp_proxy_filter(dests[0][0])
    else:
        config = {"@type": TCP_PROXY, "stat_prefix": f"{vs.meta.name}.{vs.meta.namespace}",
                  "weighted_clusters": {"clusters": [{"name": c, "weight": w} for c, w in dests]}}
        proxy = {"name": "envoy.filters.network.tcp_proxy", "typed_config": config}
    return [*rbac, proxy]


@dataclass
class TcpChainBuilder:
    """Builds the network chains of the TCP/TLS servers of one gateway proxy."""

    vss: Sequence[VirtualService]
    services: Mapping[str, MeshService]
    proxy_ns: str
    default_export: frozenset[str]
    certs: GatewayCerts
    rbac: Callable[[], list[dict[str, Any]]]
    notes: list[str]
    sni_by_port: dict[int, dict[str, str]] = field(default_factory=dict)

    def _bound(self, server: Server) -> list[VirtualService]:
        return virtual_services_for_gateway(self.vss, server.gateway, self.proxy_ns, self.default_export)

    def chains(self, server: Server, listener_port: int) -> list[GatewayChain]:
        """``createGatewayTCPFilterChainOpts``."""
        where = f"Gateway {server.gateway} server port {server.number}"
        if server.tls is not None and server.tls_mode == "AUTO_PASSTHROUGH":
            self.notes.append(f"{where}: AUTO_PASSTHROUGH is not modelled: no chains")
            return []
        if server.passthrough:
            return self._tls_route_chains(server, listener_port)
        filters = self._tcp_route_filters(server)
        if not filters:
            self.notes.append(f"{where}: no VirtualService tcp route matches: no chain (as pilot)")
            return []
        if server.tls is None:
            return [GatewayChain(filters=filters)]
        context = downstream_tls(server, self.certs, True, self.notes)
        if context is None:
            return []
        return [GatewayChain(sni_hosts=server.sni_hosts(), tls_context=context, filters=filters)]

    def _tcp_route_filters(self, server: Server) -> list[dict[str, Any]]:
        """``buildGatewayNetworkFiltersFromTCPRoutes``: the first matching ``tcp`` rule wins."""
        for vs in self._bound(server):
            if not matching_hosts(server, vs):
                continue
            for rule in vs.tcp:
                rule_matches = list(rule.get("match") or ())
                if rule_matches and not any(_l4_match(m, server, vs.meta.namespace) for m in rule_matches):
                    continue
                routes = list(rule.get("route") or ())
                if routes:
                    return network_filters(routes, vs, server, self.services, self.rbac())
        return []

    def _tls_route_chains(self, server: Server, listener_port: int) -> list[GatewayChain]:
        """``buildGatewayNetworkFiltersFromTLSRoutes`` for a PASSTHROUGH server."""
        out = []
        known = self.sni_by_port.setdefault(listener_port, {})
        for vs in self._bound(server):
            if not matching_hosts(server, vs):
                continue
            for rule in vs.tls:
                routes = list(rule.get("route") or ())
                if not routes:
                    continue
                for i, match in enumerate(rule.get("match") or ()):
                    if not _l4_match(match, server, vs.meta.namespace):
                        continue
                    sni = [str(h) for h in match.get("sniHosts") or ()]
                    dup = [h for h in sni if known.get(h) == server.bind]
                    if dup:
                        ref = f"VirtualService {vs.meta.namespace}/{vs.meta.name} tls match {i}"
                        self.notes.append(f"{ref}: duplicate SNI hosts {dup} on port {listener_port}: "
                                          "skipped (as pilot)")
                        continue
                    known.update({h: server.bind for h in sni})
                    filters = network_filters(routes, vs, server, self.services, self.rbac())
                    out.append(GatewayChain(sni_hosts=sni, filters=filters))
        return out
