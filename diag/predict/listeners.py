"""The outbound listeners pilot builds for one port of one proxy (a model, not Envoy JSON).

Follows `pilot/pkg/networking/core/listener.go` `buildSidecarOutboundListeners` /
`buildSidecarOutboundListener` / `buildListenerFromEntry` / `mergeTCPFilterChains` and `tls.go`
`buildSidecarOutboundTLSFilterChainOpts` / `buildSidecarOutboundTCPFilterChainOpts` (istio 86c9f01f):

- HTTP-family ports bind `0.0.0.0`; their chain matches raw_buffer + ALPN http/1.1, h2c (+http/1.0
  with PILOT_HTTP10) and uses the shared route `"<port>"`; the entry then counts as "auto" so
  later TCP services merge into it.
- TCP-family and auto ports bind `GetAddressForProxy` (ClusterIP, the SE address, a CIDR → 0.0.0.0
  + prefix_ranges, the auto VIP for DNS-capturing proxies, else 0.0.0.0).
- TLS/HTTPS chains carry `server_names` only on wildcard/CIDR binds (or a DYNAMIC_DNS wildcard).
- Auto ports get a TCP chain plus an HTTP chain (route `"host:port"` on a VIP, `"<port>"` on 0.0.0.0).
- Conflicts: HTTP over TCP and TCP over HTTP/auto merge chains; an identical chain keeps the first;
  Mongo/MySQL mismatches drop the newcomer; a second HTTP service on the port adds only vhosts.
- A match-all chain becomes the default chain (the only chain when alone); otherwise the listener
  gets `PassthroughFilterChain` to the catch-all cluster.
- NONE-resolution TCP/auto services without an address: one `<endpoint IP>_<port>` listener per
  endpoint (headless Services from their EndpointSlices), or the wildcard listener for a
  ServiceEntry without endpoints (`diag.predict.endpoints`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from diag.model.loader import paused_gc
from diag.model.resources import KNOWN_PROTOCOLS, TLS_FAMILY, Port, listener_family
from diag.model.snapshot import MeshService, host_matches
from diag.predict.endpoints import binds_for
from diag.predict.scope import WILDCARD, ProxyScope, _vs_index, mesh_virtual_services

PLAINTEXT_ALPN = ("http/1.1", "h2c")
PLAINTEXT_ALPN_HTTP10 = ("http/1.1", "http/1.0", "h2c")
PASSTHROUGH_CHAIN = "PassthroughFilterChain"
_EMPTY: frozenset[str] = frozenset()


class ChainModel(NamedTuple):
    """One filter chain: its match and where it sends traffic (a NamedTuple: built by the thousand)."""

    sni: tuple[str, ...] = ()
    cidrs: tuple[str, ...] = ()
    alpn: tuple[str, ...] = ()
    transport: str = ""
    cluster: str | None = None  # tcp_proxy target
    route: str | None = None  # HCM route config name
    service: MeshService | None = None
    via: str | None = None  # ref of a VirtualService that set the destination
    name: str = ""

    @property
    def match_all(self) -> bool:
        """No match criteria (filterChainOpts.isMatchAll)."""
        return (not self.sni or "*" in self.sni) and not self.alpn and not self.transport and not self.cidrs

    @property
    def label(self) -> str:
        """The chain's name, or its match criteria as `diag.live.path.chain_label` prints them."""
        if self.name:
            return self.name
        parts: list[str] = []
        if self.cidrs:
            parts.append("prefix_ranges=" + "|".join(sorted(_as_cidr(c) for c in self.cidrs)))
        if self.sni and "*" not in self.sni:
            parts.append("server_names=" + "|".join(sorted(self.sni)))
        if self.transport:
            parts.append(f"transport_protocol={self.transport}")
        if self.alpn:
            parts.append("application_protocols=" + "|".join(self.alpn))
        return "{" + ",".join(parts) + "}"

    def conflict_key(self) -> tuple[str, tuple[str, ...], frozenset[str], frozenset[str]]:
        """filterChainOpts.conflictsWith as a key: same transport, ALPN, SNI set and masked CIDRs."""
        names = self.sni
        if not names:
            sni = _EMPTY
        elif "*" in names:
            sni = frozenset(s for s in names if s != "*")
        else:  # nothing to drop: the names as they are
            sni = frozenset(names)
        return (self.transport, self.alpn, sni, _masked(self.cidrs) if self.cidrs else _EMPTY)

    def conflicts_with(self, other: ChainModel) -> bool:
        """filterChainOpts.conflictsWith."""
        return self.conflict_key() == other.conflict_key()


