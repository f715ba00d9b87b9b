"""The catch-alls every sidecar gets: ``virtualOutbound`` and the Blackhole/Passthrough clusters.

Pilot sources:
- ``pilot/pkg/networking/core/listener_builder.go`` ``buildVirtualOutboundListener``: listener
  ``virtualOutbound`` on 0.0.0.0:15001 with ``use_original_dst``; chains ``virtualOutbound-blackhole``
  (destination_port 15001 → BlackHoleCluster, the loop guard) and ``virtualOutbound-catchall-tcp``.
- same file, ``buildOutboundCatchAllNetworkFiltersOnly``: ALLOW_ANY → PassthroughCluster (or the
  Sidecar's ``egressProxy`` cluster), anything else → BlackHoleCluster. The same filters form each
  port listener's ``PassthroughFilterChain`` (``listener.go`` ``buildListenerFromEntry``).
- ``pilot/pkg/networking/core/listener_inbound.go`` ``buildInboundBlackhole`` /
  ``buildInboundPassthroughChains`` and ``listener_builder.go`` ``buildVirtualInboundListener``:
  listener ``virtualInbound`` on 0.0.0.0:15006 (``use_original_dst``), first chain
  ``virtualInbound-blackhole`` (destination_port 15006 → BlackHoleCluster: a call *to* the capture
  port is dropped, the loop guard), then the plaintext TCP passthrough chain (0.0.0.0/0 →
  InboundPassthroughCluster). Pilot's HTTP catch-all and mTLS chains are not generated (the lab has
  no inbound HTTP filters or PeerAuthentication).
- ``pilot/pkg/networking/core/cluster_builder.go`` ``buildBlackHoleCluster`` (STATIC, no endpoints),
  ``buildDefaultPassthroughCluster`` (ORIGINAL_DST, CLUSTER_PROVIDED) and
  ``buildInboundPassthroughCluster`` (ORIGINAL_DST, upstream bind 127.0.0.6); ``cluster.go``
  ``BuildClusters`` adds all three to every sidecar whatever the mode.
"""

from __future__ import annotations

from typing import Any

from lab.istiod.envoy import (
    BLACKHOLE_CLUSTER,
    INBOUND_PASSTHROUGH_CLUSTER,
    PASSTHROUGH_CLUSTER,
    VIRTUAL_OUTBOUND,
    duration,
    socket_address,
    tcp_proxy_filter,
)

VIRTUAL_OUTBOUND_PORT = 15001
VIRTUAL_INBOUND_PORT = 15006  # ProxyInboundListenPort
VIRTUAL_INBOUND = "virtualInbound"


def catchall_cluster(mode: str, egress_proxy_cluster: str | None) -> str:
    """Where unmatched TCP goes (``buildOutboundCatchAllNetworkFiltersOnly``)."""
    if mode in ("ALLOW_ANY", "ALLOW_ANY_DYNAMIC_DNS"):
        return egress_proxy_cluster or PASSTHROUGH_CLUSTER
    return BLACKHOLE_CLUSTER


def catchall_filters(mode: str, egress_proxy_cluster: str | None) -> list[dict[str, Any]]:
    cluster = catchall_cluster(mode, egress_proxy_cluster)
    return [tcp_proxy_filter(cluster)]


def virtual_outbound_listener(mode: str, egress_proxy_cluster: str | None) -> dict[str, Any]:
    return {
        "name": VIRTUAL_OUTBOUND,
        "address": socket_address("0.0.0.0", VIRTUAL_OUTBOUND_PORT),
        "use_original_dst": True,
        "traffic_direction": "OUTBOUND",
        "filter_chains": [
            {
                "name": "virtualOutbound-blackhole",
                "filter_chain_match": {"destination_port": VIRTUAL_OUTBOUND_PORT},
                "filters": [tcp_proxy_filter(BLACKHOLE_CLUSTER)],
            },
            {
                "name": "virtualOutbound-catchall-tcp",
                "filters": catchall_filters(mode, egress_proxy_cluster),
            },
        ],
    }


def virtual_inbound_listener() -> dict[str, Any]:
    """``virtualInbound`` (see the module docstring): blackhole 15006 itself, pass the rest through."""
    return {
        "name": VIRTUAL_INBOUND,
        "address": socket_address("0.0.0.0", VIRTUAL_INBOUND_PORT),
        "use_original_dst": True,
        "traffic_direction": "INBOUND",
        "filter_chains": [
            {
                "name": "virtualInbound-blackhole",
                "filter_chain_match": {"destination_port": VIRTUAL_INBOUND_PORT},
                "filters": [tcp_proxy_filter(BLACKHOLE_CLUSTER)],
            },
            {
                "name": VIRTUAL_INBOUND,
                "filter_chain_match": {"prefix_ranges": [{"address_prefix": "0.0.0.0", "prefix_len": 0}]},
                "filters": [tcp_proxy_filter(INBOUND_PASSTHROUGH_CLUSTER)],
            },
        ],
    }


def catchall_clusters(connect_timeout_s: float) -> list[dict[str, Any]]:
    timeout = duration(connect_timeout_s)
    return [
        {"name": BLACKHOLE_CLUSTER, "type": "STATIC", "connect_timeout": timeout},
        {
            "name": PASSTHROUGH_CLUSTER,
            "type": "ORIGINAL_DST",
            "lb_policy": "CLUSTER_PROVIDED",
            "connect_timeout": timeout,
        },
        {
            "name": INBOUND_PASSTHROUGH_CLUSTER,
            "type": "ORIGINAL_DST",
            "lb_policy": "CLUSTER_PROVIDED",
            "connect_timeout": timeout,
            "upstream_bind_config": {"source_address": {"address": "127.0.0.6", "port_value": 0}},
        },
    ]
