"""The snapshot: every valid loaded object, the MeshConfig, and indexes by host, port and address.

`Snapshot.build(objects, mesh)` validates (`diag.model.validation`), drops what admission would reject
(kept in `invalid`), converts ServiceEntries and Kubernetes Services into `MeshService`s — one per
host, as pilot's registries do (`pilot/pkg/serviceregistry/serviceentry/conversion.go`
`convertServices`, `pilot/pkg/serviceregistry/kube/conversion.go` `ConvertService`) — and indexes
them so a prediction never scans every entry:

- `exact_host[host]`, and wildcard entries by their suffix (`*.example.com` under `example.com`);
- `by_port[number]`;
- `by_address[ip]` (user addresses, ClusterIPs, auto-allocated `status.addresses`), CIDRs apart.

Per-source caches (`cache`) hold the proxy scopes built by `diag.predict.sidecar`.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from diag.model.endpoints import EndpointSlice, SliceEndpoint, service_endpoints, slices_by_service
from diag.model.resources import (
    AuthorizationPolicy,
    ControlPlane,
    DestinationRule,
    EnvoyFilter,
    Gateway,
    MeshConfig,
    Namespace,
    Pod,
    Port,
    ProxyConfigResource,
    Resource,
    Service,
    ServiceEntry,
    Sidecar,
    VirtualService,
    WasmPlugin,
    WorkloadEndpoint,
)

if TYPE_CHECKING:
    from diag.model.validation import ValidationMessage


@dataclass(frozen=True, kw_only=True, eq=False)
class MeshService:
    """One host of a ServiceEntry, or one Kubernetes Service, as pilot's `model.Service`.

    `addresses` are the user's (SE `addresses`, Service ClusterIPs; may hold CIDRs);
    `auto_addresses` the allocator's (`status.addresses`). `resolution` uses the SE names; a
    ClusterIP Service is "STATIC" (EDS), a headless one "NONE" (passthrough), an ExternalName one
    "ALIAS": since 1.21 (`ENABLE_EXTERNAL_NAME_ALIAS`, default on, flag removed in 1.24) it is an
    alias of the Service it names and builds no listener or cluster of its own.
    """

    host: str
    namespace: str
    ports: tuple[Port, ...]
    resource: ServiceEntry | Service
    addresses: tuple[str, ...] = ()
    auto_addresses: tuple[str, ...] = ()
    resolution: str = "NONE"
    location: str = "MESH_EXTERNAL"
    export_to: tuple[str, ...] = ()  # as written; empty = the mesh default
    endpoints: tuple[WorkloadEndpoint, ...] = ()
    external_name: str = ""
    headless: bool = False
    slice_endpoints: tuple[SliceEndpoint, ...] = ()  # a Kubernetes Service's, from its EndpointSlices
    index: int = 0  # position among the resource's hosts
    assumed_address: bool = False  # a stand-in ClusterIP: the input had none

    @property
    def ref(self) -> str:
        """The owning object's ref ("ServiceEntry ns/name" or "Service ns/name")."""
        return self.resource.ref

    @property
    def kind(self) -> str:
        """ "ServiceEntry" or "Service"."""
        return self.resource.kind

    @property
    def created(self) -> str | None:
        """Creation timestamp of the owning object."""
        return self.resource.created

    @property
    def is_wildcard(self) -> bool:
        """Host starts with `*` (`*.example.com`)."""
        return self.host.startswith("*")

    def port(self, number: int) -> Port | None:
        """The declared port with this number, if any."""
        for port in self.ports:
            if port.number == number:
                return port
        return None

    @property
    def cidr_addresses(self) -> tuple[str, ...]:
        """User addresses written as CIDR ranges (other than /32 or /128)."""
        return tuple(a for a in self.addresses if _is_cidr(a))

    @property
    def ip_addresses(self) -> tuple[str, ...]:
        """User addresses that are single IPs (a /32 counts as an IP)."""
        return tuple(_strip_host_prefix(a) for a in self.addresses if not _is_cidr(a))