@dataclass(eq=False, kw_only=True)
class ListenerModel:
    """One outbound listener `bind_port`."""

    bind: str
    port: int
    protocol: str  # "" once HTTP on the wildcard or a merge made it auto
    chains: list[ChainModel] = field(default_factory=list)
    services: list[MeshService] = field(default_factory=list)
    keys: set[tuple[str, tuple[str, ...], frozenset[str], frozenset[str]]] = field(default_factory=set)
    _index: ChainIndex | None = None

    def add_chain(self, chain: ChainModel, *, dedupe: bool) -> None:
        """Append a chain; with `dedupe` a chain conflicting with an existing one is dropped."""
        names = chain.sni
        if not chain.cidrs and (not names or "*" not in names):  # conflict_key() of the usual chain
            key = (chain.transport, chain.alpn, frozenset(names) if names else _EMPTY, _EMPTY)
        else:
            key = chain.conflict_key()
        if dedupe and key in self.keys:
            return
        self.keys.add(key)
        self.chains.append(chain)
        self._index = None

    def index(self) -> ChainIndex:
        """The finalized chains indexed for matching (built once)."""
        if self._index is None:
            self._index = ChainIndex.build(*self.finalized(), added=self.chains)
        return self._index

    @property
    def name(self) -> str:
        """Pilot's listener name (`getListenerName`)."""
        return f"{self.bind}_{self.port}"

    def finalized(self) -> tuple[list[ChainModel], ChainModel | None]:
        """(filter_chains, default_filter_chain); default None = PassthroughFilterChain."""
        match_all: list[ChainModel] = []
        others: list[ChainModel] = []
        for c in self.chains:
            (match_all if c.match_all else others).append(c)
        if match_all and not others:
            return [match_all[-1]], None
        return others, (match_all[-1] if match_all else None)

    @property
    def has_http_inspector(self) -> bool:
        """An ALPN-matching chain adds http_inspector (and protocolDetectionTimeout)."""
        return self.index().http_inspector

    @property
    def has_tls_inspector(self) -> bool:
        """An SNI-matching chain adds tls_inspector."""
        return self.index().tls_inspector


def _as_cidr(value: str) -> str:
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return value
    if "/" in value:
        return f"{value.split('/', 1)[0]}/{net.prefixlen}"
    return f"{value}/{net.max_prefixlen}"


def _masked(cidrs: tuple[str, ...]) -> frozenset[str]:
    out = set()
    for c in cidrs:
        try:
            net = ipaddress.ip_network(c, strict=False)
        except ValueError:
            continue
        if str(net.network_address) not in ("0.0.0.0", "::"):
            out.add(str(net))
    return frozenset(out)


def cluster_name(port: int, host: str, subset: str = "") -> str:
    """`model.BuildSubsetKey(outbound, subset, host, port)`."""
    return f"outbound|{port}|{subset}|{host}"


def listeners_for_port(scope: ProxyScope, port: int) -> dict[str, ListenerModel]:
    """bind → listener for this proxy and port (cached on the scope)."""
    key = ("listeners", port)
    cached = scope.cache.get(key)
    if isinstance(cached, dict):
        return cached
    built: dict[str, ListenerModel] = {}
    with paused_gc():
        for svc in scope.by_port.get(port, ()):
            for svc_port in svc.ports:  # svc.port(port): the first port with the number
                if svc_port.number == port:
                    _add_service(scope, built, svc, svc_port)
                    break
    scope.cache[key] = built
    return built


# listener_family of every normalised protocol, looked up instead of called per service port
_FAMILIES = {protocol: listener_family(protocol) for protocol in (*KNOWN_PROTOCOLS, "")}


