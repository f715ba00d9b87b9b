"""Sidecar outbound port listeners: bind choice, filter-chain options and pilot's conflict rules.

Pilot sources (``pilot/pkg/networking/core``):
- ``listener.go`` ``buildSidecarOutboundListeners``: one pass over the egress listener's services
  and ports; resolution-NONE entries without an address and with endpoints get one listener per
  endpoint IP, without endpoints a wildcard listener; ExternalName aliases get none.
- ``listener.go`` ``buildSidecarOutboundListener``: TCP/auto ports bind the address in use
  (``GetAddressForProxy``: ClusterIP, the SE address, the auto-allocated VIP when this proxy uses
  it, else 0.0.0.0); a CIDR binds 0.0.0.0 with a ``prefix_ranges`` match; HTTP binds 0.0.0.0 and its
  chain matches ``raw_buffer`` + ALPN ``http/1.1``,``h2c`` (``plaintextHTTPALPNs``; ``http/1.0`` only
  with ``PILOT_HTTP10``); auto ports get a TCP chain plus an HTTP chain; conflicts on one
  (bind, port): HTTP+TCP and auto+TCP merge into a sniffed listener, TCP+TCP merges chains with
  distinct matches (``mergeTCPFilterChains``/``conflictsWith``: the first identical match wins),
  HTTP after HTTP/auto adds nothing, auto after auto merges only its TCP chains, auto over HTTP
  replaces it, Mongo/MySQL
  mismatches drop the newcomer (``isConflictWithWellKnownPort``).
- ``buildSidecarOutboundHTTPListenerOpts``: route ``"<port>"``, or ``"host:port"`` for an auto port
  bound to a VIP.
- ``tls.go`` ``buildSidecarOutboundTLSFilterChainOpts``/``…TCPFilterChainOpts``: cluster
  ``outbound|PORT||HOST``; TLS chains match ``server_names`` (host, aliases and their short forms) only
  for a CIDR, an empty
  address, or a wildcard address on a wildcard bind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from lab.istiod import protocol
from lab.istiod.envoy import cluster_name
from lab.istiod.hosts import alt_hosts
from lab.istiod.model import ALIAS, KUBERNETES, PASSTHROUGH, UNSPECIFIED_IP, MeshPort, MeshService
from lab.istiod.vschains import configs_for_host, tcp_route_chains, tls_route_chains
from lab.istiod.vsparse import VirtualService

WILDCARD = UNSPECIFIED_IP
PLAINTEXT_ALPNS = ("http/1.1", "h2c")
PLAINTEXT_ALPNS_HTTP10 = ("http/1.0", "http/1.1", "h2c")


@dataclass
class ChainOpts:
    """``filterChainOpts``: match criteria plus either a tcp_proxy cluster or an HTTP route name."""

    sni_hosts: list[str] = field(default_factory=list)
    cidrs: list[str] = field(default_factory=list)
    alpns: list[str] = field(default_factory=list)
    transport: str = ""
    cluster: str = ""
    route: str = ""  # set for HTTP chains
    weighted: list[tuple[str, int]] = field(default_factory=list)  # VS tcp/tls routes to several clusters
    stat_prefix: str = ""

    def is_match_all(self) -> bool:
        return ((not self.sni_hosts or "*" in self.sni_hosts) and not self.alpns and not self.transport
                and not self.cidrs)

    def match_key(self) -> tuple[str, tuple[str, ...], frozenset[str], frozenset[str]]:
        """Two chains conflict (``conflictsWith``) exactly when their keys are equal."""
        return (self.transport, tuple(self.alpns), frozenset(s for s in self.sni_hosts if s != "*"),
                frozenset(_cidr_set(self.cidrs)))

    def conflicts_with(self, other: ChainOpts) -> bool:
        return self.match_key() == other.match_key()


@dataclass
class ListenerEntry:
    """``outboundListenerEntry``: one (bind, port) listener being assembled."""

    bind: str
    port: int
    protocol: str
    chains: list[ChainOpts]
    keys: set[tuple[str, tuple[str, ...], frozenset[str], frozenset[str]]] = field(default_factory=set)
    locked: bool = False  # built for a Sidecar egress listener with a port: nothing more is added

    def __post_init__(self) -> None:
        self.keys = {chain.match_key() for chain in self.chains}


@dataclass
class OutboundListenerBuilder:
    """Accumulates listener entries service port by service port, as pilot does."""

    uses_auto_allocation: bool
    http10: bool = False
    proxy_namespace: str = "default"
    pod_ips: tuple[str, ...] = ()
    virtual_services: Sequence[VirtualService] = ()
    services_by_host: Mapping[str, MeshService] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    entries: dict[tuple[str, int], ListenerEntry] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add_service(self, svc: MeshService) -> None:
        if svc.resolution == ALIAS:
            return
        address = svc.address_for_proxy(self.uses_auto_allocation)
        for port in svc.ports:
            per_endpoint = (svc.resolution == PASSTHROUGH and address == UNSPECIFIED_IP
                            and (protocol.is_tcp(port.protocol) or protocol.is_unsupported(port.protocol)))
            if not per_endpoint:
                self.add_port(svc, port, None)
                continue
            instances = [ep for ep in svc.endpoints if svc.registry != KUBERNETES or port.name in ep.ports]
            if svc.registry != KUBERNETES and not instances and not svc.has_workload_selector:
                self.add_port(svc, port, None)
                continue
            for ep in instances:
                if _is_ip(ep.address) and ep.address not in self.pod_ips:
                    self.add_port(svc, port, ep.address)

    def add_port(self, svc: MeshService, port: MeshPort, bind: str | None) -> None:
        kind = protocol.listener_protocol(port.protocol)
        if kind == "none":
            return
        cidr = ""
        if kind == "http":
            bind = WILDCARD
        elif bind is None:
            address = svc.address_for_proxy(self.uses_auto_allocation)
            bind, cidr = (WILDCARD, address) if "/" in address else (address, "")
        key = (bind, port.number)
        current = self.entries.get(key)
        if current is not None and current.locked:
            return
        new_protocol = port.protocol
        conflict = "none"
        if kind == "http":
            if current is not None:
                if not protocol.is_tcp(current.protocol):
                    return
                conflict = "http_over_tcp"
            opts = [self._http_chain(svc, port, bind, auto=False)]
            if bind == WILDCARD:
                new_protocol = protocol.UNSUPPORTED
        elif kind == "tcp":
            opts = self._tcp_chains(svc, port, bind, cidr)
            if current is not None:
                conflict = ("tcp_over_http" if protocol.is_http(current.protocol) else
                            "tcp_over_tcp" if protocol.is_tcp(current.protocol) else "tcp_over_auto")
        else:
            if current is not None:
                if protocol.is_http(current.protocol):
                    conflict = "auto_over_http"
                elif protocol.is_tcp(current.protocol):
                    conflict = "auto_over_tcp"
                else:
                    conflict = "tcp_over_auto"  # auto after auto: only the TCP (e.g. CIDR) chains merge
            opts = self._tcp_chains(svc, port, bind, cidr)
            if conflict != "tcp_over_auto":
                opts.append(self._http_chain(svc, port, bind, auto=True))
        if current is not None and _well_known_conflict(port.protocol, current.protocol):
            self.notes.append(f"listener {bind}_{port.number}: {svc.ref} ({port.protocol}) dropped: "
                              f"conflicts with {current.protocol} on a well-known port")
            return
        if conflict in ("none", "auto_over_http"):
            self.entries[key] = ListenerEntry(bind=bind, port=port.number, protocol=new_protocol, chains=opts)
            return
        assert current is not None
        self._merge(current, opts, svc)
        if conflict in ("http_over_tcp", "tcp_over_http", "auto_over_tcp"):
            current.protocol = protocol.UNSUPPORTED

    def add_egress_port(self, svc: MeshService, port: MeshPort) -> None:
        """A service of a Sidecar egress listener with a port: the listener takes that port's
        protocol (``buildSidecarOutboundListeners``, user-specified port branch)."""
        if svc.resolution != ALIAS:
            self.add_port(svc, port, None)

    def lock(self) -> None:
        """Before the catch-all egress listener: entries built so far take nothing more."""
        for entry in self.entries.values():
            entry.locked = True

    def _merge(self, current: ListenerEntry, incoming: list[ChainOpts], svc: MeshService) -> None:
        for opt in incoming:
            if opt.match_key() in current.keys:
                self.notes.append(f"listener {current.bind}_{current.port}: a chain of {svc.ref} "
                                  f"({svc.hostname}) dropped: same match as an earlier one")
                continue
            current.chains.append(opt)
            current.keys.add(opt.match_key())

    def _http_chain(self, svc: MeshService, port: MeshPort, bind: str, *, auto: bool) -> ChainOpts:
        route = f"{svc.hostname}:{port.number}" if auto and bind != WILDCARD else str(port.number)
        chain = ChainOpts(route=route)
        if auto or bind == WILDCARD:
            chain.alpns = list(PLAINTEXT_ALPNS_HTTP10 if self.http10 else PLAINTEXT_ALPNS)
            chain.transport = "raw_buffer"
        return chain

    def _tcp_chains(self, svc: MeshService, port: MeshPort, bind: str, cidr: str) -> list[ChainOpts]:
        number = svc.ports[0].number if len(svc.ports) == 1 else port.number
        cluster = cluster_name(number, svc.hostname)
        cidrs = [cidr] if cidr else []
        configs = configs_for_host(self.virtual_services, svc.hostname)
        args = (configs, cidrs, port.number, self.services_by_host, self.labels, self.proxy_namespace)
        if not protocol.is_tls(port.protocol):
            tcp_routes, terminal = tcp_route_chains(*args)
            chains = [_routed(ChainOpts(cidrs=c), dest, prefix) for c, dest, prefix in tcp_routes]
            return chains if terminal else [*chains, ChainOpts(cidrs=cidrs, cluster=cluster)]
        tls_routes = tls_route_chains(*args)
        if tls_routes:
            return [_routed(ChainOpts(sni_hosts=sni, cidrs=c), dest, pre) for sni, c, dest, pre in tls_routes]
        listen = svc.address_for_proxy(self.uses_auto_allocation)
        if "/" in listen:
            listen = ""
        sni: list[str] = []
        if cidrs or not listen or (listen == WILDCARD and bind == WILDCARD):
            sni = [svc.hostname]
            for alias in svc.aliases:
                sni.extend([alias, *alt_hosts(alias, self.proxy_namespace)])
        return [ChainOpts(sni_hosts=sni, cidrs=cidrs, cluster=cluster)]


def _routed(chain: ChainOpts, destinations: list[tuple[str, int]], prefix: str) -> ChainOpts:
    """A chain to a VS route: one cluster, or weighted clusters with the VS's stat prefix."""
    if len(destinations) == 1 and destinations[0][1] == 0:
        chain.cluster = destinations[0][0]
    else:
        chain.weighted = list(destinations)
        chain.stat_prefix = prefix
    return chain

def _cidr_set(cidrs: list[str]) -> set[str]:
    """``conflictsWith``'s CIDR set: masked prefixes, the unspecified address left out."""
    import ipaddress

    out = set()
    for cidr in cidrs:
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            continue
        if not net.network_address.is_unspecified:
            out.add(str(net))
    return out


def _is_ip(value: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _well_known_conflict(incoming: str, existing: str) -> bool:
    special = (protocol.MONGO, protocol.MYSQL)
    return (incoming in special or existing in special) and incoming != existing
