"""Predict the Envoy path pilot's config gives a call, and answer the rules' side questions.

`predict(snapshot, source, call)` follows how pilot builds a sidecar's outbound config
(docs/model.md; `pilot/pkg/networking/core/listener.go`, `tls.go`, `httproute.go`,
`listener_builder.go` `buildOutboundCatchAllNetworkFiltersOnly`) and how Envoy then matches:

1. listener by original destination: `IP_port`, else `0.0.0.0_port`, else `virtualOutbound`
   (→ `virtualOutbound-catchall-tcp` → BlackHoleCluster / PassthroughCluster / egressProxy);
2. filter chain with Envoy's narrowing order (destination IP / prefix ranges, server names,
   transport protocol, ALPN), no backtracking; nothing matched → the default chain
   (a match-all TCP chain, or `PassthroughFilterChain` to the catch-all cluster);
3. HTTP chains → route config → virtual host by Host (exact, longest wildcard, `*`) → cluster, or
   `block_all`'s direct 502; a VirtualService's virtual host → the first of its routes matching the
   request (`diag.predict.http`) → cluster(s), redirect or direct response, or none (404 NR).

The listener model is `diag.predict.listeners`, the per-proxy scope `diag.predict.scope`, routes,
DestinationRules and DNS answers `diag.predict.routes`. Side questions for rules — all
index-driven, never a scan of every entry per call — live in `diag.predict.queries` and are
re-exported here.
"""

from __future__ import annotations

import ipaddress

from diag.model.snapshot import MeshService, Snapshot
from diag.predict.endpoints import headless_answer
from diag.predict.hosts import resolve_call
from diag.predict.http import http_request
from diag.predict.listeners import (
    PASSTHROUGH_CHAIN,
    ChainIndex,
    ChainModel,
    ListenerModel,
    listeners_for_port,
    sni_matches,
)
from diag.predict.model import (
    AddressOwner,
    Call,
    Candidate,
    Decision,
    EnvoyPath,
    ModeDecision,
    NearName,
    PortOwner,
    Prediction,
    Source,
    UpstreamTls,
)
from diag.predict.queries import (
    bound_addresses,
    candidates,
    destination_rule_for,
    dns_answer,
    near_names,
    port_owner,
    upstream_tls,
    virtual_services_for,
)
from diag.predict.routes import catch_all, dns_answer_for, pick_vhost, upstream_tls_for, with_route_outcome
from diag.predict.scope import WILDCARD, ProxyScope, scope_for

__all__ = [
    "AddressOwner",
    "Call",
    "Candidate",
    "Decision",
    "EnvoyPath",
    "ModeDecision",
    "NearName",
    "PortOwner",
    "Prediction",
    "Source",
    "UpstreamTls",
    "address_owners",
    "bound_addresses",
    "candidates",
    "destination_rule_for",
    "dns_answer",
    "near_names",
    "port_owner",
    "predict",
    "upstream_tls",
    "virtual_services_for",
]

VIRTUAL_OUTBOUND = "virtualOutbound"
CATCHALL_CHAIN = "virtualOutbound-catchall-tcp"
BLACKHOLE_CHAIN = "virtualOutbound-blackhole"


