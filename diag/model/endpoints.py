"""EndpointSlices (``discovery.k8s.io/v1``): the endpoints of Kubernetes Services.

Predictions need them for headless Services (``clusterIP: None``): pilot builds one outbound
listener per endpoint address on the Service's TCP-family and auto ports, and the DNS proxy
answers a headless name with its endpoints' addresses. How istiod reads a slice:

- ``pilot/pkg/serviceregistry/kube/controller/endpointslice.go``: a slice joins its Service
  through the ``kubernetes.io/service-name`` label (same namespace); ``addressType: FQDN`` slices
  are ignored; every address of every endpoint becomes one endpoint per slice port, keyed by the
  port's *name*; ``conditions.ready`` absent or true = healthy, otherwise unhealthy (kept — only
  EDS and the DNS table leave unhealthy endpoints out); the same (address, port name) in two
  slices counts once (``endpointSliceCache.get``).
- ``pilot/pkg/model/endpointshards.go`` ``CopyEndpoints``: an endpoint port serves the Service port
  with the same name (a name the Service lacks matches nothing).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from diag.model.resources import Resource, Service

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
DISCOVERY_GROUP = "discovery.k8s.io"


class SliceError(ValueError):
    """A malformed EndpointSlice; the message names the field."""


@dataclass(frozen=True, kw_only=True)
class SliceEndpoint:
    """One address of one slice endpoint, with the ports (name → number) the slice lists."""

    address: str
    ports: Mapping[str, int]
    ready: bool = True
    hostname: str = ""


@dataclass(frozen=True, kw_only=True)
class EndpointSlice(Resource):
    """A discovery.k8s.io EndpointSlice, as istiod's endpoint-slice controller reads it."""

    kind: str = "EndpointSlice"
    address_type: str = "IPv4"
    endpoints: tuple[SliceEndpoint, ...] = ()

    @property
    def service(self) -> str:
        """The Service the slice belongs to (its ``kubernetes.io/service-name`` label)."""
        return self.labels.get(SERVICE_NAME_LABEL, "")


def parse_endpoint_slice(base: dict[str, Any], doc: Mapping[str, Any]) -> EndpointSlice:
    """The slice in `doc` (fields at the top level, not under ``spec``); raises SliceError."""
    ports: dict[str, int] = {}
    for i, item in enumerate(_items(doc.get("ports"), "ports")):
        number = item.get("port")
        if number is None:
            continue  # a port without a number: "all ports" (unused by Services with ports)
        if not isinstance(number, int) or isinstance(number, bool):
            raise SliceError(f"ports[{i}].port: expected an integer, got {type(number).__name__}")
        name = item.get("name") or ""
        if not isinstance(name, str):
            raise SliceError(f"ports[{i}].name: expected a string")
        ports.setdefault(name, number)
    endpoints: list[SliceEndpoint] = []
    for i, item in enumerate(_items(doc.get("endpoints"), "endpoints")):
        conditions = item.get("conditions") or {}
        if not isinstance(conditions, Mapping):
            raise SliceError(f"endpoints[{i}].conditions: expected a mapping")
        ready = conditions.get("ready")
        hostname = item.get("hostname") or ""
        addresses = item.get("addresses") or []
        if not isinstance(addresses, list) or not all(isinstance(a, str) for a in addresses):
            raise SliceError(f"endpoints[{i}].addresses: expected a list of strings")
        for address in addresses:
            endpoints.append(
                SliceEndpoint(address=address, ports=ports, ready=ready is not False, hostname=str(hostname))
            )
    address_type = doc.get("addressType") or "IPv4"
    if not isinstance(address_type, str):
        raise SliceError("addressType: expected a string")
    return EndpointSlice(**base, address_type=address_type, endpoints=tuple(endpoints))


def _items(value: Any, where: str) -> list[Mapping[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise SliceError(f"{where}: expected a list, got {type(value).__name__}")
    for i, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise SliceError(f"{where}[{i}]: expected a mapping")
    return value


def slices_by_service(slices: Iterable[EndpointSlice]) -> dict[tuple[str, str], list[EndpointSlice]]:
    """(namespace, Service name) → its slices (FQDN slices and slices without the label left out)."""
    out: dict[tuple[str, str], list[EndpointSlice]] = {}
    for s in slices:
        if s.service and s.address_type != "FQDN":
            out.setdefault((s.namespace, s.service), []).append(s)
    return out


def service_endpoints(svc: Service, slices: Iterable[EndpointSlice]) -> tuple[SliceEndpoint, ...]:
    """The Service's endpoints from its slices, ports narrowed to those the Service declares by
    name, each (address, port name) once, endpoints serving none of its ports left out."""
    names = {p.name for p in svc.ports}
    seen: set[tuple[str, str]] = set()
    by_address: dict[tuple[str, bool, str], dict[str, int]] = {}
    for s in slices:
        for ep in s.endpoints:
            ports = by_address.setdefault((ep.address, ep.ready, ep.hostname), {})
            for name, number in ep.ports.items():
                if name in names and (ep.address, name) not in seen:
                    seen.add((ep.address, name))
                    ports[name] = number
    return tuple(
        SliceEndpoint(address=address, ports=ports, ready=ready, hostname=hostname)
        for (address, ready, hostname), ports in by_address.items()
        if ports
    )