def _add_service(scope: ProxyScope, built: dict[str, ListenerModel], svc: MeshService, port: Port) -> None:
    protocol = port.protocol
    family = _FAMILIES.get(protocol) or port.family
    if family == "udp" or protocol == "HTTP_PROXY" or svc.resolution == "ALIAS":
        return  # buildSidecarOutboundListener: Alias services build nothing themselves
    if family == "http":  # binds_for: HTTP-family ports bind the wildcard only
        _add_bound(scope, built, svc, port, family, WILDCARD, ())
        return
    # scope.address_for(svc): without addresses and auto-allocated VIPs, the wildcard
    address = WILDCARD if not svc.addresses and not scope.uses_auto_ips else scope.address_for(svc)
    if "/" not in address and (address != WILDCARD or svc.resolution != "NONE"):
        # binds_for's plain case: no per-endpoint listeners, no CIDR, so the one bind is the address
        _add_bound(scope, built, svc, port, family, address, (), address)
        return
    for bind, cidrs in binds_for(scope, svc, port, family, address=address):
        _add_bound(scope, built, svc, port, family, bind, cidrs, address)


def _add_bound(
    scope: ProxyScope,
    built: dict[str, ListenerModel],
    svc: MeshService,
    port: Port,
    family: str,
    bind: str,
    cidrs: tuple[str, ...],
    address: str | None = None,
) -> None:
    """`address` is `scope.address_for(svc)` when the caller has it already."""
    current = built.get(bind)
    if family == "http":
        if current is not None and current.protocol not in _TCPISH:
            current.services.append(svc)
            return
        if current is not None and _well_known_clash(port.protocol, current.protocol):
            scope.notes.append(f"{svc.ref}: port {port.number} dropped (Mongo/MySQL protocol conflict)")
            return
        new_protocol = "" if bind == WILDCARD else port.protocol
        chain = _http_chain(scope, svc, port, bind)
        _place(built, current, bind, port, new_protocol, [chain], svc, merge=current is not None)
        return
    tcp = _tcp_chains(scope, svc, port, bind, cidrs, address)
    if current is not None and _well_known_clash(port.protocol, current.protocol):
        scope.notes.append(f"{svc.ref}: port {port.number} dropped (Mongo/MySQL protocol conflict)")
        return
    if family == "tcp":
        if current is None:
            _place(built, None, bind, port, None, tcp, svc, merge=False)
            return
        for incoming in tcp:  # _place's merge branch, inlined for the thousands of TCP/TLS services
            current.add_chain(incoming, dedupe=True)
        current.services.append(svc)
        if current.protocol in _HTTPISH:
            current.protocol = ""
        return
    if current is None or current.protocol in _HTTPISH:
        _place(built, None, bind, port, "", [*tcp, _http_chain(scope, svc, port, bind)], svc, merge=False)
    elif current.protocol in _TCPISH:
        _place(built, current, bind, port, "", [*tcp, _http_chain(scope, svc, port, bind)], svc, merge=True)
    else:
        _place(built, current, bind, port, None, tcp, svc, merge=True)


_HTTPISH = frozenset({"HTTP", "HTTP2", "GRPC", "GRPC-WEB"})
_TCPISH = frozenset({"TCP", "HTTPS", "TLS", "MONGO", "MYSQL", "REDIS"})


_WELL_KNOWN = frozenset({"MONGO", "MYSQL"})


def _well_known_clash(incoming: str, existing: str) -> bool:
    return (incoming in _WELL_KNOWN or existing in _WELL_KNOWN) and incoming != existing


def _place(
    built: dict[str, ListenerModel],
    current: ListenerModel | None,
    bind: str,
    port: Port,
    protocol: str | None,
    chains: list[ChainModel],
    svc: MeshService,
    *,
    merge: bool,
) -> None:
    if not merge or current is None:
        listener = ListenerModel(
            bind=bind, port=port.number, protocol=port.protocol if protocol is None else protocol
        )
        for chain in chains:
            listener.add_chain(chain, dedupe=False)
        listener.services.append(svc)
        built[bind] = listener
        return
    for incoming in chains:
        current.add_chain(incoming, dedupe=True)
    current.services.append(svc)
    if protocol is not None:
        current.protocol = protocol


