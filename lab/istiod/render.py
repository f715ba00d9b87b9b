"""Listener entries → Envoy v3 Listener JSON.

Pilot source: ``pilot/pkg/networking/core/listener.go`` ``buildListenerFromEntry``: name
``<bind>_<port>``, ``bind_to_port: false``, ``continue_on_listener_filters_timeout``; a TLS
inspector when any chain matches SNI, the HTTP inspector when any chain matches ALPN;
``listener_filters_timeout`` = mesh ``protocolDetectionTimeout`` only with the HTTP inspector,
else 0; a match-all chain becomes the ``default_filter_chain`` (or the only chain when alone);
otherwise the default chain is ``PassthroughFilterChain`` with the catch-all filters;
``toFilterChainMatch`` sorts server names and prefix ranges.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from lab.istiod.envoy import (
    HTTP_INSPECTOR,
    PASSTHROUGH_FILTER_CHAIN,
    TCP_PROXY,
    TLS_INSPECTOR,
    socket_address,
    tcp_proxy_filter,
)
from lab.istiod.listeners import ChainOpts, ListenerEntry
from lab.istiod.routes import http_connection_manager

RouteFor = Callable[[str], dict[str, Any]]


def _prefix_range(cidr: str) -> dict[str, Any]:
    net = ipaddress.ip_network(cidr, strict=False)
    return {"address_prefix": str(net.network_address), "prefix_len": net.prefixlen}


def chain_match(opt: ChainOpts) -> dict[str, Any]:
    match: dict[str, Any] = {}
    if opt.sni_hosts and "*" not in opt.sni_hosts:
        match["server_names"] = sorted(opt.sni_hosts)
    if opt.cidrs:
        ranges = [_prefix_range(c) for c in sorted(opt.cidrs)]
        ranges = [r for r in ranges if r["address_prefix"] != "0.0.0.0" or r["prefix_len"] != 0]
        if ranges:
            match["prefix_ranges"] = ranges
    if opt.transport:
        match["transport_protocol"] = opt.transport
    if opt.alpns:
        match["application_protocols"] = list(opt.alpns)
    return match


def render_listener(entry: ListenerEntry, route_for: RouteFor, catchall: list[dict[str, Any]],
                    detection_timeout: str, http10: bool) -> dict[str, Any]:
    name = f"{entry.bind}_{entry.port}"
    listener: dict[str, Any] = {
        "name": name,
        "address": socket_address(entry.bind, entry.port),
        "bind_to_port": False,
        "traffic_direction": "OUTBOUND",
        "continue_on_listener_filters_timeout": True,
    }
    need_tls = any(opt.sni_hosts for opt in entry.chains)
    need_http = any(opt.alpns for opt in entry.chains)
    filters = []
    if need_tls:
        filters.append({"name": "envoy.filters.listener.tls_inspector",
                        "typed_config": {"@type": TLS_INSPECTOR}})
    if need_http:
        filters.append({"name": "envoy.filters.listener.http_inspector",
                        "typed_config": {"@type": HTTP_INSPECTOR}})
    if filters:
        listener["listener_filters"] = filters
    listener["listener_filters_timeout"] = detection_timeout if need_http else "0s"
    chains: list[dict[str, Any]] = []
    default: dict[str, Any] | None = None
    for opt in entry.chains:
        if opt.route:
            net_filters = [http_connection_manager(name, route_for(opt.route), http10)]
        elif opt.weighted:
            clusters = [{"name": c, "weight": w} for c, w in opt.weighted]
            proxy = {"@type": TCP_PROXY, "stat_prefix": opt.stat_prefix,
                     "weighted_clusters": {"clusters": clusters}}
            net_filters = [{"name": "envoy.filters.network.tcp_proxy", "typed_config": proxy}]
        else:
            net_filters = [tcp_proxy_filter(opt.cluster)]
        chain: dict[str, Any] = {"filters": net_filters}
        if opt.is_match_all():
            default = chain
        else:
            chain["filter_chain_match"] = chain_match(opt)
            chains.append(chain)
    if default is not None and not chains:
        chains = [default]
        default = None
    elif default is None:
        default = {"name": PASSTHROUGH_FILTER_CHAIN, "filter_chain_match": {}, "filters": catchall}
    listener["filter_chains"] = chains
    if default is not None:
        listener["default_filter_chain"] = default
    return listener
