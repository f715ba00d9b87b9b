"""A static Envoy v3 bootstrap shaped like the one pilot-agent writes for a sidecar.

What is copied from Istio (facts, not code):

- ``stats_config`` from istio/istio ``tools/packaging/common/envoy_bootstrap.json``:
  ``use_all_default_tags: false``, Istio's ``stats_tags`` list, and a ``stats_matcher`` inclusion
  list in the template's order: prefix ``reporter=``, the pod's inclusion prefixes followed by the
  required ones, the pod's suffixes followed by the required ones, the pod's regexps followed by the
  required one, then prefixes ``component`` and ``istio``.
- The required entries from ``pkg/bootstrap/config.go`` (``requiredEnvoyStatsMatcherInclusionPrefixes``
  = ``cluster_manager,listener_manager,server,cluster.xds-grpc,wasm``;
  ``rbacEnvoyStatsMatcherInclusionSuffix`` = ``rbac.allowed,rbac.denied,shadow_allowed,shadow_denied``,
  plus ``downstream_cx_active`` only with ``EXIT_ON_ZERO_ACTIVE_CONNECTIONS``;
  ``requiredEnvoyStatsMatcherInclusionRegexes`` = ``vhost\\..*\\.route\\..*``).
- ``getStatsOptions`` there: the ``sidecar.istio.io/statsInclusion*`` annotations win over
  ``proxyStatsMatcher`` from ProxyConfig (no merge); ``{pod_ip}`` is substituted with each pod IP.
- The runtime defaults of ``extractRuntimeFlags`` and an admin access log to ``/dev/null``.

What differs (the lab is static, see ``docs/lab.md``): listeners and clusters are
``static_resources`` instead of ADS, there is no ``xds-grpc``/``sds-grpc``/Prometheus listener, and
an optional c-ares resolver list replaces the pod's ``/etc/resolv.conf`` (so the lab writes nothing
under ``/etc``). Access logs are off unless ``access_log_path`` is given; then every HCM and
tcp_proxy filter gets a JSON file access log with the keys of Istio's JSON access-log format
(``pilot/pkg/model/telemetry_logging.go``) — a test oracle, never product evidence.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lab.bootstrap_resources import (
    ACCESS_LOG_JSON_FORMAT,
    AGENT_STATUS_PORT,
    CLUSTER_TYPE,
    ENVOY_PROMETHEUS_PORT,
    ENVOY_STATUS_PORT,
    LISTENER_TYPE,
    cares_resolver,
    istio_status_resources,
    with_access_logs,
    xds_file,
)

__all__ = [
    "ACCESS_LOG_JSON_FORMAT",
    "AGENT_STATUS_PORT",
    "CLUSTER_TYPE",
    "ENVOY_PROMETHEUS_PORT",
    "ENVOY_STATUS_PORT",
    "LISTENER_TYPE",
    "StatsAnnotations",
    "StatsMatcher",
    "build_bootstrap",
    "build_stats_config",
    "cares_resolver",
    "istio_status_resources",
    "stats_inclusions",
    "with_access_logs",
    "xds_file",
]

REQUIRED_PREFIXES: tuple[str, ...] = (
    "cluster_manager",
    "listener_manager",
    "server",
    "cluster.xds-grpc",
    "wasm",
)
RBAC_SUFFIXES: tuple[str, ...] = ("rbac.allowed", "rbac.denied", "shadow_allowed", "shadow_denied")
DRAIN_SUFFIX = "downstream_cx_active"
REQUIRED_REGEXPS: tuple[str, ...] = (r"vhost\..*\.route\..*",)

# (tag_name, regex) in the order of envoy_bootstrap.json (without extraStatTags).
ISTIO_STATS_TAGS: tuple[tuple[str, str], ...] = (
    ("cluster_name", r"^cluster\.((.+?(\..+?\.svc\.cluster\.local)?)\.)"),
    ("tcp_prefix", r"^tcp\.((.*?)\.)\w+?$"),
    ("response_code", r"_rq(_(\d{3}))$"),
    ("response_code_class", r"_rq(_(\dxx))$"),
    (
        "http_conn_manager_listener_prefix",
        r"^listener(?=\.).*?\.http\.(((?:[_.[:digit:]]*|[_\[\]aAbBcCdDeEfF[:digit:]]*))\.)",
    ),
    ("http_conn_manager_prefix", r"^http\.(((?:[_.[:digit:]]*|[_\[\]aAbBcCdDeEfF[:digit:]]*))\.)"),
    ("listener_address", r"^listener\.(((?:[_.[:digit:]]*|[_\[\]aAbBcCdDeEfF[:digit:]]*))\.)"),
    ("mongo_prefix", r"^mongo\.(.+?)\.(collection|cmd|cx_|op_|delays_|decoding_)(.*?)$"),
    ("cache", r"(cache\.(.+?)\.)"),
    ("component", r"(component\.(.+?)\.)"),
    ("tag", r"(tag\.(.+?);\.)"),
    ("wasm_filter", r"(wasm_filter\.(.+?)\.)"),
    ("authz_enforce_result", r"rbac(\.(allowed|denied))"),
    ("authz_dry_run_action", r"(\.istio_dry_run_(allow|deny)_)"),
    ("authz_dry_run_result", r"(\.shadow_(allowed|denied))"),
)

# extractRuntimeFlags defaults (pkg/bootstrap/config.go).
ISTIO_RUNTIME_FLAGS: Mapping[str, Any] = {
    "overload.global_downstream_max_connections": "2147483647",
    "re2.max_program_size.error_level": "32768",
    "envoy.deprecated_features:envoy.config.listener.v3.Listener."
    "hidden_envoy_deprecated_use_original_dst": True,
    "envoy.reloadable_features.http_reject_path_with_fragment": False,
}


@dataclass(frozen=True)
class StatsMatcher:
    """The pod's stats opt-in: ProxyConfig ``proxyStatsMatcher`` (from ``proxy.istio.io/config``)."""

    inclusion_prefixes: tuple[str, ...] = ()
    inclusion_suffixes: tuple[str, ...] = ()
    inclusion_regexps: tuple[str, ...] = ()

    @classmethod
    def from_proxy_config(cls, proxy_config: Mapping[str, Any] | None) -> StatsMatcher | None:
        """Read ``proxyStatsMatcher`` out of a ProxyConfig dict (None when absent)."""
        raw = (proxy_config or {}).get("proxyStatsMatcher")
        if not isinstance(raw, Mapping):
            return None
        return cls(
            inclusion_prefixes=tuple(str(v) for v in raw.get("inclusionPrefixes") or ()),
            inclusion_suffixes=tuple(str(v) for v in raw.get("inclusionSuffixes") or ()),
            inclusion_regexps=tuple(str(v) for v in raw.get("inclusionRegexps") or ()),
        )


