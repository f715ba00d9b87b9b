"""Sidecar ``egress.hosts`` imports and the per-host choice of one service.

Pilot sources: ``pilot/pkg/model/sidecar.go`` ``convertIstioListenerToWrapper`` (host entries
``ns/host``; ``.`` is the proxy's namespace; ``*`` any namespace; a ``~`` prefix excludes),
``hostClassification.Matches``/``Excluded``, ``selectServices`` (with ``PILOT_UNIFIED_SIDECAR_SCOPE``,
default on: one namespace per host — the proxy's own namespace, else a Kubernetes Service over a
ServiceEntry, else the first seen) and ``appendSidecarServices``/``canMergeServices``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from lab.istiod.hosts import subset_of
from lab.istiod.model import KUBERNETES, MeshService


@dataclass
class HostImports:
    """The hosts one Sidecar egress listener imports from one namespace."""

    hosts: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)

    def matches(self, hostname: str) -> bool:
        return any(subset_of(hostname, h) for h in self.hosts)

    def excludes(self, hostname: str) -> bool:
        return any(subset_of(hostname, h) for h in self.excluded)


def parse_egress_hosts(entries: Sequence[str], config_ns: str) -> tuple[dict[str, HostImports], list[str]]:
    """``ns/host`` entries → imports per namespace (``*`` = any); problems for malformed entries."""
    out: dict[str, HostImports] = {}
    problems: list[str] = []
    for entry in entries:
        if entry.count("/") != 1:
            problems.append(f"illegal Sidecar egress host {entry!r} (must be namespace/dnsName)")
            continue
        ns, name = entry.split("/")
        excluded = ns.startswith("~")
        if excluded:
            ns = ns[1:] or "*"
        if ns == ".":
            ns = config_ns
        imports = out.setdefault(ns, HostImports())
        (imports.excluded if excluded else imports.hosts).append(name.lower())
    return out, problems


def select_services(services: Sequence[MeshService], config_ns: str,
                    imports: dict[str, HostImports]) -> list[MeshService]:
    """``selectServices``: the imported services, one namespace per host name."""
    wildcard = imports.get("*")
    imported: list[MeshService] = []
    for svc in services:
        own = imports.get(svc.namespace)
        if (own and own.excludes(svc.hostname)) or (wildcard and wildcard.excludes(svc.hostname)):
            continue
        if (own and own.matches(svc.hostname)) or (wildcard and wildcard.matches(svc.hostname)):
            imported.append(svc)
    chosen: dict[str, tuple[str, bool]] = {}
    for svc in imported:
        is_kube = svc.registry == KUBERNETES
        seen = chosen.get(svc.hostname)
        prefer_kube = seen is not None and not seen[1] and is_kube and (
            svc.namespace == config_ns or seen[0] != config_ns)
        if seen is None or svc.namespace == config_ns or prefer_kube:
            chosen[svc.hostname] = (svc.namespace, is_kube)
    return [s for s in imported if chosen[s.hostname][0] == s.namespace]


def _can_merge(a: MeshService, b: MeshService) -> bool:
    return (a.namespace == b.namespace and a.resolution == b.resolution and a.registry == b.registry
            and a.export_to == b.export_to and a.has_workload_selector == b.has_workload_selector)


def dedupe_for_clusters(services: Sequence[MeshService]) -> list[MeshService]:
    """``appendSidecarServices``: one service per host name for CDS (Kubernetes first, else the oldest;
    ports of a mergeable later entry are added)."""
    out: list[MeshService] = []
    index: dict[str, int] = {}
    for svc in services:
        if svc.hostname not in index:
            index[svc.hostname] = len(out)
            out.append(svc)
            continue
        pos = index[svc.hostname]
        existing = out[pos]
        if existing is svc or (existing.registry == KUBERNETES and svc.registry != KUBERNETES):
            continue
        if existing.registry != KUBERNETES and svc.registry == KUBERNETES:
            out[pos] = svc
            continue
        if existing.ports == svc.ports or not _can_merge(existing, svc):
            continue
        known = {p.number for p in existing.ports}
        out[pos] = existing.with_ports(existing.ports + tuple(p for p in svc.ports if p.number not in known))
    return out
