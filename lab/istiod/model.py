"""The generator's service model: pilot's ``model.Service`` in miniature.

One :class:`MeshService` per (host, address) of a ServiceEntry and per Kubernetes Service, as
pilot's ``serviceentry/conversion.go`` ``convertServices`` and ``kube/conversion.go``
``ConvertService`` produce them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

UNSPECIFIED_IP = "0.0.0.0"

# pilot model.Resolution values
PASSTHROUGH = "Passthrough"  # SE NONE, headless Service
DNS_LB = "DNSLB"  # SE DNS
DNS_ROUND_ROBIN = "DNSRoundRobinLB"  # SE DNS_ROUND_ROBIN
CLIENT_SIDE_LB = "ClientSideLB"  # SE STATIC, ClusterIP Service (EDS)
ALIAS = "Alias"  # ExternalName Service

KUBERNETES = "Kubernetes"
EXTERNAL = "External"


@dataclass(frozen=True)
class MeshPort:
    number: int
    protocol: str  # lab.istiod.protocol constant
    name: str = ""
    target_port: int | None = None


@dataclass(frozen=True)
class MeshEndpoint:
    """An endpoint (SE ``endpoints`` entry, or the host name itself for DNS entries)."""

    address: str
    ports: Mapping[str, int] = field(default_factory=dict)  # port name -> endpoint port
    tls_mode: str = "disabled"  # "istio" when labelled security.istio.io/tlsMode or has a serviceAccount
    healthy: bool = True  # an EndpointSlice endpoint whose conditions.ready is false is not


@dataclass(frozen=True)
class MeshService:
    hostname: str
    namespace: str
    object_name: str
    ref: str  # "ServiceEntry ns/name" or "Service ns/name"
    registry: str  # KUBERNETES | EXTERNAL
    ports: tuple[MeshPort, ...]
    resolution: str
    default_address: str = UNSPECIFIED_IP
    cluster_vips: tuple[str, ...] = ()
    auto_v4: str = ""
    mesh_external: bool = True
    export_to: frozenset[str] | None = None  # None: mesh default applies
    created: str = ""
    endpoints: tuple[MeshEndpoint, ...] = ()
    external_name: str = ""
    aliases: tuple[str, ...] = ()
    service_accounts: tuple[str, ...] = ()
    has_workload_selector: bool = False

    def address_for_proxy(self, uses_auto_allocation: bool) -> str:
        """``Service.GetAddressForProxy``: cluster VIP, else the auto-allocated VIP when this proxy uses
        them (DNS capture + allocation) and the entry has no address, else the default address."""
        if self.cluster_vips:
            return self.cluster_vips[0]
        if uses_auto_allocation and self.default_address == UNSPECIFIED_IP and self.auto_v4:
            return self.auto_v4
        return self.default_address

    def all_addresses_for_proxy(self, uses_auto_allocation: bool) -> tuple[str, ...]:
        """``Service.GetAllAddressesForProxy`` (IPv4 only in the lab)."""
        if self.cluster_vips:
            return self.cluster_vips
        if uses_auto_allocation and self.auto_v4:
            return (self.auto_v4,)
        if self.default_address != UNSPECIFIED_IP:
            return (self.default_address,)
        return ()

    def port(self, number: int) -> MeshPort | None:
        return next((p for p in self.ports if p.number == number), None)

    def with_ports(self, ports: tuple[MeshPort, ...]) -> MeshService:
        return replace(self, ports=ports)