def _http_chain(scope: ProxyScope, svc: MeshService, port: Port, bind: str) -> ChainModel:
    alpn = PLAINTEXT_ALPN_HTTP10 if scope.source.http10 else PLAINTEXT_ALPN
    sniffed = port.family == "auto" and bind != WILDCARD
    route = f"{svc.host}:{port.number}" if sniffed else str(port.number)
    if port.family == "http" and bind != WILDCARD:
        return ChainModel(route=route, service=svc)
    return ChainModel(alpn=alpn, transport="raw_buffer", route=route, service=svc)


def _tcp_chains(
    scope: ProxyScope,
    svc: MeshService,
    port: Port,
    bind: str,
    cidrs: tuple[str, ...],
    address: str | None = None,
) -> list[ChainModel]:
    """`address` is `scope.address_for(svc)` when the caller has it already."""
    if scope.snapshot.virtual_services:  # without any, _vs_chains has nothing to route
        routed = _vs_chains(scope, svc, port, cidrs)
        if routed:
            return routed
    host = svc.host
    ports = svc.ports
    cluster = f"outbound|{ports[0].number if len(ports) == 1 else port.number}||{host}"  # cluster_name
    if port.protocol in TLS_FAMILY:
        listen = scope.address_for(svc) if address is None else address
        listen = "" if "/" in listen else listen
        dynamic = host.startswith("*") and svc.resolution == "DYNAMIC_DNS"
        use_sni = cidrs or not listen or (listen == WILDCARD and bind == WILDCARD) or dynamic
        aliases = scope.aliases.get(host) if use_sni else None  # scope.aliases_of(host), when any
        sni = ((host, *(a.host for a in aliases)) if aliases else (host,)) if use_sni else ()
        return [_new_chain(ChainModel, (sni, cidrs, (), "", cluster, None, svc, None, ""))]
    return [_new_chain(ChainModel, ((), cidrs, (), "", cluster, None, svc, None, ""))]


# ChainModel's fields in order: sni, cidrs, alpn, transport, cluster, route, service, via, name.
# tuple.__new__ with all of them is what the NamedTuple's keyword constructor ends in.
_new_chain = tuple.__new__


def _vs_chains(scope: ProxyScope, svc: MeshService, port: Port, cidrs: tuple[str, ...]) -> list[ChainModel]:
    """Mesh VirtualService `tls`/`tcp` routes for the service host (first destination wins)."""
    exact, wild = _vs_index(scope.snapshot)
    if not wild and svc.host.lower() not in exact:  # no VirtualService names the host: none apply
        return []
    out: list[ChainModel] = []
    for vs in mesh_virtual_services(scope, svc.host):
        rules = vs.tls if port.protocol in TLS_FAMILY else vs.tcp
        for rule in rules:
            if not rule.destinations:
                continue
            dest = rule.destinations[0]
            cluster = cluster_name(dest.port or port.number, dest.host.lower(), dest.subset)
            matches = [m for m in rule.match if l4_source_match(m, scope, port.number)] or (
                [] if rule.match else [{}]
            )
            for m in matches:
                sni = (
                    tuple(str(h).lower() for h in m.get("sniHosts") or ())
                    if port.protocol in TLS_FAMILY
                    else ()
                )
                if port.protocol not in TLS_FAMILY and m.get("destinationSubnets"):
                    continue
                out.append(ChainModel(sni=sni, cidrs=cidrs, cluster=cluster, service=svc, via=vs.ref))
            if out and port.protocol not in TLS_FAMILY:
                return out
    return out


def l4_source_match(match: Mapping[str, Any], scope: ProxyScope, port: int) -> bool:
    """`tls.go` `matchTLS` / `matchTCP` for a sidecar: the match's `gateways` (if any) must name
    `mesh`, its `sourceLabels` be a subset of the proxy's labels, its `sourceNamespace` (if any) be
    the proxy's namespace, and its `port` (if any) the listener's. A rule none of whose matches
    pass is left out of the sidecar's config (e.g. the gateway-only rule of an egress-gateway
    VirtualService)."""
    gateways = match.get("gateways") or ()
    if gateways and "mesh" not in gateways:
        return False
    labels = match.get("sourceLabels") or {}
    own = scope.source.labels
    if isinstance(labels, Mapping) and any(own.get(str(k)) != str(v) for k, v in labels.items()):
        return False
    namespace = match.get("sourceNamespace") or ""
    if namespace and namespace != scope.source.namespace:
        return False
    number = match.get("port")
    return number in (None, 0, port)