def predict(snapshot: Snapshot, source: Source, call: Call) -> Prediction:
    """The path, verdict and deciding resources for `call` made by `source` (a short name is first
    resolved as the pod's resolver would: `diag.predict.hosts`)."""
    scope = scope_for(snapshot, source)
    call, resolved = resolve_call(snapshot, source, call)
    notes: list[str] = [resolved] if resolved else []
    dns = dns_answer_for(scope, call.host)
    address, assumption = dialled_address(scope, call, dns)
    listeners = listeners_for_port(scope, call.port)
    if assumption == UNBOUND:
        assumption = unbound_assumption(scope, call, listeners)
    assumptions = (assumption,) if assumption else ()
    listener = listeners.get(address) if address else None
    listener = listener or listeners.get(WILDCARD)
    if listener is None:
        return _virtual_outbound(scope, call, address, dns, assumptions, notes)
    chain = select_chain(listener, call, address)
    if (
        chain is None
        and call.protocol == "http"
        and call.http_version == "1.0"
        and listener.has_http_inspector
    ):
        notes.append("HTTP/1.0 does not match the HTTP chain's ALPN (PILOT_HTTP10 is off): falls through")
    base = EnvoyPath(listener=listener.name, filter_chain=(chain.label if chain else PASSTHROUGH_CHAIN))
    if chain is None:
        cluster = scope.mode.egress_proxy or _catchall_cluster(scope)
        path = EnvoyPath(listener=base.listener, filter_chain=base.filter_chain, cluster=cluster)
        return _finish(scope, call, path, None, None, listener, address, dns, assumptions, notes, catch=True)
    if chain.route is None:
        path = EnvoyPath(listener=base.listener, filter_chain=base.filter_chain, cluster=chain.cluster)
        return _finish(
            scope, call, path, chain.service, chain.via, listener, address, dns, assumptions, notes
        )
    choice = pick_vhost(scope, chain.route, call.port, call.host, http_request(call))
    if choice is None:
        path = EnvoyPath(listener=base.listener, filter_chain=base.filter_chain, route=chain.route)
        notes.append("no virtual host matches (404 NR)")
        return _finish(scope, call, path, None, None, listener, address, dns, assumptions, notes)
    if choice.note:
        notes.append(choice.note)
    path = EnvoyPath(
        listener=base.listener,
        filter_chain=base.filter_chain,
        route=chain.route,
        vhost=choice.vhost,
        cluster=choice.cluster,
    )
    catch = choice.vhost in ("block_all", "allow_any")
    return with_route_outcome(
        _finish(
            scope, call, path, choice.service, choice.via, listener, address, dns, assumptions, notes, catch
        ),
        choice,
    )


def dialled_address(scope: ProxyScope, call: Call, dns: tuple[str, ...] | None) -> tuple[str | None, str]:
    """(address the client dials, the assumption made to get it, "" when none was needed)."""
    if call.address:
        return call.address, ""
    if call.host_is_ip:
        return call.host.strip("[]"), ""
    if dns:
        return dns[0], ""
    svc = scope.primary.get(scope.resolve_alias(call.host.lower()))
    if svc is not None and svc.kind == "Service":
        ready = headless_answer(svc) if svc.headless else ()
        if ready:
            shown = ", ".join(ready[:3]) + (f", … {len(ready)} in all" if len(ready) > 3 else "")
            return ready[0], f"assumed {call.host} resolves to {ready[0]} (DNS gives its endpoints: {shown})"
        addr = scope.address_for(svc)
        note = f"{svc.ref} has no clusterIP in the input: assumed {addr}" if svc.assumed_address else ""
        return (addr if addr != WILDCARD else None), note
    for candidate in scope.by_host.get(call.host.lower(), ()):
        ips = candidate.ip_addresses
        if ips:
            return ips[0], f"assumed {call.host} resolves to its entry's address {ips[0]} ({candidate.ref})"
    return None, UNBOUND


UNBOUND = "unbound"  # marker: the address is unknown; `unbound_assumption` words it


def unbound_assumption(scope: ProxyScope, call: Call, listeners: dict[str, ListenerModel]) -> str:
    """The assumption made when the dialled address is unknown, naming the addresses it excludes
    and where they would lead ("" when no listener on the port depends on the address).

    The verdict then rests on it: an address inside a CIDR chain (e.g. a TCP entry listing a
    provider's published ranges) or on an IP-bound listener of the port takes another path.
    """
    key = ("unbound-owners", call.port)
    # the port's listeners are built once per scope and not changed after: their owners' wording
    # is worked out once too (only for that cached listener map)
    mine = listeners is scope.cache.get(("listeners", call.port))
    owned = scope.cache.get(key) if mine else None
    if owned is None:
        owned = _owners_text(_address_owners(listeners))
        if mine:
            scope.cache[key] = owned
    if not owned:
        return ""
    return (
        f"assumed {call.host} resolves to none of the addresses port {call.port} is bound to for this "
        f"proxy: {owned}. No address was given, so public DNS decides; an address among "
        "them takes that path instead"
    )


def _owners_text(owners: tuple[AddressOwner, ...]) -> str:
    parts = []
    for owner in owners:
        shown = ", ".join(owner.addresses[:3])
        if len(owner.addresses) > 3:
            shown += f", … {len(owner.addresses)} in all"
        parts.append(f"{shown} ({owner.ref} → {owner.target})")
    return "; ".join(parts)


def address_owners(snapshot: Snapshot, source: Source, port: int) -> tuple[AddressOwner, ...]:
    """Who owns the address-specific matches on `port` for this proxy: CIDR chains on `0.0.0.0`
    and IP-bound listeners, grouped by owning object and destination."""
    return _address_owners(listeners_for_port(scope_for(snapshot, source), port))


