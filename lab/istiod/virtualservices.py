"""VirtualService HTTP routes for a sidecar (``gateways`` empty or ``mesh``).

Pilot sources:
- ``pilot/pkg/model/push_context.go`` ``initVirtualServices`` and ``model/virtualservice.go``
  ``SelectVirtualServices``: VSs exported to the proxy's namespace (``exportTo``, default ``*``),
  private ones first, then exported, then public, each in creation order; a VS is imported when one
  of its hosts matches (either way, ``host.Name.Matches``) a Sidecar egress host of its namespace.
- ``pilot/pkg/model/sidecar.go`` ``computeWildcardHostVirtualServiceIndex``: each service takes
  the most specific VS host (exact, else the longest wildcard; the first VS wins a tie).
- ``pilot/pkg/networking/core/route/route.go`` ``BuildSidecarVirtualHostWrapper``,
  ``separateVSHostsAndServices``, ``buildSidecarVirtualHostsForVirtualService``: a VS's routes
  replace the default vhost of every service it matches that has an HTTP/auto port of the route's
  number; hosts matching no service get their own vhost on port 80 only; no fallback route is
  added (an unmatched request gets 404 NR).
- Route translation (``TranslateRoute`` and friends) lives in ``lab/istiod/vsroutes.py``; the
  services only VS destinations name get clusters (``sidecar.go`` ``collectImportedServices``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lab.istiod.hosts import matches, most_specific
from lab.istiod.imports import HostImports
from lab.istiod.model import MeshService
from lab.istiod.scope import MeshSettings
from lab.istiod.vsparse import VirtualService
from lab.istiod.vsroutes import build_vs_routes


def select_virtual_services(
    vss: Sequence[VirtualService], mesh: MeshSettings, ns: str, imports: Mapping[str, HostImports]
) -> list[VirtualService]:
    """``SelectVirtualServices`` for the mesh gateway."""
    ordered = sorted(
        (v for v in vss if v.mesh_bound), key=lambda v: (v.meta.created, v.meta.namespace, v.meta.name)
    )
    private, exported, public = [], [], []
    for vs in ordered:
        export = set(vs.export_to) or set(mesh.default_vs_export_to)
        if "*" in export:
            public.append(vs)
        elif "~" in export:
            continue
        elif vs.meta.namespace == ns and ("." in export or ns in export):
            private.append(vs)
        elif ns in export:
            exported.append(vs)
    wildcard = imports.get("*")
    out: list[VirtualService] = []
    for vs in [*private, *exported, *public]:
        own = imports.get(vs.meta.namespace)
        for h in vs.hosts:
            excluded = (own and own.excludes(h)) or (wildcard and wildcard.excludes(h))
            imported = any(
                imp and any(matches(h, pattern) for pattern in imp.hosts) for imp in (own, wildcard)
            )
            if imported and not excluded:
                out.append(vs)
                break
    return out


def most_specific_index(vss: Sequence[VirtualService], hostnames: Sequence[str]) -> dict[str, VirtualService]:
    """``computeWildcardHostVirtualServiceIndex``: service host → the VS with its most specific host."""
    first_by_host: dict[str, VirtualService] = {}
    for vs in vss:
        for h in vs.hosts:
            first_by_host.setdefault(h, vs)
    out = {}
    for hostname in hostnames:
        best = most_specific(hostname, list(first_by_host))
        if best is not None:
            out[hostname] = first_by_host[best]
    return out


def split_hosts(
    vs: VirtualService, services: Mapping[str, MeshService], index: Mapping[str, VirtualService]
) -> tuple[list[str], list[MeshService]]:
    """``separateVSHostsAndServices``: (hosts matching no service, services the VS applies to)."""
    plain: list[str] = []
    matched: list[MeshService] = []
    for h in vs.hosts:
        if h.startswith("*"):
            found = [s for name, s in services.items() if matches(name, h)]
            matched.extend(s for s in found if index.get(s.hostname) is vs and s not in matched)
            if not found:
                plain.append(h)
        elif h in services:
            if services[h] not in matched:
                matched.append(services[h])
        else:
            plain.append(h)
    return plain, matched


def _vs_applies_to_port(vs: VirtualService, services: Mapping[str, MeshService]) -> bool:
    """``selectVirtualServices`` (httproute.go): on ports other than 80 only VSs naming a service."""
    for h in vs.hosts:
        if h in services:
            return True
        if any(matches(h, name) for name in services if h.startswith("*") or name.startswith("*")):
            return True
    return False


def vs_wrappers(
    vss: Sequence[VirtualService],
    port: int,
    by_host: Mapping[str, MeshService],
    labels: Mapping[str, str],
    ns: str,
    mesh_retry: Mapping[str, Any] | None,
) -> list[tuple[list[str], list[MeshService], list[dict[str, Any]]]]:
    """``BuildSidecarVirtualHostWrapper``'s VS part for one port: (plain hosts, services, routes)."""
    from lab.istiod import protocol

    trimmed = {h: s.with_ports(tuple(p for p in s.ports if p.number == port)) for h, s in by_host.items()}
    candidates = vss if port == 80 else [vs for vs in vss if _vs_applies_to_port(vs, by_host)]
    index = most_specific_index(vss, list(by_host))
    out = []
    for vs in candidates:
        routes = build_vs_routes(vs, port, trimmed, labels, ns, mesh_retry)
        if not routes:
            continue
        plain, matched = split_hosts(vs, by_host, index)
        http_services = [
            s
            for s in matched
            if any(protocol.is_http_or_sniffed(p.protocol) for p in trimmed[s.hostname].ports)
        ]
        if http_services or port == 80:
            out.append((plain, http_services, routes))
    return out


def destination_hosts(vss: Sequence[VirtualService]) -> dict[str, set[int]]:
    """``virtualServiceDestinations``: host → destination ports (0: every port)."""
    out: dict[str, set[int]] = {}
    for vs in vss:
        for rule in (*vs.http, *vs.tls, *vs.tcp):
            for route in rule.get("route") or []:
                dest = route.get("destination") or {}
                if dest.get("host"):
                    number = int((dest.get("port") or {}).get("number") or 0)
                    out.setdefault(str(dest["host"]).lower(), set()).add(number)
    return out


def destination_services(
    vss: Sequence[VirtualService], registry: Sequence[MeshService], ns: str, visible: Sequence[MeshService]
) -> list[MeshService]:
    """``collectImportedServices``: services VS destinations name, for CDS even when the Sidecar does
    not import them — the one in the proxy's namespace, else the first visible namespace
    alphabetically; trimmed to the destination ports (``serviceMatchingVirtualServicePorts``)."""
    out = []
    visible_keys = {(s.hostname, s.namespace) for s in visible}
    for host, ports in destination_hosts(vss).items():
        candidates = [s for s in registry if s.hostname == host]
        own = [s for s in candidates if s.namespace == ns]
        if not own:
            shown = sorted(
                (s for s in candidates if (s.hostname, s.namespace) in visible_keys),
                key=lambda s: s.namespace,
            )
            own = [s for s in shown if s.namespace == shown[0].namespace] if shown else []
        for svc in own[:1]:
            if 0 in ports:
                out.append(svc)
                continue
            kept = tuple(p for p in svc.ports if p.number in ports)
            if kept:
                out.append(svc if len(kept) == len(svc.ports) else svc.with_ports(kept))
    return out
