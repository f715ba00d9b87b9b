"""Raw objects → :class:`lab.istiod.model.MeshService` (pilot's service registries).

Pilot sources:
- ``pilot/pkg/serviceregistry/serviceentry/conversion.go`` ``convertServices``: one service per
  (host, address); a ``/32`` CIDR becomes a plain IP; no ``addresses`` → ``0.0.0.0`` plus the
  auto-allocated address from ``status.addresses``; resolution NONE→Passthrough, DNS→DNSLB,
  DNS_ROUND_ROBIN→DNSRoundRobinLB, STATIC→ClientSideLB; ``convertServiceEntryToInstances``: DNS
  entries without endpoints get one endpoint, the host name, on ``targetPort`` or the port;
  ``getTLSModeFromWorkloadEntry``: ``tlsMode`` label or a service account → ``istio``.
- ``pilot/pkg/serviceregistry/kube/conversion.go`` ``ConvertService``: host
  ``name.ns.svc.cluster.local``; ``clusterIP: None`` → Passthrough (headless); ExternalName →
  Alias; ``networking.istio.io/exportTo`` annotation.
- ``pilot/pkg/model/push_context.go`` ``resolveServiceAliases``: an ExternalName Service becomes an
  alias of the concrete service it names (its host is added to that service's vhosts/SNI) and gets
  no listener or cluster of its own.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import replace

from lab.istiod import protocol
from lab.istiod.allocation import allocate_vips
from lab.istiod.endpoints import EndpointSlice, SliceEndpoint, endpoints_by_service
from lab.istiod.model import (
    ALIAS,
    CLIENT_SIDE_LB,
    DNS_LB,
    DNS_ROUND_ROBIN,
    EXTERNAL,
    KUBERNETES,
    PASSTHROUGH,
    UNSPECIFIED_IP,
    MeshEndpoint,
    MeshPort,
    MeshService,
)
from lab.istiod.resources import KubeService, ServiceEntry

_RESOLUTIONS = {
    "NONE": PASSTHROUGH, "DNS": DNS_LB, "DNS_ROUND_ROBIN": DNS_ROUND_ROBIN, "STATIC": CLIENT_SIDE_LB}
EXPORT_TO_ANNOTATION = "networking.istio.io/exportTo"


def _normalise_address(address: str) -> str | None:
    """An IP stays an IP, a ``/32`` CIDR becomes its IP, other CIDRs stay CIDRs; junk → None."""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        pass
    try:
        net = ipaddress.ip_network(address, strict=False)
    except ValueError:
        return None
    if net.prefixlen == net.max_prefixlen:
        return str(net.network_address)
    return str(net)


def _se_endpoints(se: ServiceEntry, resolution: str, host: str) -> tuple[MeshEndpoint, ...]:
    if not se.endpoints and not se.workload_selector and resolution in (DNS_LB, DNS_ROUND_ROBIN):
        ports = {p.name: (p.target_port or p.number) for p in se.ports}
        return (MeshEndpoint(address=host, ports=ports),)
    out = []
    for ep in se.endpoints:
        tls_mode = ep.labels.get("security.istio.io/tlsMode") or (
            "istio" if ep.service_account else "disabled")
        out.append(MeshEndpoint(address=ep.address, ports=dict(ep.ports), tls_mode=tls_mode))
    return tuple(out)


def services_from_entry(se: ServiceEntry, auto_v4: dict[tuple[str, str, str], str]) -> list[MeshService]:
    resolution = _RESOLUTIONS.get(se.resolution, PASSTHROUGH)
    ports = tuple(
        MeshPort(number=p.number, protocol=protocol.parse(p.protocol), name=p.name, target_port=p.target_port)
        for p in se.ports
    )
    export = frozenset(se.export_to) if se.export_to else None
    out: list[MeshService] = []
    for host in se.hosts:
        host = host.lower()
        addresses: list[str] = []
        if se.addresses:
            addresses = [a for a in (_normalise_address(x) for x in se.addresses) if a is not None]
        else:
            addresses = [UNSPECIFIED_IP]
        for address in addresses:
            out.append(
                MeshService(
                    hostname=host,
                    namespace=se.meta.namespace,
                    object_name=se.meta.name,
                    ref=se.meta.ref,
                    registry=EXTERNAL,
                    ports=ports,
                    resolution=resolution,
                    default_address=address,
                    auto_v4="" if se.addresses else auto_v4.get((se.meta.namespace, se.meta.name, host), ""),
                    mesh_external=se.location != "MESH_INTERNAL",
                    export_to=export,
                    created=se.meta.created,
                    endpoints=_se_endpoints(se, resolution, host),
                    service_accounts=se.subject_alt_names,
                    has_workload_selector=se.workload_selector,
                )
            )
    return out


def _kube_endpoints(svc: KubeService, endpoints: Sequence[SliceEndpoint]) -> tuple[MeshEndpoint, ...]:
    """Slice endpoints with their ports keyed by the Service port names they serve, and readiness."""
    names = {p.name for p in svc.ports}
    return tuple(
        MeshEndpoint(address=e.address, ports={n: port for n, port in e.ports.items() if n in names},
                     healthy=e.ready)
        for e in endpoints
    )


def service_from_kube(svc: KubeService, domain: str = "cluster.local",
                      endpoints: Sequence[SliceEndpoint] = ()) -> MeshService:
    external_name = svc.external_name if svc.type == "ExternalName" else ""
    resolution = CLIENT_SIDE_LB
    vips: tuple[str, ...] = ()
    if external_name:
        resolution = ALIAS
    elif svc.headless:
        resolution = PASSTHROUGH
    else:
        vips = tuple(ip for ip in svc.cluster_ips if ip and ip != "None")
    annotation = svc.meta.annotations.get(EXPORT_TO_ANNOTATION, "")
    export = frozenset(x.strip() for x in annotation.split(",") if x.strip()) if annotation else None
    ports = tuple(
        MeshPort(
            number=p.port,
            protocol=protocol.kube_port_protocol(p.port, p.name, p.protocol, p.app_protocol),
            name=p.name,
            target_port=p.target_port,
        )
        for p in svc.ports
    )
    return MeshService(
        hostname=f"{svc.meta.name}.{svc.meta.namespace}.svc.{domain}",
        namespace=svc.meta.namespace,
        object_name=svc.meta.name,
        ref=svc.meta.ref,
        registry=KUBERNETES,
        ports=ports,
        resolution=resolution,
        default_address=vips[0] if vips else UNSPECIFIED_IP,
        cluster_vips=vips,
        mesh_external=bool(external_name),
        export_to=export,
        created=svc.meta.created,
        external_name=external_name.lower(),
        endpoints=_kube_endpoints(svc, endpoints),
    )


def sort_by_creation(services: Iterable[MeshService]) -> list[MeshService]:
    """``SortServicesByCreationTime``: creation time, then name, then namespace. Objects without a
    timestamp sort first (as the zero time does in Go)."""
    def key(s: MeshService) -> tuple[str, str, str]:
        return (s.created, s.object_name if s.registry == KUBERNETES else s.hostname, s.namespace)

    return sorted(services, key=key)


def resolve_aliases(services: list[MeshService]) -> list[MeshService]:
    """``resolveServiceAliases``: attach each ExternalName host to the concrete service it names."""
    raw = {s.hostname: s.external_name for s in services if s.resolution == ALIAS}
    if not raw:
        return services
    aliases_for: dict[str, list[tuple[str, str]]] = {}
    for svc in services:
        if svc.resolution != ALIAS:
            continue
        target, seen = svc.external_name, {svc.hostname}
        while target in raw and target not in seen:
            seen.add(target)
            target = raw[target]
        if target in raw:  # a loop: Kubernetes answers NXDOMAIN, treat as absent
            continue
        aliases_for.setdefault(target, []).append((svc.namespace, svc.hostname))
    return [
        replace(s, aliases=tuple(h for _, h in sorted(aliases_for[s.hostname])))
        if s.hostname in aliases_for and s.resolution != ALIAS else s
        for s in services
    ]


def invalid_reason(se: ServiceEntry) -> str | None:
    """Why Istio's admission would reject this entry (``pkg/config/validation`` ``ValidateServiceEntry``),
    for the cases that change generation; None when it is accepted."""
    if not se.hosts or not se.ports:
        return "needs hosts and ports"
    if "*" in se.hosts:
        return 'hosts ["*"] is invalid'
    wildcard = any(h.startswith("*") for h in se.hosts)
    dns = se.resolution in ("DNS", "DNS_ROUND_ROBIN")
    if wildcard and dns and not se.endpoints and not se.workload_selector:
        return "wildcard host with DNS resolution and no endpoints is rejected at admission"
    return None


def build_registry(entries: Iterable[ServiceEntry], kube: Iterable[KubeService],
                   slices: Sequence[EndpointSlice] = ()) -> list[MeshService]:
    """Every service of both registries, creation-ordered, VIPs allocated, aliases resolved."""
    entries = list(entries)
    auto = allocate_vips(entries)
    services: list[MeshService] = []
    for se in entries:
        services.extend(services_from_entry(se, auto))
    by_service = endpoints_by_service(tuple(slices))
    services.extend(
        service_from_kube(k, endpoints=by_service.get((k.meta.namespace, k.meta.name), ())) for k in kube
    )
    return resolve_aliases(sort_by_creation(services))