def _address_owners(listeners: dict[str, ListenerModel]) -> tuple[AddressOwner, ...]:
    owners: dict[tuple[str, str], list[str]] = {}
    for bind, listener in sorted(listeners.items()):
        if bind == WILDCARD:
            for chain, nets in listener.index().cidr:
                key = (chain.service.ref if chain.service else "a filter chain", chain.cluster or "?")
                owners.setdefault(key, []).extend(str(n) for n in nets)
            continue
        chains, default = listener.finalized()
        for chain in [*chains, *([default] if default else [])]:
            key = (chain.service.ref if chain.service else "a listener", chain.cluster or chain.route or "?")
            owners.setdefault(key, []).append(bind)
    return tuple(
        AddressOwner(ref=ref, target=target, addresses=tuple(dict.fromkeys(addrs)))
        for (ref, target), addrs in owners.items()
    )


def _catchall_cluster(scope: ProxyScope) -> str:
    """`buildOutboundCatchAllNetworkFiltersOnly`: Passthrough/egressProxy in ALLOW_ANY, else BlackHole."""
    if scope.mode.mode.startswith("ALLOW_ANY"):
        return scope.mode.egress_proxy or "PassthroughCluster"
    return "BlackHoleCluster"


def _virtual_outbound(
    scope: ProxyScope,
    call: Call,
    address: str | None,
    dns: tuple[str, ...] | None,
    assumptions: tuple[str, ...],
    notes: list[str],
) -> Prediction:
    """`listener_builder.go`: 15001 itself hits `virtualOutbound-blackhole`; 15006 is handed to the
    `virtualInbound` listener, whose `virtualInbound-blackhole` chain drops it (loop guards)."""
    if call.port == 15006:
        path = EnvoyPath(
            listener="virtualInbound", filter_chain="virtualInbound-blackhole", cluster="BlackHoleCluster"
        )
        notes.append("port 15006 is the inbound capture port: the virtualInbound listener blackholes it")
        return _finish(scope, call, path, None, None, None, address, dns, assumptions, notes, catch=True)
    chain = BLACKHOLE_CHAIN if call.port == 15001 else CATCHALL_CHAIN
    cluster = "BlackHoleCluster" if call.port == 15001 else _catchall_cluster(scope)
    path = EnvoyPath(listener=VIRTUAL_OUTBOUND, filter_chain=chain, cluster=cluster)
    notes.append(f"no listener for port {call.port} on this proxy")
    return _finish(scope, call, path, None, None, None, address, dns, assumptions, notes, catch=True)


def _detected(listener: ListenerModel, call: Call) -> tuple[str, str | None, tuple[str, ...]]:
    """(transport protocol, SNI, ALPN) the listener filters detect for this call."""
    tls = call.protocol in ("https", "tls")
    transport = "tls" if tls and listener.has_tls_inspector else "raw_buffer"
    sni = call.effective_sni if tls and listener.has_tls_inspector else None
    alpn: tuple[str, ...] = ()
    if call.protocol == "http" and listener.has_http_inspector:
        alpn = {"1.0": ("http/1.0",), "2": ("h2c",)}.get(call.http_version, ("http/1.1",))
    return transport, sni, alpn


def _cidr_pool(index: ChainIndex, address: str | None) -> list[ChainModel] | None:
    """Chains whose prefix ranges hold the address, most specific only; None = no CIDR chain matches."""
    if address is None or not index.cidr:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    best, pool = -1, []
    for chain, nets in index.cidr:
        lengths = [n.prefixlen for n in nets if n.version == ip.version and ip in n]
        if not lengths:
            continue
        top = max(lengths)
        if top > best:
            best, pool = top, [chain]
        elif top == best:
            pool.append(chain)
    return pool or None


def _sni_pool(index: ChainIndex, pool: list[ChainModel] | None, sni: str | None) -> list[ChainModel]:
    if pool is not None:  # a (small) CIDR-narrowed pool: score linearly
        if sni:
            scored = [(c, sni_matches(tuple(n for n in c.sni if n != "*"), sni)) for c in pool]
            hits = [(c, s) for c, s in scored if s is not None]
            if hits:
                top = max(s for _, s in hits)
                return [c for c, s in hits if s == top]
        return [c for c in pool if not [n for n in c.sni if n != "*"]]
    if sni:
        exact = index.exact_sni.get(sni)
        if exact:
            return list(exact)
        wild = index.wildcard_hits(sni)
        if wild:
            return wild
    return list(index.no_sni)


