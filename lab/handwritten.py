"""A tiny hand-written sidecar config (no generator): ``virtualOutbound`` whose catch-all goes to
``BlackHoleCluster`` (REGISTRY_ONLY) or ``PassthroughCluster`` (ALLOW_ANY).

Used by the runtime's own tests so they do not depend on ``lab.istiod``. Names and shapes follow
pilot's ``listener_builder.go`` (``buildVirtualOutboundListener``, ``blackholeFilterChain``,
``buildOutboundCatchAllNetworkFilterChains``) and ``cluster_builder.go`` (``buildBlackHoleCluster``,
``buildDefaultPassthroughCluster``).
"""

from __future__ import annotations

from typing import Any


def _tcp_proxy(cluster: str) -> dict[str, Any]:
    return {
        "name": "envoy.filters.network.tcp_proxy",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
            "stat_prefix": cluster,
            "cluster": cluster,
        },
    }


def blackhole_config(mode: str = "REGISTRY_ONLY") -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(listeners, clusters): only the outbound catch-all, in ``mode``."""
    catchall = "BlackHoleCluster" if mode == "REGISTRY_ONLY" else "PassthroughCluster"
    listeners = [
        {
            "name": "virtualOutbound",
            "address": {"socket_address": {"address": "0.0.0.0", "port_value": 15001}},
            "use_original_dst": True,
            "traffic_direction": "OUTBOUND",
            "filter_chains": [
                {
                    "name": "virtualOutbound-blackhole",
                    "filter_chain_match": {"destination_port": 15001},
                    "filters": [_tcp_proxy("BlackHoleCluster")],
                },
                {"name": "virtualOutbound-catchall-tcp", "filters": [_tcp_proxy(catchall)]},
            ],
        }
    ]
    clusters = [
        {"name": "BlackHoleCluster", "type": "STATIC", "connect_timeout": "10s"},
        {
            "name": "PassthroughCluster",
            "type": "ORIGINAL_DST",
            "lb_policy": "CLUSTER_PROVIDED",
            "connect_timeout": "10s",
        },
    ]
    return listeners, clusters
