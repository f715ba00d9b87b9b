"""VirtualService objects as the generator reads them (sidecar HTTP routes only).

The rules are kept as the raw dicts of ``spec.http``/``tls``/``tcp``: HTTP rules become Envoy
routes (``lab/istiod/virtualservices.py``), TLS/TCP rules filter chains (``lab/istiod/vschains.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lab.istiod.meta import ObjectMeta, parse_meta, strs


@dataclass(frozen=True)
class VirtualService:
    meta: ObjectMeta
    hosts: tuple[str, ...]
    gateways: tuple[str, ...]  # empty: bound to the mesh
    export_to: tuple[str, ...]
    http: tuple[Mapping[str, Any], ...]
    tls_or_tcp_rules: int = 0
    tls: tuple[Mapping[str, Any], ...] = ()
    tcp: tuple[Mapping[str, Any], ...] = ()

    @property
    def mesh_bound(self) -> bool:
        """``getGatewayNames``: no gateways means ``mesh``."""
        return not self.gateways or "mesh" in self.gateways


def parse_virtual_service(obj: Mapping[str, Any]) -> VirtualService:
    spec = obj.get("spec") or {}
    http = tuple(dict(rule) for rule in spec.get("http") or () if isinstance(rule, Mapping))
    return VirtualService(
        meta=parse_meta(obj, "VirtualService"),
        hosts=tuple(h.lower() for h in strs(spec.get("hosts"))),
        gateways=strs(spec.get("gateways")),
        export_to=strs(spec.get("exportTo")),
        http=http,
        tls_or_tcp_rules=len(spec.get("tls") or ()) + len(spec.get("tcp") or ()),
        tls=tuple(dict(r) for r in spec.get("tls") or () if isinstance(r, Mapping)),
        tcp=tuple(dict(r) for r in spec.get("tcp") or () if isinstance(r, Mapping)),
    )