def host_matches(pattern: str, host: str) -> bool:
    """Whether a service host (maybe `*.suffix` or `*`) covers `host` (host.Name.Matches).

    Case-insensitive, as Envoy lower-cases Host and SNI. `*.example.com` does not cover the apex.
    """
    pattern = pattern.lower()
    host = host.lower()
    if pattern == "*":
        return True
    if pattern.startswith("*"):
        return host.endswith(pattern[1:]) and host != pattern[2:]
    return pattern == host


@dataclass(frozen=True, kw_only=True, eq=False)
class Snapshot:
    """Valid objects, the mesh config, and the indexes predictions use."""

    mesh: MeshConfig
    service_entries: tuple[ServiceEntry, ...] = ()
    services: tuple[Service, ...] = ()
    sidecars: tuple[Sidecar, ...] = ()
    destination_rules: tuple[DestinationRule, ...] = ()
    virtual_services: tuple[VirtualService, ...] = ()
    gateways: tuple[Gateway, ...] = ()
    authorization_policies: tuple[AuthorizationPolicy, ...] = ()
    namespaces: Mapping[str, Namespace] = field(default_factory=dict)
    pods: tuple[Pod, ...] = ()
    proxy_configs: tuple[ProxyConfigResource, ...] = ()
    envoy_filters: tuple[EnvoyFilter, ...] = ()
    wasm_plugins: tuple[WasmPlugin, ...] = ()
    control_planes: tuple[ControlPlane, ...] = ()
    invalid: tuple[ValidationMessage, ...] = ()  # errors of the objects left out
    warnings: tuple[ValidationMessage, ...] = ()  # validation warnings on kept objects
    istio_version: str | None = None
    mesh_services: tuple[MeshService, ...] = ()
    exact_host: Mapping[str, tuple[MeshService, ...]] = field(default_factory=dict)
    wildcard_suffix: Mapping[str, tuple[MeshService, ...]] = field(default_factory=dict)
    by_port: Mapping[int, tuple[MeshService, ...]] = field(default_factory=dict)
    by_address: Mapping[str, tuple[MeshService, ...]] = field(default_factory=dict)
    cidr_services: tuple[MeshService, ...] = ()
    sidecars_by_namespace: Mapping[str, tuple[Sidecar, ...]] = field(default_factory=dict)
    cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def build(
        cls,
        objects: Iterable[Resource],
        mesh: MeshConfig | None = None,
        *,
        istio_version: str | None = None,
        validate: bool = True,
    ) -> Snapshot:
        """Validate, drop invalid objects, convert services and build the indexes."""
        from diag.model.loader import paused_gc

        with paused_gc():
            return cls._build(objects, mesh, istio_version=istio_version, validate=validate)

    @classmethod
    def _build(
        cls,
        objects: Iterable[Resource],
        mesh: MeshConfig | None,
        *,
        istio_version: str | None,
        validate: bool,
    ) -> Snapshot:
        from diag.model.validation import validate_all

        objs = list(objects)
        mesh = mesh or MeshConfig()
        invalid: tuple[ValidationMessage, ...] = ()
        warnings: tuple[ValidationMessage, ...] = ()
        if validate:
            objs, invalid, warnings = validate_all(objs)
        grouped: dict[type, list[Any]] = defaultdict(list)
        for obj in objs:
            grouped[type(obj)].append(obj)
        services_k8s = tuple(grouped[Service])
        entries = tuple(grouped[ServiceEntry])
        slices = slices_by_service(grouped[EndpointSlice])
        mesh_services = _convert(entries, services_k8s, mesh.domain_suffix, slices)
        sidecars = tuple(grouped[Sidecar])
        planes = tuple(grouped[ControlPlane])
        version = istio_version or next((p.version for p in planes if p.version), None)
        return cls(
            mesh=mesh,
            service_entries=entries,
            services=services_k8s,
            sidecars=sidecars,
            destination_rules=tuple(grouped[DestinationRule]),
            virtual_services=tuple(grouped[VirtualService]),
            gateways=tuple(grouped[Gateway]),
            authorization_policies=tuple(grouped[AuthorizationPolicy]),
            namespaces={n.name: n for n in grouped[Namespace]},
            pods=tuple(grouped[Pod]),
            proxy_configs=tuple(grouped[ProxyConfigResource]),
            envoy_filters=tuple(grouped[EnvoyFilter]),
            wasm_plugins=tuple(grouped[WasmPlugin]),
            control_planes=planes,
            invalid=invalid,
            warnings=warnings,
            istio_version=version,
            mesh_services=mesh_services,
            **_indexes(mesh_services),
            sidecars_by_namespace=_group_by_namespace(sidecars),
        )

    def services_for_host(self, host: str) -> tuple[MeshService, ...]:
        """Services whose host is `host` exactly or a wildcard covering it (index lookups only)."""
        name = host.lower()
        found: list[MeshService] = list(self.exact_host.get(name, ()))
        labels = name.split(".")
        for i in range(1, len(labels) + 1):
            suffix = ".".join(labels[i:])
            for svc in self.wildcard_suffix.get(suffix, ()):
                if host_matches(svc.host, name):
                    found.append(svc)
        return tuple(found)

    def services_on_port(self, port: int) -> tuple[MeshService, ...]:
        """Services declaring `port`."""
        return self.by_port.get(port, ())

    def services_with_address(self, address: str) -> tuple[MeshService, ...]:
        """Services whose user, ClusterIP or auto-allocated address is `address` or a CIDR covering it."""
        found = list(self.by_address.get(address, ()))
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return tuple(found)
        for svc in self.cidr_services:
            if any(_in_cidr(ip, c) for c in svc.cidr_addresses):
                found.append(svc)
        return tuple(found)

    def namespace_labels(self, namespace: str) -> Mapping[str, str]:
        """Labels of a loaded Namespace (empty if the Namespace object was not given)."""
        ns = self.namespaces.get(namespace)
        return ns.labels if ns is not None else {}


