"""Top level of the generator: objects + pod → :class:`lab.istiod.GeneratedConfig`.

Order follows pilot's ``buildSidecarListeners`` (outbound port listeners, then ``virtualOutbound``)
and ``buildClusters`` (outbound clusters, then BlackHole/Passthrough/InboundPassthrough). Listeners
are sorted by name for determinism (pilot's order comes from a Go map).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lab.istiod.catchall import (
    catchall_clusters,
    catchall_filters,
    virtual_inbound_listener,
    virtual_outbound_listener,
)
from lab.istiod.clusters import TrustFiles, build_clusters
from lab.istiod.convert import build_registry, invalid_reason
from lab.istiod.destination_rules import destination_rule_for
from lab.istiod.dns import name_table
from lab.istiod.dualstack import add_second_wildcard
from lab.istiod.envoy import cluster_name
from lab.istiod.imports import dedupe_for_clusters
from lab.istiod.listeners import OutboundListenerBuilder
from lab.istiod.model import MeshService
from lab.istiod.render import render_listener
from lab.istiod.resources import DestinationRule, KubeService, Objects, ServiceEntry, Sidecar, parse_objects
from lab.istiod.routes import RouteBuilder
from lab.istiod.scope import (
    MeshSettings,
    ProxyScope,
    compute_scope,
    mesh_settings,
    namespace_selected,
    services_exported_to,
)
from lab.istiod.views import GeneratedConfig, PodView
from lab.istiod.virtualservices import destination_services, select_virtual_services
from lab.istiod.vsdelegates import with_delegates
from lab.istiod.vsparse import VirtualService


@dataclass(frozen=True)
class Inputs:
    """The objects istiod would use: valid, inside ``discoverySelectors``."""

    entries: list[ServiceEntry]
    services: list[KubeService]
    sidecars: list[Sidecar]
    rules: list[DestinationRule]
    virtual_services: list[VirtualService]


def select_inputs(parsed: Objects, mesh: MeshSettings, notes: list[str]) -> Inputs:
    """Leave out what admission rejects and what ``discoverySelectors`` exclude (with notes)."""

    def selected(ns: str) -> bool:
        return namespace_selected(mesh, parsed.namespaces, ns)

    entries = []
    for se in parsed.service_entries:
        reason = invalid_reason(se)
        if reason is not None:
            notes.append(f"{se.meta.ref}: invalid, left out: {reason}")
        elif selected(se.meta.namespace):
            entries.append(se)
    all_objects: list[ServiceEntry | KubeService | Sidecar | DestinationRule] = [
        *parsed.service_entries, *parsed.services, *parsed.sidecars, *parsed.destination_rules]
    notes += [f"{o.meta.ref}: outside discoverySelectors, ignored"
              for o in all_objects if not selected(o.meta.namespace)]
    return Inputs(
        entries=entries,
        services=[svc for svc in parsed.services if selected(svc.meta.namespace)],
        sidecars=[sc for sc in parsed.sidecars if selected(sc.meta.namespace)],
        rules=[dr for dr in parsed.destination_rules if selected(dr.meta.namespace)],
        virtual_services=with_delegates(
            [vs for vs in parsed.virtual_services if selected(vs.meta.namespace)], mesh.default_vs_export_to
        ),
    )


def build_listeners(scope: ProxyScope, pod: PodView, mesh: MeshSettings, egress_cluster: str | None,
                    virtual_services: list[VirtualService], notes: list[str]) -> list[dict[str, Any]]:
    """Port listeners (sorted by port, then bind) followed by ``virtualOutbound``; Sidecar egress
    listeners with a port first (their entries locked), then the catch-all one."""
    uses_auto = pod.dns_capture and pod.auto_allocate
    listener_vs = select_virtual_services(virtual_services, mesh, pod.namespace, scope.imports)
    builder = OutboundListenerBuilder(uses_auto_allocation=uses_auto, http10=pod.http10,
                                      proxy_namespace=pod.namespace, pod_ips=tuple(pod.pod_ips),
                                      virtual_services=listener_vs,
                                      services_by_host={s.hostname: s for s in scope.cluster_services},
                                      labels=dict(pod.labels))
    for egress in scope.port_listeners:
        assert egress.port is not None
        for svc in egress.services:
            builder.add_egress_port(svc, egress.port)
    builder.lock()
    for svc in scope.listener_services:
        builder.add_service(svc)
    notes += builder.notes
    allow_any = scope.mode in ("ALLOW_ANY", "ALLOW_ANY_DYNAMIC_DNS")

    def route_builder(services: Sequence[MeshService], imports: Mapping[str, Any]) -> RouteBuilder:
        selected = select_virtual_services(virtual_services, mesh, pod.namespace, imports)
        return RouteBuilder(services, pod.namespace, uses_auto, allow_any, egress_cluster,
                            pod.mesh.get("defaultHttpRetryPolicy"), selected, dict(pod.labels))

    catch_all = route_builder(scope.listener_services, scope.imports)
    per_port = {e.port.number: route_builder(e.services, e.imports) for e in scope.port_listeners if e.port}

    def route_for(name: str) -> dict[str, Any]:
        return per_port.get(int(name.rsplit(":", 1)[-1]), catch_all).route_config(name)

    catchall = catchall_filters(scope.mode, egress_cluster)
    listeners = [
        render_listener(entry, route_for, catchall, mesh.protocol_detection_timeout, pod.http10)
        for entry in sorted(builder.entries.values(), key=lambda e: (e.port, e.bind))
    ]
    listeners.append(virtual_outbound_listener(scope.mode, egress_cluster))
    listeners.append(virtual_inbound_listener())  # listener_builder.go: after virtualOutbound
    add_second_wildcard(listeners, pod.pod_ips)
    return listeners


def build_config(objects: Sequence[Mapping[str, Any]], pod: PodView) -> GeneratedConfig:
    parsed = parse_objects(objects)
    mesh = mesh_settings(pod.mesh, pod.mode_override, pod.connect_timeout_s)
    notes = [f"{p.ref}: {p.message}" for p in parsed.problems]
    notes += [f"{kind}: not modelled by the lab generator" for kind in parsed.ignored_kinds]
    inputs = select_inputs(parsed, mesh, notes)
    registry = build_registry(inputs.entries, inputs.services, parsed.endpoint_slices)
    scope = compute_scope(registry, inputs.sidecars, mesh, pod.namespace, pod.labels)
    notes += scope.notes
    egress_cluster = None
    if scope.egress_proxy is not None:
        egress_cluster = cluster_name(scope.egress_proxy[1] or 0, scope.egress_proxy[0])
    listeners = build_listeners(scope, pod, mesh, egress_cluster, inputs.virtual_services, notes)

    def rule_for(svc: MeshService) -> DestinationRule | None:
        return destination_rule_for(inputs.rules, mesh, pod.namespace, svc)

    trust = TrustFiles(system_ca=pod.ca_file, mesh_ca=pod.mesh_ca_file,
                       cert_chain=pod.cert_chain_file, private_key=pod.private_key_file)
    all_vs = select_virtual_services(inputs.virtual_services, mesh, pod.namespace, scope.imports)
    for egress in scope.port_listeners:
        all_vs += select_virtual_services(inputs.virtual_services, mesh, pod.namespace, egress.imports)
    visible = services_exported_to(registry, mesh, pod.namespace)
    extra = destination_services(all_vs, registry, pod.namespace, visible)
    cluster_services = dedupe_for_clusters([*scope.cluster_services, *extra])
    clusters = build_clusters(cluster_services, rule_for, mesh.connect_timeout_s, trust, notes)
    clusters += catchall_clusters(mesh.connect_timeout_s)
    dns: dict[str, tuple[str, ...]] = {}
    if pod.dns_capture:
        every = [*(s for e in scope.port_listeners for s in e.services), *scope.listener_services]
        dns = name_table(every, pod.namespace, pod.auto_allocate)
    return GeneratedConfig(listeners=listeners, clusters=clusters, dns=dns, notes=tuple(notes),
                           mode=scope.mode, mode_from=scope.mode_from)
