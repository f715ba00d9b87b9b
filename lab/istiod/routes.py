"""HTTP route configurations (inlined in each HTTP connection manager) and the HCM itself.

Pilot sources (``pilot/pkg/networking/core``):
- ``httproute.go`` ``buildSidecarOutboundHTTPRouteConfig``/``BuildSidecarOutboundVirtualHosts``: route
  ``"<port>"`` has one vhost ``host:port`` per visible service with an HTTP or auto port of that number,
  sorted by name (``util.SortVirtualHosts``), then the catch-all; ``ignore_port_in_host_matching``,
  ``validate_clusters: false``, ``max_direct_response_body_size_bytes`` 1 MiB.
- ``httproute.go`` ``generateVirtualHostDomains``/``GenerateAltVirtualHosts``/``dedupeDomains``: domains
  are the host, its aliases, the Kubernetes short forms relative to the proxy's namespace, ``*.``
  forms for headless Kubernetes services, and the service addresses in use (no ``:port`` forms
  because the port is ignored); a domain already used by an earlier vhost is dropped.
- ``httproute.go`` ``getVirtualHostsForSniffedServicePort``: route ``"host:port"`` (auto port on a VIP)
  keeps only that service's vhost; a single vhost gets domains ``["*"]``; no catch-all.
- ``httproute.go`` ``buildCatchAllVirtualHost``: ``allow_any`` → PassthroughCluster (or the Sidecar
  ``egressProxy`` cluster), timeout 0, no retries; else ``block_all`` with a direct 502, no body.
- ``route/route.go`` ``BuildDefaultHTTPOutboundRoute`` + ``route/retry/retry.go`` ``ConvertPolicy``
  (MeshConfig ``defaultHttpRetryPolicy``; unset →) ``DefaultPolicy``:
  route ``default``, prefix ``/``, timeout 0, 2 retries on
  ``connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes`` with the
  ``previous_hosts`` predicate and 5 host-selection attempts.
- ``httproute.go`` ``GetProxyHeadersFromProxyConfig`` (outbound server name empty → Envoy's ``envoy``,
  ``OVERWRITE``, request attempt count on) and ``listener.go`` ``buildSidecarOutboundHTTPListenerOpts``
  (``accept_http_10`` only with ``PILOT_HTTP10``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lab.istiod import protocol
from lab.istiod.envoy import (
    ALLOW_ANY,
    BLOCK_ALL,
    HCM,
    PASSTHROUGH_CLUSTER,
    ROUTER,
    cluster_name,
)
from lab.istiod.hosts import alt_hosts
from lab.istiod.model import ALIAS, KUBERNETES, PASSTHROUGH, UNSPECIFIED_IP, MeshService
from lab.istiod.retry import retry_policy
from lab.istiod.virtualservices import vs_wrappers
from lab.istiod.vsparse import VirtualService

MAX_DIRECT_RESPONSE_BODY = 1024 * 1024
FAULT = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"
CORS = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"


def default_route(cluster: str, operation: str, retry: dict[str, Any] | None) -> dict[str, Any]:
    action: dict[str, Any] = {"cluster": cluster, "timeout": "0s", "max_grpc_timeout": "0s"}
    if retry is not None:
        action["retry_policy"] = retry
    return {"name": "default", "match": {"prefix": "/"}, "decorator": {"operation": operation},
            "route": action}


def catch_all_vhost(allow_any: bool, egress_cluster: str | None) -> dict[str, Any]:
    if allow_any:
        action = {"cluster": egress_cluster or PASSTHROUGH_CLUSTER, "timeout": "0s", "max_grpc_timeout": "0s"}
        route: dict[str, Any] = {"name": ALLOW_ANY, "match": {"prefix": "/"}, "route": action}
        return {"name": ALLOW_ANY, "domains": ["*"], "routes": [route], "include_request_attempt_count": True}
    block = {"name": BLOCK_ALL, "match": {"prefix": "/"}, "direct_response": {"status": 502}}
    return {"name": BLOCK_ALL, "domains": ["*"], "routes": [block], "include_request_attempt_count": True}


def vhost_domains(svc: MeshService, proxy_ns: str, uses_auto: bool) -> tuple[list[str], list[str]]:
    domains: list[str] = []
    expanded: list[str] = []
    for name in (svc.hostname, *svc.aliases):
        alts = alt_hosts(name, proxy_ns)
        domains.extend([name, *alts])
        expanded.extend(alts)
    if svc.resolution == PASSTHROUGH and svc.registry == KUBERNETES:
        domains.extend([f"*.{d}" for d in list(domains)])
    for address in svc.all_addresses_for_proxy(uses_auto):
        if address and address != UNSPECIFIED_IP:
            domains.append(address)
    return domains, expanded


@dataclass
class RouteBuilder:
    """Builds route configurations for one proxy; the vhosts of a port are computed once and shared
    by ``"<port>"`` and every ``"host:<port>"`` route (as pilot's per-port vhost cache does)."""

    services: Sequence[MeshService]
    proxy_ns: str
    uses_auto: bool
    allow_any: bool
    egress_cluster: str | None
    mesh_retry: Mapping[str, Any] | None = None
    virtual_services: Sequence[VirtualService] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    _by_port: dict[int, list[MeshService]] | None = None
    _vhosts: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    def _services_on(self, port: int) -> list[MeshService]:
        if self._by_port is None:
            self._by_port = {}
            for svc in self.services:
                for number in {p.number for p in svc.ports}:
                    self._by_port.setdefault(number, []).append(svc)
        return self._by_port.get(port, [])

    def port_vhosts(self, port: int) -> list[dict[str, Any]]:
        if port in self._vhosts:
            return self._vhosts[port]
        by_host: dict[str, MeshService] = {}
        for svc in self._services_on(port):
            by_host[svc.hostname] = svc
        wrappers = vs_wrappers(self.virtual_services, port, by_host, self.labels, self.proxy_ns,
                               self.mesh_retry)
        known_fqdn = set(by_host) | {f"{h}:{port}" for h in by_host}
        seen: set[str] = set()
        vhosts: list[dict[str, Any]] = []
        with_vs: set[str] = set()
        for plain, services, routes in wrappers:
            for host in plain:
                self._add_vhost(vhosts, seen, f"{host}:{port}", [host], [], known_fqdn, routes)
            for svc in services:
                with_vs.add(svc.hostname)
                domains, expanded = vhost_domains(svc, self.proxy_ns, self.uses_auto)
                self._add_vhost(vhosts, seen, f"{svc.hostname}:{port}", domains, expanded, known_fqdn, routes)
        for host in sorted(by_host):
            svc = by_host[host]
            svc_port = svc.port(port)
            if host in with_vs or svc.resolution == ALIAS or svc_port is None:
                continue
            if not protocol.is_http_or_sniffed(svc_port.protocol):
                continue
            domains, expanded = vhost_domains(svc, self.proxy_ns, self.uses_auto)
            route = default_route(cluster_name(port, host), f"{host}:{port}/*", retry_policy(self.mesh_retry))
            self._add_vhost(vhosts, seen, f"{host}:{port}", domains, expanded, known_fqdn, [route])
        vhosts.sort(key=lambda v: str(v["name"]))
        self._vhosts[port] = vhosts
        return vhosts

    @staticmethod
    def _add_vhost(vhosts: list[dict[str, Any]], seen: set[str], name: str, domains: list[str],
                   expanded: list[str], known_fqdn: set[str], routes: list[dict[str, Any]]) -> None:
        """``buildVirtualHost``: duplicate vhost names and already-used domains are dropped."""
        if any(v["name"] == name for v in vhosts):
            return
        kept = []
        for d in domains:
            if d.lower() in seen or (d in expanded and d in known_fqdn):
                continue
            kept.append(d)
            seen.add(d.lower())
        if kept:
            vhosts.append({"name": name, "domains": kept, "routes": routes,
                           "include_request_attempt_count": True})

    def route_config(self, name: str) -> dict[str, Any]:
        """The route configuration ``name`` (``"80"`` or ``"host:80"``) for this proxy."""
        port = int(name.rsplit(":", 1)[-1])
        vhosts = self.port_vhosts(port)
        if ":" in name:
            host_only = name.rsplit(":", 1)[0]
            vhosts = [v for v in vhosts if name in v["domains"] or host_only in v["domains"]]
        vhosts = copy.deepcopy(vhosts)
        if ":" in name:
            if len(vhosts) == 1:
                vhosts[0]["domains"] = ["*"]
        else:
            vhosts.append(catch_all_vhost(self.allow_any, self.egress_cluster))
        return {
            "name": name,
            "virtual_hosts": vhosts,
            "validate_clusters": False,
            "max_direct_response_body_size_bytes": MAX_DIRECT_RESPONSE_BODY,
            "ignore_port_in_host_matching": True,
        }


def http_connection_manager(listener_name: str, route: dict[str, Any], http10: bool) -> dict[str, Any]:
    config: dict[str, Any] = {
        "@type": HCM,
        "stat_prefix": f"outbound_{listener_name}",
        "route_config": route,
        "http_filters": [
            {"name": "envoy.filters.http.fault", "typed_config": {"@type": FAULT}},
            {"name": "envoy.filters.http.cors", "typed_config": {"@type": CORS}},
            {"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER}},
        ],
        "server_header_transformation": "OVERWRITE",
        "use_remote_address": False,
        "normalize_path": True,
        "path_with_escaped_slashes_action": "KEEP_UNCHANGED",
        "stream_idle_timeout": "0s",
        "upgrade_configs": [{"upgrade_type": "websocket"}],
        "forward_client_cert_details": "APPEND_FORWARD",
    }
    if http10:
        config["http_protocol_options"] = {"accept_http_10": True}
    return {"name": "envoy.filters.network.http_connection_manager", "typed_config": config}