def select_chain(listener: ListenerModel, call: Call, address: str | None) -> ChainModel | None:
    """Envoy's filter chain match on a listener; None = the default (Passthrough) chain.

    Narrowing order (Envoy `FilterChainManagerImpl`): destination IP (longest prefix, else chains
    without prefixes), server name (exact, longest wildcard, else none), transport protocol,
    application protocols; an empty set at any step means the default chain.
    """
    index = listener.index()
    transport, sni, alpn = _detected(listener, call)
    pool = _sni_pool(index, _cidr_pool(index, address), sni)
    exact_transport = [c for c in pool if c.transport == transport]
    pool = exact_transport or [c for c in pool if not c.transport]
    exact_alpn = [c for c in pool if c.alpn and set(c.alpn) & set(alpn)]
    pool = exact_alpn or [c for c in pool if not c.alpn]
    if pool:
        return pool[0]
    return index.default


def _verdict(cluster: str | None, vhost: str | None, scope: ProxyScope) -> str:
    if vhost == "block_all" or cluster == "BlackHoleCluster":
        return "blocked"
    if (
        cluster == "PassthroughCluster"
        or vhost == "allow_any"
        or (cluster and cluster == scope.mode.egress_proxy)
    ):
        return "passthrough"
    if cluster and cluster.startswith("outbound|"):
        return "allowed"
    return "unknown"


def _cluster_exists(scope: ProxyScope, cluster: str) -> bool:
    parts = cluster.split("|")
    if len(parts) != 4:
        return True
    host, port = parts[3], parts[1]
    svc = scope.primary_for(host)
    return svc is not None and (not port.isdigit() or int(port) in scope.primary_ports.get(svc.host, set()))


def _finish(
    scope: ProxyScope,
    call: Call,
    path: EnvoyPath,
    service: MeshService | None,
    via: str | None,
    listener: ListenerModel | None,
    address: str | None,
    dns: tuple[str, ...] | None,
    assumptions: tuple[str, ...],
    notes: list[str],
    catch: bool = False,
) -> Prediction:
    verdict = _verdict(path.cluster, path.vhost, scope)
    if path.cluster and path.cluster.count("|") == 3:
        service = scope.primary_for(path.cluster.split("|")[3]) or service  # the cluster's owner
    matched: list[str] = []
    if via:
        matched.append(via)
        routed = scope.primary_for(call.host)
        if routed is not None:
            matched.append(routed.ref)
    if service is not None:
        matched.append(service.ref)
    tls = None
    if verdict == "allowed" and path.cluster:
        if not _cluster_exists(scope, path.cluster):
            notes.append(f"cluster {path.cluster} is not in this proxy's config (503 NC)")
            verdict = "blocked"
        elif service is not None:
            parts = path.cluster.split("|")
            subset = parts[2] if len(parts) == 4 else ""
            # The cluster's port decides its upstream TLS (a route may send port 80 to port 443).
            port = int(parts[1]) if len(parts) == 4 and parts[1].isdigit() else call.port
            tls = upstream_tls_for(scope.snapshot, scope, service, port, subset)
            if tls.decided_by and tls.decided_by.startswith("DestinationRule"):
                matched.append(tls.decided_by)
    if scope.mode.egress_proxy and path.cluster == scope.mode.egress_proxy:
        notes.append(f"unknown traffic goes to the egressProxy set by {scope.mode.decided_by}")
    envoy = "block_all" if path.vhost == "block_all" else (path.cluster or "unknown")
    return Prediction(
        verdict=verdict,
        envoy=envoy,
        path=path,
        matched=tuple(dict.fromkeys(matched)),
        mode=scope.mode.mode,
        mode_from=scope.mode.decided_by,
        notes=tuple(notes),
        assumptions=assumptions,
        service=service,
        listener_address=listener.bind if listener else None,
        dialled_address=address,
        dns_answer=dns,
        upstream_tls=tls,
        sidecar=scope.sidecar.ref if scope.sidecar else None,
        unmodelled=scope.unmodelled,
        catch_all=catch,
    )


def catch_all_choice(scope: ProxyScope) -> str:
    """The catch-all vhost name for this proxy ("block_all" or "allow_any")."""
    return catch_all(scope).vhost