def _convert(
    entries: Sequence[ServiceEntry],
    services: Sequence[Service],
    domain_suffix: str,
    slices: Mapping[tuple[str, str], list[EndpointSlice]] | None = None,
) -> tuple[MeshService, ...]:
    """One MeshService per (host, address), as `conversion.go` `convertServices` builds them."""
    out: list[MeshService] = []
    append = out.append
    new, set_attribute = _new_object, _set_attribute
    for se in entries:
        namespace, ports, resolution, location = se.namespace, se.ports, se.resolution, se.location
        export_to, workloads, se_addresses = se.export_to, se.endpoints, se.addresses
        addresses: list[tuple[str, ...]] = [(a,) for a in se_addresses] if se_addresses else [()]
        status = se.status_host_addresses
        for i, host in enumerate(se.hosts):
            name = host.lower()
            auto = () if se_addresses else status.get(name, ())
            for addr in addresses:
                # `_mesh_service` inlined: every field in declaration order, defaults as declared
                converted = new(MeshService)
                set_attribute(converted, "__dict__", {
                    "host": name, "namespace": namespace, "ports": ports, "resource": se,
                    "addresses": addr, "auto_addresses": auto, "resolution": resolution,
                    "location": location, "export_to": export_to, "endpoints": workloads,
                    "external_name": "", "headless": False, "slice_endpoints": (), "index": i,
                    "assumed_address": False,
                })  # fmt: skip
                append(converted)
    for svc in services:
        own = slices.get((svc.namespace, svc.name)) if slices else None
        # a Service without EndpointSlices has no endpoints (what service_endpoints gives for none)
        endpoints = service_endpoints(svc, own) if own else ()
        append(_convert_service(svc, domain_suffix, endpoints))
    return tuple(out)


_new_object = object.__new__
_set_attribute = object.__setattr__


def _mesh_service(values: dict[str, Any]) -> MeshService:
    """A MeshService from a dict of all its fields, in declaration order.

    Fast path for the thousands built per snapshot: the frozen dataclass `__init__` stores each
    field with one `object.__setattr__` call; this stores the same values as the instance dict at
    once, so the object is the one `MeshService(**values)` gives.
    """
    svc = _new_object(MeshService)
    _set_attribute(svc, "__dict__", values)
    return svc