@dataclass(frozen=True)
class StatsAnnotations:
    """``sidecar.istio.io/statsInclusionPrefixes|Suffixes|Regexps`` (comma-separated); each wins over
    the matching ``proxyStatsMatcher`` list when set (``getStatsOptions``)."""

    prefixes: str = ""
    suffixes: str = ""
    regexps: str = ""


@dataclass(frozen=True)
class _Inclusions:
    prefixes: list[str] = field(default_factory=list)
    suffixes: list[str] = field(default_factory=list)
    regexps: list[str] = field(default_factory=list)


def _merge(
    annotation: str, required: Sequence[str], opted: Sequence[str], pod_ips: Sequence[str]
) -> list[str]:
    chosen = annotation.split(",") if annotation else list(opted)
    out: list[str] = []
    for pattern in [*chosen, *required]:
        if "{pod_ip}" in pattern:
            out.extend(pattern.replace("{pod_ip}", ip) for ip in pod_ips)
        else:
            out.append(pattern)
    return out


def stats_inclusions(
    matcher: StatsMatcher | None,
    *,
    annotations: StatsAnnotations | None = None,
    pod_ips: Sequence[str] = (),
    exit_on_zero_active_connections: bool = False,
) -> _Inclusions:
    """The three inclusion lists as pilot-agent computes them (before the template adds its fixed ones)."""
    m = matcher or StatsMatcher()
    a = annotations or StatsAnnotations()
    suffixes = (*RBAC_SUFFIXES, DRAIN_SUFFIX) if exit_on_zero_active_connections else RBAC_SUFFIXES
    return _Inclusions(
        prefixes=_merge(a.prefixes, REQUIRED_PREFIXES, m.inclusion_prefixes, pod_ips),
        suffixes=_merge(a.suffixes, suffixes, m.inclusion_suffixes, pod_ips),
        regexps=_merge(a.regexps, REQUIRED_REGEXPS, m.inclusion_regexps, pod_ips),
    )