def _effective_cidrs(chain: ChainModel) -> tuple[str, ...]:
    """Prefixes Envoy sees (pilot drops 0.0.0.0/x and ::/x from prefix_ranges)."""
    return tuple(c for c in chain.cidrs if not c.startswith(("0.0.0.0", "::/")))


@dataclass(frozen=True, kw_only=True)
class ChainIndex:
    """Finalized chains split for matching: CIDR chains, and the rest by exact/wildcard/no SNI."""

    default: ChainModel | None
    cidr: tuple[tuple[ChainModel, tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]], ...]
    exact_sni: dict[str, tuple[ChainModel, ...]]
    wildcard_sni: tuple[ChainModel, ...]
    no_sni: tuple[ChainModel, ...]
    # "*X" names by X (lower-cased) → positions in `wildcard_sni`: an SNI looks up its own suffixes
    wildcard_suffix: dict[str, tuple[int, ...]] = field(default_factory=dict)
    http_inspector: bool = False  # some chain (of all added, not only finalized) matches ALPN
    tls_inspector: bool = False  # some chain matches server names

    def wildcard_hits(self, sni: str) -> list[ChainModel]:
        """Chains of `wildcard_sni` whose best `*` name covers `sni`, the longest name only, in chain
        order — what a scan of every wildcard chain gives, from at most len(sni) + 1 lookups."""
        name = sni.lower()
        found: set[int] = set()
        for k in range(len(name) + 1):
            found.update(self.wildcard_suffix.get(name[k:], ()))
        scored = [(i, sni_matches(_wild_names(self.wildcard_sni[i]), sni)) for i in sorted(found)]
        hits = [(i, s) for i, s in scored if s is not None]
        if not hits:
            return []
        top = max(s for _, s in hits)
        return [self.wildcard_sni[i] for i, s in hits if s == top]

    @classmethod
    def build(
        cls, chains: list[ChainModel], default: ChainModel | None, added: list[ChainModel] | None = None
    ) -> ChainIndex:
        """Index the finalized `chains`; `added` (all chains, default included) sets the inspectors."""
        added = chains if added is None else added
        cidr, plain = [], []
        for chain in chains:
            prefixes = _effective_cidrs(chain) if chain.cidrs else ()
            if prefixes:
                nets = []
                for p in prefixes:
                    try:
                        nets.append(ipaddress.ip_network(p, strict=False))
                    except ValueError:
                        continue
                cidr.append((chain, tuple(nets)))
            else:
                plain.append(chain)
        exact: dict[str, list[ChainModel]] = {}
        wild, none = [], []
        for chain in plain:
            names = chain.sni
            if "*" in names:
                names = tuple(n for n in names if n != "*")
            if not names:
                none.append(chain)
            for name in names:
                if name.startswith("*"):
                    wild.append(chain)
                else:
                    found = exact.get(name)
                    if found is None:
                        exact[name] = [chain]
                    else:
                        found.append(chain)
        wildcard = tuple({id(c): c for c in wild}.values())
        suffixes: dict[str, list[int]] = {}
        for i, chain in enumerate(wildcard):
            for name in _wild_names(chain):
                if name.startswith("*"):
                    suffixes.setdefault(name[1:].lower(), []).append(i)
        return cls(
            default=default,
            cidr=tuple(cidr),
            exact_sni={k: tuple(v) for k, v in exact.items()},
            wildcard_sni=wildcard,
            no_sni=tuple(none),
            wildcard_suffix={k: tuple(dict.fromkeys(v)) for k, v in suffixes.items()},
            http_inspector=any(c.alpn for c in added),
            tls_inspector=any(c.sni for c in added),
        )


def _wild_names(chain: ChainModel) -> tuple[str, ...]:
    """The chain's server names other than the match-all `*`."""
    return tuple(n for n in chain.sni if n != "*")


def sni_matches(names: tuple[str, ...], sni: str) -> int | None:
    """Envoy server_names scoring: exact beats the longest `*.` wildcard; None = no match."""
    best: int | None = None
    for name in names:
        if name == sni:
            return 10_000
        if name.startswith("*") and host_matches(name, sni):
            best = max(best or 0, len(name))
    return best
