"""What one proxy sees: mesh settings, discoverySelectors, exportTo, the Sidecar that applies, the
imported services, the effective outbound mode and the DestinationRule per service.

Pilot sources:
- ``pkg/kube/namespace/filter.go`` ``Filter``: with ``discoverySelectors`` set, objects outside the
  selected namespaces are ignored (config too, since 1.22/1.25).
- ``pilot/pkg/model/push_context.go`` ``initServiceRegistry``/``servicesExportedToNamespace``/
  ``IsServiceVisible``/``serviceExportTo``: exportTo (``*``, ``.``, ``~``, names), else
  ``defaultServiceExportTo``; services exported to the namespace come first, then public ones,
  each in creation order.
- ``pilot/pkg/model/push_context.go`` ``getSidecarScope``: a Sidecar whose ``workloadSelector``
  matches the pod, else the namespace's selector-less Sidecar, else the root namespace's.
- ``pilot/pkg/model/sidecar.go`` ``convertIstioListenerToWrapper``/``selectServices`` (``ns/host``
  imports, ``.``, ``*``, ``~`` exclusions; one namespace per host: the proxy's own, else a
  Kubernetes Service, else the first) and ``appendSidecarServices`` (for CDS: a Kubernetes Service
  beats a ServiceEntry with the same host; among entries the oldest wins; ports merge when
  namespace/resolution/exportTo agree).
- ``sidecar.go`` ``initSidecarScopeInternalIndexes``: a Sidecar's ``outboundTrafficPolicy`` wins over
  the mesh mode.
- ``push_context.go`` ``destinationRule``: the proxy namespace, then the service namespace, then the
  root namespace; the most specific host wins; DR ``exportTo`` honoured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lab.istiod import protocol
from lab.istiod.hosts import selector_matches
from lab.istiod.model import MeshPort, MeshService
from lab.istiod.resources import Namespace, Sidecar, parse_duration_s


@dataclass(frozen=True)
class MeshSettings:
    mode: str = "ALLOW_ANY"
    mode_from: str = "mesh default"
    root_namespace: str = "istio-system"
    default_service_export_to: frozenset[str] = frozenset({"*"})
    default_dr_export_to: frozenset[str] = frozenset({"*"})
    default_vs_export_to: frozenset[str] = frozenset({"*"})
    discovery_selectors: tuple[Mapping[str, Any], ...] = ()
    connect_timeout_s: float = 10.0
    protocol_detection_timeout: str = "0s"


@dataclass(frozen=True)
class EgressScope:
    """One Sidecar egress listener: its port (None for the catch-all), imports and services (for a
    port listener, trimmed to that port as ``serviceMatchingListenerPort`` does)."""

    port: MeshPort | None
    imports: Mapping[str, Any]  # namespace -> imports.HostImports
    services: tuple[MeshService, ...]


@dataclass(frozen=True)
class ProxyScope:
    """The SidecarScope for one pod."""

    sidecar: Sidecar | None
    listener_services: tuple[MeshService, ...]  # egressListener.Services(): per host one namespace
    cluster_services: tuple[MeshService, ...]  # SidecarScope.services: one per host, merged
    mode: str
    mode_from: str
    egress_proxy: tuple[str, int | None] | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    imports: Mapping[str, Any] = field(default_factory=dict)  # namespace -> imports.HostImports
    port_listeners: tuple[EgressScope, ...] = ()  # Sidecar egress listeners with a port, in order

    def egress_for_port(self, port: int) -> EgressScope | None:
        """``GetEgressListenerForRDS``: the egress listener declared for this port, if any."""
        return next((e for e in self.port_listeners if e.port is not None and e.port.number == port), None)


def namespace_labels(namespaces: Sequence[Namespace], name: str) -> dict[str, str]:
    """Labels of a namespace (declared ones honoured; every namespace has kubernetes.io/metadata.name)."""
    labels = {"kubernetes.io/metadata.name": name}
    for ns in namespaces:
        if ns.meta.name == name:
            labels.update(ns.meta.labels)
    return labels


def namespace_selected(mesh: MeshSettings, namespaces: Sequence[Namespace], name: str) -> bool:
    if not mesh.discovery_selectors:
        return True
    labels = namespace_labels(namespaces, name)
    return any(selector_matches(sel, labels) for sel in mesh.discovery_selectors)


def export_set(export_to: frozenset[str] | None, default: frozenset[str]) -> frozenset[str]:
    return export_to if export_to else default


def visible_to(export: frozenset[str], owner_ns: str, client_ns: str) -> bool:
    """``IsServiceVisible`` on an effective exportTo set."""
    if export == frozenset({"~"}):
        return False
    return "*" in export or ("." in export and owner_ns == client_ns) or client_ns in export


def services_exported_to(services: Sequence[MeshService], mesh: MeshSettings, ns: str) -> list[MeshService]:
    """``servicesExportedToNamespace``: non-public services exported to ``ns``, then public ones."""
    private, public = [], []
    for svc in services:
        export = export_set(svc.export_to, mesh.default_service_export_to)
        if "*" in export:
            public.append(svc)
        elif visible_to(export, svc.namespace, ns):
            private.append(svc)
    return private + public


def select_sidecar(sidecars: Sequence[Sidecar], mesh: MeshSettings, ns: str,
                   labels: Mapping[str, str]) -> Sidecar | None:
    ordered = sorted(sidecars, key=lambda s: (s.meta.created, s.meta.name))
    in_ns = [s for s in ordered if s.meta.namespace == ns]
    for sc in in_ns:
        if sc.selector is not None and all(labels.get(k) == v for k, v in sc.selector.items()):
            return sc
    for sc in in_ns:
        if sc.selector is None:
            return sc
    for sc in ordered:
        if sc.meta.namespace == mesh.root_namespace and sc.selector is None:
            return sc
    return None


def mesh_settings(mesh: Mapping[str, Any], mode_override: str | None,
                  connect_timeout_s: float | None) -> MeshSettings:
    """MeshConfig dict → settings, with istio's defaults (``pkg/config/mesh/mesh.go``
    ``DefaultMeshConfig``: ALLOW_ANY, connectTimeout 10s, protocolDetectionTimeout 0s, rootNamespace
    istio-system)."""
    policy = mesh.get("outboundTrafficPolicy") or {}
    mode, mode_from = "ALLOW_ANY", "mesh default"
    if policy.get("mode"):
        mode, mode_from = str(policy["mode"]), "MeshConfig outboundTrafficPolicy"
    if mode_override:
        mode, mode_from = mode_override, "--mode"
    timeout = connect_timeout_s
    if timeout is None:
        timeout = parse_duration_s(mesh.get("connectTimeout")) or 10.0
    return MeshSettings(
        mode=mode,
        mode_from=mode_from,
        root_namespace=str(mesh.get("rootNamespace") or "istio-system"),
        default_service_export_to=frozenset(mesh.get("defaultServiceExportTo") or ["*"]),
        default_dr_export_to=frozenset(mesh.get("defaultDestinationRuleExportTo") or ["*"]),
        default_vs_export_to=frozenset(mesh.get("defaultVirtualServiceExportTo") or ["*"]),
        discovery_selectors=tuple(mesh.get("discoverySelectors") or ()),
        connect_timeout_s=timeout,
        protocol_detection_timeout=str(mesh.get("protocolDetectionTimeout") or "0s"),
    )


def _egress_listeners(sidecar: Sidecar | None, notes: list[str]) -> list[tuple[MeshPort | None, list[str]]]:
    """(port or None, hosts) per modelled egress listener; a Sidecar without egress imports ``*/*``."""
    if sidecar is None or not sidecar.egress:
        return [(None, ["*/*"])]
    out: list[tuple[MeshPort | None, list[str]]] = []
    for e in sidecar.egress:
        if e.bind or e.capture_mode:
            notes.append(f"{sidecar.meta.ref}: egress listener with bind/captureMode not modelled")
            continue
        port = None
        if e.port is not None:
            port = MeshPort(number=e.port, protocol=protocol.parse(e.port_protocol), name=e.port_name)
        out.append((port, list(e.hosts)))
    return out


