"""Top level of the gateway generator: objects + :class:`lab.istiod.GatewayView` → the listeners and
clusters istiod pushes to a gateway proxy (an egress gateway in the lab).

Pilot sources (``pilot/pkg/networking/core``):
- ``gateway.go`` ``buildGatewayListeners``: one listener ``<bind>_<port>`` (bind ``0.0.0.0``) per
  merged server port, ``traffic_direction: OUTBOUND``, bound to its port; a plain HTTP port gets one
  HCM chain with route ``http.<port>`` (``buildGatewayTCPBasedFilterChains``), other ports one chain
  per HTTPS server (HCM with a TLS context and SNI match) or the TCP/TLS chains of
  ``lab/istiod/gateway_tls.py``; a listener without chains is dropped.
- ``listener.go`` ``buildGatewayListener``: a TLS inspector when a chain matches SNI or terminates
  TLS; ``transport_socket_connect_timeout`` 15s (``PILOT_GATEWAY_TRANSPORT_SOCKET_CONNECT_TIMEOUT``);
  ``MutableGatewayListener.build``: the HCM stat prefix is ``outbound_<listener>;``
  (``util.DelimitedStatsPrefix``) unless an HTTPS server has a name.
- ``gateway.go`` ``buildGatewayConnectionManager`` + ``listener_builder.go``
  ``buildHTTPConnectionManager``: ``use_remote_address``, ``SANITIZE_SET`` client cert details,
  server name ``istio-envoy`` (``util.GetProxyHeadersFromProxyConfig``), RBAC before fault, CORS and
  router.
- ``cluster.go`` ``buildClusters`` (gateways): outbound clusters of every service visible from the
  gateway's namespace, then ``BlackHoleCluster`` (no passthrough clusters); ``convertResolution``: a
  Passthrough service (SE ``NONE``) becomes EDS on a gateway — no endpoints to send to.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from lab.istiod.authz import http_filters, network_filters, policies_for
from lab.istiod.build import select_inputs
from lab.istiod.clusters import TrustFiles, build_clusters
from lab.istiod.convert import build_registry
from lab.istiod.destination_rules import destination_rule_for
from lab.istiod.envoy import BLACKHOLE_CLUSTER, HCM, ROUTER, TLS_INSPECTOR, duration, socket_address
from lab.istiod.gateway_routes import route_config
from lab.istiod.gateway_servers import ServerPort, merge_gateways, select_gateways, service_target_ports
from lab.istiod.gateway_tls import GatewayCerts, GatewayChain, TcpChainBuilder, downstream_tls
from lab.istiod.imports import dedupe_for_clusters
from lab.istiod.model import CLIENT_SIDE_LB, PASSTHROUGH, MeshService
from lab.istiod.resources import _flatten, parse_objects
from lab.istiod.routes import CORS, FAULT
from lab.istiod.scope import mesh_settings, services_exported_to
from lab.istiod.views import GatewayView, GeneratedConfig
from lab.istiod.vsparse import VirtualService

TRANSPORT_SOCKET_CONNECT_TIMEOUT = "15s"
SERVER_NAME = "istio-envoy"
GATEWAY_KINDS = ("AuthorizationPolicy", "Gateway")


def gateway_hcm(stat_prefix: str, route: dict[str, Any], rbac: list[dict[str, Any]]) -> dict[str, Any]:
    config: dict[str, Any] = {
        "@type": HCM,
        "stat_prefix": stat_prefix,
        "route_config": route,
        "http_filters": [
            *rbac,
            {"name": "envoy.filters.http.fault", "typed_config": {"@type": FAULT}},
            {"name": "envoy.filters.http.cors", "typed_config": {"@type": CORS}},
            {"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER}},
        ],
        "use_remote_address": True,
        "forward_client_cert_details": "SANITIZE_SET",
        "set_current_client_cert_details": {"subject": True, "cert": True, "dns": True, "uri": True},
        "server_name": SERVER_NAME,
        "server_header_transformation": "OVERWRITE",
        "http_protocol_options": {},
        "normalize_path": True,
        "path_with_escaped_slashes_action": "KEEP_UNCHANGED",
        "stream_idle_timeout": "0s",
        "upgrade_configs": [{"upgrade_type": "websocket"}],
    }
    return {"name": "envoy.filters.network.http_connection_manager", "typed_config": config}


def render_chain(chain: GatewayChain) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if chain.sni_hosts and "*" not in chain.sni_hosts:
        out["filter_chain_match"] = {"server_names": sorted(chain.sni_hosts)}
    out["filters"] = chain.filters
    if chain.tls_context is not None:
        out["transport_socket"] = {"name": "envoy.transport_sockets.tls", "typed_config": chain.tls_context}
    out["transport_socket_connect_timeout"] = TRANSPORT_SOCKET_CONNECT_TIMEOUT
    return out


def render_listener(sp: ServerPort, chains: list[GatewayChain]) -> dict[str, Any]:
    bind = sp.bind or "0.0.0.0"
    listener: dict[str, Any] = {"name": f"{bind}_{sp.number}", "address": socket_address(bind, sp.number),
                                "traffic_direction": "OUTBOUND"}
    if any(c.sni_hosts or c.tls_context is not None for c in chains):
        listener["listener_filters"] = [{"name": "envoy.filters.listener.tls_inspector",
                                         "typed_config": {"@type": TLS_INSPECTOR}}]
    listener["filter_chains"] = [render_chain(c) for c in chains]
    return listener


def _gateway_service(svc: MeshService) -> MeshService:
    """``convertResolution`` for a gateway: Passthrough → EDS."""
    return replace(svc, resolution=CLIENT_SIDE_LB) if svc.resolution == PASSTHROUGH else svc


class _Listeners:
    def __init__(self, gw: GatewayView, vss: Sequence[VirtualService], services: Mapping[str, MeshService],
                 raw: Sequence[Mapping[str, Any]], default_export: frozenset[str], root_ns: str,
                 notes: list[str]) -> None:
        self.gw, self.vss, self.services, self.notes = gw, vss, services, notes
        self.default_export = default_export
        self.policies = policies_for(raw, gw.namespace, gw.labels, root_ns, notes)
        self.http_rbac = http_filters(self.policies, notes)
        self.tcp_rbac: list[dict[str, Any]] | None = None
        self.certs = GatewayCerts(gw.cert_chain_file, gw.private_key_file, gw.mesh_ca_file)
        self.tcp = TcpChainBuilder(vss, services, gw.namespace, default_export, self.certs,
                                   self._tcp_filters, notes)

    def _tcp_filters(self) -> list[dict[str, Any]]:
        """The network RBAC filters, built (and noted about) on first use."""
        if self.tcp_rbac is None:
            self.tcp_rbac = network_filters(self.policies, self.notes)
        return copy.deepcopy(self.tcp_rbac)

    def _route(self, name: str, servers: Sequence[Any]) -> dict[str, Any]:
        return route_config(name, servers, self.vss, self.services, self.gw.labels, self.gw.namespace,
                            self.gw.mesh.get("defaultHttpRetryPolicy"), self.default_export)

    def chains(self, sp: ServerPort, route_names: Mapping[Any, str]) -> list[GatewayChain]:
        default_prefix = f"outbound_{sp.bind or '0.0.0.0'}_{sp.number};"
        if sp.plain_http:
            route = self._route(sp.route_name, sp.servers)
            hcm = gateway_hcm(default_prefix, route, copy.deepcopy(self.http_rbac))
            return [GatewayChain(filters=[hcm], route=sp.route_name)]
        out: list[GatewayChain] = []
        for server in sp.servers:
            if not server.terminates_https:
                out += self.tcp.chains(server, sp.number)
                continue
            context = downstream_tls(server, self.certs, False, self.notes)
            if context is None:
                continue
            name = route_names[server]
            hcm = gateway_hcm(server.name or default_prefix, self._route(name, [server]),
                              copy.deepcopy(self.http_rbac))
            out.append(GatewayChain(sni_hosts=server.sni_hosts(), tls_context=context, filters=[hcm],
                                    route=name))
        return out


def build_gateway_config(objects: Sequence[Mapping[str, Any]], gw: GatewayView) -> GeneratedConfig:
    raw = _flatten(objects)
    parsed = parse_objects(raw)
    mesh = mesh_settings(gw.mesh, None, gw.connect_timeout_s)
    notes = [f"{p.ref}: {p.message}" for p in parsed.problems]
    notes += [f"{kind}: not modelled by the lab generator" for kind in parsed.ignored_kinds
              if kind not in GATEWAY_KINDS]
    inputs = select_inputs(parsed, mesh, notes)
    registry = build_registry(inputs.entries, inputs.services, parsed.endpoint_slices)
    visible = services_exported_to(registry, mesh, gw.namespace)
    by_host: dict[str, MeshService] = {}
    for svc in visible:
        by_host.setdefault(svc.hostname, svc)
    gateways = select_gateways(raw, gw.namespace, gw.labels, gw.scope_to_namespace)
    if not gateways:
        notes.append(f"no Gateway selects {gw.namespace}/{gw.name}: no listeners")
    targets = service_target_ports(raw, gw.namespace, gw.labels, gw.ips)
    merged = merge_gateways(gateways, targets, notes)
    builder = _Listeners(gw, inputs.virtual_services, by_host, raw, mesh.default_vs_export_to,
                         mesh.root_namespace, notes)
    listeners = []
    for sp in merged.ports:
        chains = builder.chains(sp, merged.route_names)
        if not chains:
            notes.append(f"listener {sp.bind or '0.0.0.0'}_{sp.number}: no filter chains: omitted (as pilot)")
            continue
        listeners.append(render_listener(sp, chains))
    listeners.sort(key=lambda lst: str(lst["name"]))

    def rule_for(svc: MeshService) -> Any:
        return destination_rule_for(inputs.rules, mesh, gw.namespace, svc)

    trust = TrustFiles(system_ca=gw.ca_file, mesh_ca=gw.mesh_ca_file, cert_chain=gw.cert_chain_file,
                       private_key=gw.private_key_file)
    services = [_gateway_service(s) for s in dedupe_for_clusters(visible)]
    clusters = build_clusters(services, rule_for, mesh.connect_timeout_s, trust, notes)
    timeout = duration(mesh.connect_timeout_s)
    clusters.append({"name": BLACKHOLE_CLUSTER, "type": "STATIC", "connect_timeout": timeout})
    return GeneratedConfig(listeners=listeners, clusters=clusters, dns={}, notes=tuple(notes),
                           mode=mesh.mode, mode_from=mesh.mode_from)
