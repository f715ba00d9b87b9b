"""The listeners, clusters and other pieces a lab sidecar's bootstrap adds around the generated
config: Istio's ``:15021``/``:15090`` bootstrap listeners and their clusters
(``tools/packaging/common/envoy_bootstrap.json``), the JSON access log with the keys of Istio's
JSON access-log format (``pilot/pkg/model/telemetry_logging.go``; a test oracle only), xDS files
for Envoy's filesystem subscription, and c-ares resolvers instead of ``/etc/resolv.conf``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

# Keys of Istio's JSON access-log format (EnvoyJSONLogFormatIstio); values are Envoy operators.
ACCESS_LOG_JSON_FORMAT: Mapping[str, str] = {
    "start_time": "%START_TIME%",
    "method": "%REQ(:METHOD)%",
    "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
    "protocol": "%PROTOCOL%",
    "response_code": "%RESPONSE_CODE%",
    "response_flags": "%RESPONSE_FLAGS%",
    "response_code_details": "%RESPONSE_CODE_DETAILS%",
    "connection_termination_details": "%CONNECTION_TERMINATION_DETAILS%",
    "upstream_transport_failure_reason": "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
    "bytes_received": "%BYTES_RECEIVED%",
    "bytes_sent": "%BYTES_SENT%",
    "duration": "%DURATION%",
    "upstream_service_time": "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
    "x_forwarded_for": "%REQ(X-FORWARDED-FOR)%",
    "user_agent": "%REQ(USER-AGENT)%",
    "request_id": "%REQ(X-REQUEST-ID)%",
    "authority": "%REQ(:AUTHORITY)%",
    "upstream_host": "%UPSTREAM_HOST%",
    "upstream_cluster": "%UPSTREAM_CLUSTER_RAW%",
    "upstream_local_address": "%UPSTREAM_LOCAL_ADDRESS%",
    "downstream_local_address": "%DOWNSTREAM_LOCAL_ADDRESS%",
    "downstream_remote_address": "%DOWNSTREAM_REMOTE_ADDRESS%",
    "requested_server_name": "%REQUESTED_SERVER_NAME%",
    "route_name": "%ROUTE_NAME%",
}

_HCM = "envoy.filters.network.http_connection_manager"
_TCP_PROXY = "envoy.filters.network.tcp_proxy"
_HCM_TYPE = (
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
)
_ROUTER = {
    "name": "envoy.filters.http.router",
    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
}
LISTENER_TYPE = "type.googleapis.com/envoy.config.listener.v3.Listener"
CLUSTER_TYPE = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ENVOY_STATUS_PORT = 15021
ENVOY_PROMETHEUS_PORT = 15090
AGENT_STATUS_PORT = 15020


def _file_access_log(path: str) -> dict[str, Any]:
    return {
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": path,
            "log_format": {"json_format": dict(ACCESS_LOG_JSON_FORMAT)},
        },
    }


def with_access_logs(listeners: Sequence[Mapping[str, Any]], path: str) -> list[dict[str, Any]]:
    """Copies of ``listeners`` where every HCM and tcp_proxy filter also logs to ``path``."""
    out = [copy.deepcopy(dict(listener)) for listener in listeners]
    for listener in out:
        chains = list(listener.get("filter_chains") or [])
        if listener.get("default_filter_chain"):
            chains.append(listener["default_filter_chain"])
        for chain in chains:
            for flt in chain.get("filters") or []:
                if flt.get("name") in (_HCM, _TCP_PROXY) and isinstance(flt.get("typed_config"), dict):
                    logs = flt["typed_config"].setdefault("access_log", [])
                    logs.append(_file_access_log(path))
    return out


def _static_cluster(name: str, port: int) -> dict[str, Any]:
    endpoint = {
        "address": {"socket_address": {"protocol": "TCP", "address": "127.0.0.1", "port_value": port}}
    }
    return {
        "name": name, "type": "STATIC", "connect_timeout": "0.250s", "lb_policy": "ROUND_ROBIN",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": endpoint}]}]},
    }  # fmt: skip


def _status_listener(port: int, stat_prefix: str, prefix: str, cluster: str) -> dict[str, Any]:
    route = {"match": {"prefix": prefix}, "route": {"cluster": cluster}}
    hcm = {
        "@type": _HCM_TYPE, "codec_type": "AUTO", "stat_prefix": stat_prefix,
        "route_config": {"virtual_hosts": [{"name": "backend", "domains": ["*"], "routes": [route]}]},
        "http_filters": [_ROUTER],
    }  # fmt: skip
    return {
        "address": {"socket_address": {"protocol": "TCP", "address": "0.0.0.0", "port_value": port}},
        "filter_chains": [{"filters": [{"name": _HCM, "typed_config": hcm}]}],
    }


def istio_status_resources(admin_port: int = 15000) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The bootstrap's own listeners and clusters (``envoy_bootstrap.json``): ``:15090``
    ``/stats/prometheus`` → ``prometheus_stats`` (admin) and ``:15021`` ``/healthz/ready`` →
    ``agent`` (pilot-agent's status port 15020). So readiness goes *through Envoy*: with Envoy
    down, ``:15021`` refuses connections, as on a real pod."""
    listeners = [
        _status_listener(ENVOY_PROMETHEUS_PORT, "stats", "/stats/prometheus", "prometheus_stats"),
        _status_listener(ENVOY_STATUS_PORT, "agent", "/healthz/ready", "agent"),
    ]
    clusters = [_static_cluster("prometheus_stats", admin_port), _static_cluster("agent", AGENT_STATUS_PORT)]
    return listeners, clusters


def xds_file(type_url: str, resources: Sequence[Mapping[str, Any]], version: str) -> dict[str, Any]:
    """A DiscoveryResponse for Envoy's filesystem subscription (``path_config_source``)."""
    return {"version_info": version, "resources": [{"@type": type_url, **dict(r)} for r in resources]}


def cares_resolver(resolvers: Sequence[tuple[str, int]]) -> dict[str, Any]:
    """A ``typed_dns_resolver_config`` for c-ares with explicit resolvers (no ``/etc/resolv.conf``)."""
    return {
        "name": "envoy.network.dns_resolver.cares",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.network.dns_resolver.cares.v3."
            "CaresDnsResolverConfig",
            "resolvers": [{"socket_address": {"address": ip, "port_value": port}} for ip, port in resolvers],
            "use_resolvers_as_fallback": False,
            "dns_resolver_options": {"use_tcp_for_dns_lookups": False, "no_default_search_domain": True},
        },
    }