def _convert_service(
    svc: Service, domain_suffix: str, endpoints: tuple[SliceEndpoint, ...] = ()
) -> MeshService:
    """kube/conversion.go ConvertService: ExternalName → Alias, headless → passthrough, else EDS."""
    addresses: tuple[str, ...] = ()
    assumed = False
    headless = svc.headless
    if svc.type == "ExternalName" and svc.external_name:
        resolution = "ALIAS"
    elif headless:
        resolution = "NONE"
    else:
        ips = svc.cluster_ips or ((svc.cluster_ip,) if svc.cluster_ip else ())
        resolution, addresses = "STATIC", tuple([ip for ip in ips if ip and ip.lower() != "none"])
        if not addresses:  # a manifest without clusterIP: the API server assigns one on creation
            addresses, assumed = (_stand_in_cluster_ip(svc),), True
    return _mesh_service({
        "host": svc.hostname(domain_suffix),
        "namespace": svc.namespace, "ports": tuple(svc.ports), "resource": svc,
        "addresses": addresses, "auto_addresses": (), "resolution": resolution,
        "location": "MESH_INTERNAL", "export_to": svc.export_to, "endpoints": (),
        "external_name": svc.external_name if svc.type == "ExternalName" else "",
        "headless": headless, "slice_endpoints": endpoints, "index": 0, "assumed_address": assumed,
    })  # fmt: skip


def _stand_in_cluster_ip(svc: Service) -> str:
    """A stable stand-in ClusterIP (198.18.0.0/15, the benchmarking range) for a Service given without one."""
    digest = hashlib.sha256(f"{svc.namespace}/{svc.name}".encode()).digest()
    return f"198.{18 + digest[0] % 2}.{digest[1]}.{max(1, digest[2])}"


def _indexes(services: Sequence[MeshService]) -> dict[str, Any]:
    exact: dict[str, list[MeshService]] = defaultdict(list)
    wild: dict[str, list[MeshService]] = defaultdict(list)
    ports: dict[int, list[MeshService]] = defaultdict(list)
    addrs: dict[str, list[MeshService]] = defaultdict(list)
    cidrs: list[MeshService] = []
    for svc in services:
        host = svc.host
        if host.startswith("*"):  # is_wildcard
            wild[host[2:] if host.startswith("*.") else ""].append(svc)
        else:
            exact[host].append(svc)
        for port in svc.ports:
            ports[port.number].append(svc)
        # ip_addresses then auto_addresses, and cidr_addresses, from one pass over the addresses
        has_cidr = False
        for address in svc.addresses:
            if "/" not in address:
                addrs[address].append(svc)
            elif _is_cidr(address):
                has_cidr = True
            else:
                addrs[_strip_host_prefix(address)].append(svc)
        for ip in svc.auto_addresses:
            addrs[ip].append(svc)
        if has_cidr:
            cidrs.append(svc)
    return {
        "exact_host": {k: tuple(v) for k, v in exact.items()},
        "wildcard_suffix": {k: tuple(v) for k, v in wild.items()},
        "by_port": {k: tuple(v) for k, v in ports.items()},
        "by_address": {k: tuple(v) for k, v in addrs.items()},
        "cidr_services": tuple(cidrs),
    }


def _group_by_namespace(sidecars: Sequence[Sidecar]) -> dict[str, tuple[Sidecar, ...]]:
    grouped: dict[str, list[Sidecar]] = defaultdict(list)
    for sc in sidecars:
        grouped[sc.namespace].append(sc)
    return {k: tuple(v) for k, v in grouped.items()}


@lru_cache(maxsize=4096)
def _is_cidr(text: str) -> bool:
    if "/" not in text:
        return False
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return net.prefixlen != net.max_prefixlen


def _strip_host_prefix(text: str) -> str:
    return text.split("/", 1)[0] if "/" in text else text


def _in_cidr(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, cidr: str) -> bool:
    try:
        return ip in ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False