def build_stats_config(
    matcher: StatsMatcher | None,
    *,
    annotations: StatsAnnotations | None = None,
    pod_ips: Sequence[str] = (),
    exit_on_zero_active_connections: bool = False,
) -> dict[str, Any]:
    """Istio's bootstrap ``stats_config`` with the pod's opt-in applied."""
    inc = stats_inclusions(
        matcher,
        annotations=annotations,
        pod_ips=pod_ips,
        exit_on_zero_active_connections=exit_on_zero_active_connections,
    )
    patterns: list[dict[str, Any]] = [{"prefix": "reporter="}]
    patterns += [{"prefix": p} for p in inc.prefixes]
    patterns += [{"suffix": s} for s in inc.suffixes]
    patterns += [{"safe_regex": {"regex": r}} for r in inc.regexps]
    patterns += [{"prefix": "component"}, {"prefix": "istio"}]
    return {
        "use_all_default_tags": False,
        "stats_tags": [{"tag_name": name, "regex": regex} for name, regex in ISTIO_STATS_TAGS],
        "stats_matcher": {"inclusion_list": {"patterns": patterns}},
    }


_LAYERED_RUNTIME = {
    "layers": [
        {"name": "global config", "static_layer": dict(ISTIO_RUNTIME_FLAGS)},
        {"name": "admin", "admin_layer": {}},
    ]
}


def _admin(address: str, port: int) -> dict[str, Any]:
    """Admin as in ``envoy_bootstrap.json``: its own access log to ``/dev/null``."""
    log_type = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"
    return {
        "access_log": [
            {"name": "envoy.access_loggers.file", "typed_config": {"@type": log_type, "path": "/dev/null"}}
        ],
        "address": {"socket_address": {"address": address, "port_value": port}},
    }


def build_bootstrap(
    listeners: Sequence[Mapping[str, Any]],
    clusters: Sequence[Mapping[str, Any]],
    *,
    admin_address: str = "127.0.0.1",
    admin_port: int = 15000,
    stats_inclusions: StatsMatcher | None = None,
    node_id: str = "sidecar~127.0.0.1~lab.default~default.svc.cluster.local",
    access_log_path: str | None = None,
    dns_resolvers: Sequence[tuple[str, int]] = (),
    stats_annotations: StatsAnnotations | None = None,
    pod_ips: Sequence[str] = (),
    cluster: str = "istio-proxy.default",
    xds_dir: str | None = None,
    status_listeners: bool = False,
) -> dict[str, Any]:
    """A complete bootstrap (JSON-ready dict) for a lab sidecar.

    ``stats_inclusions`` is the pod's ``proxyStatsMatcher`` opt-in (None: the stock sidecar, which
    hides e.g. ``cluster.BlackHoleCluster.*`` and ``tcp.*``). ``dns_resolvers`` (ip, port) become the
    bootstrap-wide c-ares resolvers used by every DNS cluster that does not set its own.

    With ``xds_dir``, ``listeners``/``clusters`` are *not* inlined: LDS and CDS come from
    ``xds_dir/lds.json`` and ``xds_dir/cds.json`` (Envoy's filesystem subscription, written with
    ``xds_file`` and replaced atomically), so they show up as ``dynamic_listeners`` /
    ``dynamic_active_clusters`` with xDS update counters, as pushed config does on a real sidecar.
    ``status_listeners`` adds Istio's ``:15021``/``:15090`` bootstrap listeners.
    """
    static_listeners: list[dict[str, Any]] = []
    static_clusters: list[dict[str, Any]] = []
    if status_listeners:
        static_listeners, static_clusters = istio_status_resources(admin_port)
    if xds_dir is None:
        logged = (
            with_access_logs(listeners, access_log_path) if access_log_path else [dict(x) for x in listeners]
        )
        static_listeners += logged
        static_clusters += [dict(c) for c in clusters]
    bootstrap: dict[str, Any] = {
        "node": {"id": node_id, "cluster": cluster, "metadata": {"ISTIO_VERSION": "lab"}},
        "layered_runtime": copy.deepcopy(_LAYERED_RUNTIME),
        "stats_config": build_stats_config(stats_inclusions, annotations=stats_annotations, pod_ips=pod_ips),
        "admin": _admin(admin_address, admin_port),
        "static_resources": {"listeners": static_listeners, "clusters": static_clusters},
    }
    if xds_dir is not None:
        bootstrap["dynamic_resources"] = {
            "lds_config": {
                "path_config_source": {"path": f"{xds_dir}/lds.json"},
                "resource_api_version": "V3",
            },
            "cds_config": {
                "path_config_source": {"path": f"{xds_dir}/cds.json"},
                "resource_api_version": "V3",
            },
        }
    if dns_resolvers:
        bootstrap["typed_dns_resolver_config"] = cares_resolver(dns_resolvers)
    return bootstrap
