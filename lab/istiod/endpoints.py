"""EndpointSlices (``discovery.k8s.io``) → the endpoints of a Kubernetes Service.

Pilot sources: ``pilot/pkg/serviceregistry/kube/controller/endpointslice.go`` (slices join their
Service through the ``kubernetes.io/service-name`` label; endpoint ports are matched to Service
ports by name; endpoints whose ``conditions.ready`` is false are not healthy) and
``pilot/pkg/model/push_context.go`` ``ServiceEndpointsByPort``. Every endpoint is kept with its
readiness: the index behind ``ServiceEndpointsByPort`` (``pilot/pkg/model/endpointshards.go``
``CopyEndpoints``) does not look at health, so a headless Service gets a listener for a not-ready
pod too; EDS and the DNS name table leave such endpoints out (``lab.istiod.clusters``,
``lab.istiod.dns``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lab.istiod.meta import ObjectMeta, parse_meta

SERVICE_NAME_LABEL = "kubernetes.io/service-name"


@dataclass(frozen=True)
class SliceEndpoint:
    address: str
    ports: Mapping[str, int]  # port name -> port
    ready: bool = True


@dataclass(frozen=True)
class EndpointSlice:
    meta: ObjectMeta
    service: str
    endpoints: tuple[SliceEndpoint, ...]


def parse_endpoint_slice(obj: Mapping[str, Any]) -> EndpointSlice:
    meta = parse_meta(obj, "EndpointSlice")
    ports = {
        str(p.get("name") or ""): int(p["port"]) for p in obj.get("ports") or () if p.get("port") is not None
    }
    endpoints = []
    for ep in obj.get("endpoints") or ():
        ready = (ep.get("conditions") or {}).get("ready")
        for address in ep.get("addresses") or ():
            endpoints.append(SliceEndpoint(address=str(address), ports=dict(ports), ready=ready is not False))
    service = meta.labels.get(SERVICE_NAME_LABEL, "")
    return EndpointSlice(meta=meta, service=service, endpoints=tuple(endpoints))


def endpoints_by_service(slices: tuple[EndpointSlice, ...]) -> dict[tuple[str, str], list[SliceEndpoint]]:
    """(namespace, service name) → its endpoints, ready or not, in slice order."""
    out: dict[tuple[str, str], list[SliceEndpoint]] = {}
    for s in slices:
        if s.service:
            out.setdefault((s.meta.namespace, s.service), []).extend(s.endpoints)
    return out