def compute_scope(services: Sequence[MeshService], sidecars: Sequence[Sidecar], mesh: MeshSettings,
                  ns: str, labels: Mapping[str, str]) -> ProxyScope:
    """The pod's SidecarScope: imported services per egress listener (for listeners and routes),
    their union for clusters, and the mode."""
    from lab.istiod.imports import dedupe_for_clusters, parse_egress_hosts, select_services

    notes: list[str] = []
    sidecar = select_sidecar(sidecars, mesh, ns, labels)
    visible = services_exported_to(services, mesh, ns)
    port_listeners: list[EgressScope] = []
    catch_all: EgressScope | None = None
    for port, hosts in _egress_listeners(sidecar, notes):
        imports, problems = parse_egress_hosts(hosts, ns)
        notes.extend(problems)
        selected = select_services(visible, ns, imports)
        if port is None:
            catch_all = EgressScope(None, imports, tuple(selected))
            break  # validation allows only one catch-all, last
        trimmed = [s.with_ports((p,)) for s in selected for p in s.ports if p.number == port.number]
        port_listeners.append(EgressScope(port, imports, tuple(trimmed)))
    listener_services = catch_all.services if catch_all else ()
    every = [s for e in port_listeners for s in e.services] + list(listener_services)
    mode, mode_from = mesh.mode, mesh.mode_from
    egress_proxy: tuple[str, int | None] | None = None
    if sidecar is not None and sidecar.outbound_mode:
        mode, mode_from = sidecar.outbound_mode, sidecar.meta.ref
    if sidecar is not None and sidecar.egress_proxy_host:
        egress_proxy = (sidecar.egress_proxy_host, sidecar.egress_proxy_port)
    return ProxyScope(
        sidecar=sidecar,
        listener_services=tuple(listener_services),
        cluster_services=tuple(dedupe_for_clusters(every)),
        mode=mode,
        mode_from=mode_from,
        egress_proxy=egress_proxy,
        notes=tuple(notes),
        imports=catch_all.imports if catch_all else {},
        port_listeners=tuple(port_listeners),
    )
