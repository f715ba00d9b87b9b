"""The per-proxy scope: which services a source's sidecar gets, in pilot's order, and its settings.

`scope_for(snapshot, source)` is built once per source (cached on the snapshot) in one pass over
the services, then every prediction for that source uses its indexes:

- visible = inside discoverySelectors and exported to the source namespace, ordered as
  `push_context.go` `servicesExportedToNamespace` gives them (services private to / explicitly
  exported to the namespace first, then public ones; each list by creation time, name, namespace:
  `SortServicesByCreationTime`);
- imported = the Sidecar's egress hosts (`sidecar.go` `selectServices`), per hostname only one
  namespace kept (the proxy's own, else a Kubernetes Service, else the first:
  `PILOT_UNIFIED_SIDECAR_SCOPE`) — these build the listeners;
- `primary[host]` = the service whose clusters/routes win (`appendSidecarServices`: a Kubernetes
  Service beats a ServiceEntry; otherwise the first one wins, ports merged when mergeable).

Per-proxy address use (`pilot/pkg/model/service.go` `GetAddressForProxy`, `nodeUsesAutoallocatedIPs`):
auto-allocated VIPs are used only when the proxy captures DNS and allocation is on (v2 default on
from 1.25, or `ISTIO_META_DNS_AUTO_ALLOCATE`), never for NONE, wildcard, user-addressed or
opted-out entries (`pilot/pkg/networking/serviceentry/ip_autoallocation.go`).
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from diag.model.loader import paused_gc
from diag.model.resources import EnvoyFilter, ServiceEntry, Sidecar, VirtualService, WasmPlugin
from diag.model.snapshot import MeshService, Snapshot, host_matches
from diag.predict.model import ModeDecision, Source
from diag.predict.visibility import (
    config_exported,
    effective_mode,
    in_discovery_scope,
    sidecar_for,
    sidecar_importer,
)

WILDCARD = "0.0.0.0"


@dataclass(eq=False)
class ProxyScope:
    """What one source proxy sees; built by `scope_for`."""

    snapshot: Snapshot
    source: Source
    sidecar: Sidecar | None
    mode: ModeDecision
    dns_capture: bool
    uses_auto_ips: bool
    services: list[MeshService] = field(default_factory=list)  # listener services, pilot order
    by_port: dict[int, list[MeshService]] = field(default_factory=dict)
    by_host: dict[str, list[MeshService]] = field(default_factory=dict)
    primary: dict[str, MeshService] = field(default_factory=dict)  # host → winning service
    primary_ports: dict[str, set[int]] = field(default_factory=dict)
    wildcard_primary: dict[str, list[MeshService]] = field(default_factory=dict)  # suffix → services
    unmodelled: tuple[str, ...] = ()
    aliases: dict[str, list[MeshService]] = field(default_factory=dict)  # concrete host → alias services
    notes: list[str] = field(default_factory=list)
    cache: dict[Any, Any] = field(default_factory=dict)

    def address_for(self, svc: MeshService) -> str:
        """`GetAddressForProxy`: ClusterIP/SE address, the auto VIP if this proxy uses them, else 0.0.0.0."""
        if svc.addresses:
            return host_prefix_as_ip(svc.addresses[0])
        vip = self.auto_vip(svc)
        return vip if vip else WILDCARD

    def auto_vip(self, svc: MeshService) -> str | None:
        """The auto-allocated VIP this proxy would use for `svc`, if any."""
        if not self.uses_auto_ips or not isinstance(svc.resource, ServiceEntry):
            return None
        if svc.addresses or svc.resolution == "NONE" or svc.is_wildcard or svc.resource.autoallocate_opt_out:
            return None
        for addr in svc.auto_addresses:
            if ":" not in addr:
                return addr
        return synthetic_vip(svc)

    def aliases_of(self, host: str) -> tuple[str, ...]:
        """Hostnames of ExternalName Services that alias `host` (`resolveServiceAliases`)."""
        found = self.aliases.get(host)
        return tuple(a.host for a in found) if found else ()

    def resolve_alias(self, host: str) -> str:
        """The concrete host an alias chain ends at (the host itself when it is no alias)."""
        seen = {host}
        svc = self.primary.get(host)
        while svc is not None and svc.resolution == "ALIAS" and svc.external_name:
            host = svc.external_name.lower().rstrip(".")
            if host in seen:
                break
            seen.add(host)
            svc = self.primary.get(host)
        return host

    def primary_for(self, host: str) -> MeshService | None:
        """The winning service for an exact host, else the most specific wildcard covering it."""
        name = host.lower()
        if name in self.primary:
            return self.primary[name]
        best: MeshService | None = None
        labels = name.split(".")
        for i in range(1, len(labels) + 1):
            for svc in self.wildcard_primary.get(".".join(labels[i:]), ()):
                if host_matches(svc.host, name) and (best is None or len(svc.host) > len(best.host)):
                    best = svc
            if best is not None:
                return best
        return best


def host_prefix_as_ip(address: str) -> str:
    """A full-length prefix ("1.2.3.4/32", "2001:db8::1/128") is a plain IP (`convertServices`)."""
    if "/" not in address:
        return address
    try:
        net = ipaddress.ip_network(address, strict=False)
    except ValueError:
        return address
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else address


def synthetic_vip(svc: MeshService) -> str:
    """A stable stand-in for an allocation not recorded in `status.addresses` (240.240.0.0/16)."""
    digest = hashlib.sha256(f"{svc.namespace}/{svc.resource.name}/{svc.host}".encode()).digest()
    return f"240.240.{digest[0]}.{max(1, digest[1])}"


def _proxy_config_capture(snapshot: Snapshot, source: Source) -> bool | None:
    """ISTIO_META_DNS_CAPTURE from ProxyConfig resources (`pilot/pkg/model/proxy_config.go`
    `EffectiveProxyConfig`: workload-selected in the namespace > namespace-wide > root namespace)."""
    root = snapshot.mesh.root_namespace
    ranked: list[tuple[int, str]] = []
    for pc in snapshot.proxy_configs:
        value = pc.environment.get("ISTIO_META_DNS_CAPTURE")
        if value is None:
            continue
        if pc.namespace == source.namespace and pc.selector:
            if all(source.labels.get(k) == v for k, v in pc.selector.items()):
                ranked.append((3, value))
        elif pc.namespace == source.namespace:
            ranked.append((2, value))
        elif pc.namespace == root and not pc.selector:
            ranked.append((1, value))
    if not ranked:
        return None
    return max(ranked)[1].strip().lower() in ("true", "1")


def dns_capture_for(snapshot: Snapshot, source: Source) -> bool:
    """Source flag, else a matching Pod's `proxy.istio.io/config`, else ProxyConfig resources, else
    mesh defaultConfig.proxyMetadata (default off: pilot-agent options.go)."""
    if source.dns_capture is not None:
        return source.dns_capture
    for pod in snapshot.pods:
        if pod.namespace != source.namespace or pod.proxy_config is None or not source.labels:
            continue
        if all(pod.labels.get(k) == v for k, v in source.labels.items()):
            value = pod.proxy_config.dns_capture
            if value is not None:
                return value
    from_cr = _proxy_config_capture(snapshot, source)
    if from_cr is not None:
        return from_cr
    return bool(snapshot.mesh.default_config.dns_capture)


def auto_allocation_for(snapshot: Snapshot, source: Source) -> bool:
    """v2 allocation is on by default from 1.25 (off in 1.23–1.24); v1 via ISTIO_META_DNS_AUTO_ALLOCATE."""
    if source.auto_allocate is not None:
        return source.auto_allocate
    if snapshot.mesh.default_config.dns_auto_allocate:
        return True
    version = source.istio_version or snapshot.istio_version
    return version_at_least(version, (1, 25)) if version else True


def version_at_least(version: str, floor: tuple[int, int]) -> bool:
    """ "1.24.3" ≥ (1, 25)? Unparseable versions count as current (True)."""
    parts = version.lstrip("v").split(".")
    try:
        return (int(parts[0]), int(parts[1])) >= floor
    except (ValueError, IndexError):
        return True


def _order_key(svc: MeshService) -> tuple[str, str, str]:
    res = svc.resource
    return (res.created or "", svc.host if res.kind == "ServiceEntry" else res.name, svc.namespace)


def scope_for(snapshot: Snapshot, source: Source) -> ProxyScope:
    """The (cached) scope of `source`'s proxy."""
    key = ("scope", source.key())
    cached = snapshot.cache.get(key)
    if isinstance(cached, ProxyScope):
        return cached
    with paused_gc():
        scope = _build_scope(snapshot, source)
    snapshot.cache[key] = scope
    return scope


def _build_scope(snapshot: Snapshot, source: Source) -> ProxyScope:
    sidecar = sidecar_for(snapshot, source.namespace, source.labels)
    capture = dns_capture_for(snapshot, source)
    scope = ProxyScope(
        snapshot=snapshot,
        source=source,
        sidecar=sidecar,
        mode=effective_mode(
            snapshot, source.namespace, source.labels, source.mode_override, source.mesh_mode
        ),
        dns_capture=capture,
        uses_auto_ips=capture and auto_allocation_for(snapshot, source),
        unmodelled=_unmodelled(snapshot, source, sidecar),
    )
    visible = _visible_in_order(snapshot, source.namespace)
    if sidecar is not None:
        imports = sidecar_importer(sidecar, source.namespace)
        visible = [s for s in visible if imports(s)]
    imported = visible
    hosts = [svc.host for svc in imported]
    services = scope.services = _dedupe_namespaces(imported, source.namespace, hosts)
    by_port: dict[int, list[MeshService]] = defaultdict(list)
    if services is not imported:
        hosts = [svc.host for svc in services]
    if len(set(hosts)) == len(hosts):
        # Fast path: every host once, so each service is its host's primary (`_append_primary`
        # keeps the first service of a host and only merges into it later ones, of which there are
        # none), in the services' order; one pass over the ports fills by_port and primary_ports
        primary_ports: dict[str, set[int]] = {}
        special: list[MeshService] = []  # aliases and wildcards, for the pass below
        for host, svc in zip(hosts, services, strict=True):
            ports = svc.ports
            if len(ports) == 1:
                number = ports[0].number
                by_port[number].append(svc)
                primary_ports[host] = {number}
            else:
                for port in ports:
                    by_port[port.number].append(svc)
                primary_ports[host] = {p.number for p in ports}
            if host.startswith("*") or svc.resolution == "ALIAS":
                special.append(svc)
        scope.primary = dict(zip(hosts, services, strict=True))
        scope.primary_ports = primary_ports
        scope.by_host = {host: [svc] for host, svc in zip(hosts, services, strict=True)}
        primaries: Iterable[MeshService] = special  # the rest of scope.primary needs no second look
    else:
        by_host: dict[str, list[MeshService]] = defaultdict(list)
        for svc in services:
            for port in svc.ports:
                by_port[port.number].append(svc)
            by_host[svc.host].append(svc)
            _append_primary(scope, svc)
        scope.by_host = dict(by_host)
        primaries = scope.primary.values()
    scope.by_port = dict(by_port)
    for svc in primaries:
        host = svc.host
        if svc.resolution == "ALIAS":
            target = scope.resolve_alias(host)
            if target != host and target in scope.primary:
                scope.aliases.setdefault(target, []).append(svc)
        if host.startswith("*"):  # svc.is_wildcard
            suffix = host[2:] if host.startswith("*.") else ""
            scope.wildcard_primary.setdefault(suffix, []).append(svc)
    return scope


def _visible_in_order(snapshot: Snapshot, namespace: str) -> list[MeshService]:
    private, public = _export_buckets(snapshot)
    return [*private.get(namespace, ()), *public]


def _export_buckets(snapshot: Snapshot) -> tuple[dict[str, list[MeshService]], list[MeshService]]:
    """Built once per snapshot: services inside discoverySelectors in pilot's order, split into
    those exported to named namespaces (by namespace: `.` = the owner's, `~` = none) and public ones."""
    cached = snapshot.cache.get("export-buckets")
    if isinstance(cached, tuple):
        return cached
    in_scope: dict[str, bool] = {}
    private: dict[str, list[MeshService]] = {}
    public: list[MeshService] = []
    services = snapshot.mesh_services
    default = snapshot.mesh.default_service_export_to
    decided: dict[tuple[str, tuple[str, ...]], set[str]] = {}
    if not snapshot.mesh.discovery_selectors:  # in_discovery_scope allows every namespace then
        in_scope = dict.fromkeys([svc.namespace for svc in services], True)
    for i in _pilot_order(services):
        svc = services[i]
        # `_export_bucket` inlined for the usual public service; the others go through it
        ns = svc.namespace
        ok = in_scope.get(ns)
        if ok is None:
            ok = in_scope[ns] = in_discovery_scope(snapshot, ns).allowed
        if not ok:
            continue
        export_to = svc.export_to
        if "*" in (export_to or default):
            public.append(svc)
            continue
        pair = (ns, export_to)  # the bucket depends on nothing else: decided once per pair
        bucket = decided.get(pair)
        if bucket is None:
            # in scope and not public: `_export_bucket` gives the set of namespaces
            bucket = decided[pair] = cast(set[str], _export_bucket(snapshot, svc, in_scope))
        for name in bucket:
            found = private.get(name)
            if found is None:
                private[name] = [svc]
            else:
                found.append(svc)
    buckets = (private, public)
    snapshot.cache["export-buckets"] = buckets
    return buckets


def _pilot_order(services: tuple[MeshService, ...]) -> list[int]:
    """The positions of `services` sorted by `_order_key` (stable): `SortServicesByCreationTime`."""
    joined = [  # `_order_key` inlined (no Python call per service), its parts joined by NUL
        f"{res.created or ''}\0{svc.host if res.kind == 'ServiceEntry' else res.name}\0{svc.namespace}"
        for svc in services
        for res in (svc.resource,)
    ]
    # Fast path: with no NUL inside the parts, these strings sort as the (created, name,
    # namespace) tuples do (NUL sorts below every other character), and string keys compare
    # much faster than tuples; otherwise sort by the tuples themselves.
    if "".join(joined).count("\0") == 2 * len(joined):
        return sorted(range(len(services)), key=joined.__getitem__)
    keys = [_order_key(svc) for svc in services]
    return sorted(range(len(services)), key=keys.__getitem__)


def _export_bucket(snapshot: Snapshot, svc: MeshService, in_scope: dict[str, bool]) -> str | set[str] | None:
    """Where `svc` goes: None (outside discoverySelectors), "*" (public), or the namespaces it is
    exported to. ``in_scope`` remembers each namespace's discoverySelectors answer."""
    ok = in_scope.get(svc.namespace)
    if ok is None:
        ok = in_scope[svc.namespace] = in_discovery_scope(snapshot, svc.namespace).allowed
    if not ok:
        return None
    export = svc.export_to or snapshot.mesh.default_service_export_to
    if "*" in export:
        return "*"
    reached = {svc.namespace} if "." in export else set()
    reached.update(n for n in export if n not in (".", "~"))
    return reached


def _dedupe_namespaces(
    services: list[MeshService], namespace: str, hosts: list[str] | None = None
) -> list[MeshService]:
    """Unified sidecar scoping: per hostname one namespace (own > Kubernetes Service > first).
    `hosts` are the services' hosts when the caller has them; with every host once, the list
    itself is returned (each service is its host's choice, all are kept)."""
    if len(set(hosts if hosts is not None else [svc.host for svc in services])) == len(services):
        return services
    chosen: dict[str, tuple[str, bool]] = {}
    for svc in services:
        host = svc.host
        k8s = svc.resource.kind == "Service"
        prev = chosen.get(host)
        if prev is None:
            chosen[host] = (svc.namespace, k8s)
            continue
        takes_over = not prev[1] and k8s and (svc.namespace == namespace or prev[0] != namespace)
        if takes_over or svc.namespace == namespace:
            chosen[host] = (svc.namespace, k8s)
    return [s for s in services if chosen[s.host][0] == s.namespace]


def _append_primary(scope: ProxyScope, svc: MeshService) -> None:
    """`appendSidecarServices`: Kubernetes beats ServiceEntry, first wins, ports merge if mergeable."""
    existing = scope.primary.get(svc.host)
    ports = {p.number for p in svc.ports}
    if existing is None or (existing.kind != "Service" and svc.kind == "Service"):
        scope.primary[svc.host] = svc
        scope.primary_ports[svc.host] = ports
        return
    if existing is svc or (existing.kind == "Service" and svc.kind != "Service"):
        return
    same = existing.namespace == svc.namespace and existing.resolution == svc.resolution
    if same and existing.export_to == svc.export_to and existing.resource.labels == svc.resource.labels:
        scope.primary_ports[svc.host] |= ports


def _selects(selector: Mapping[str, str] | None, labels: Mapping[str, str]) -> bool:
    return selector is None or all(labels.get(k) == v for k, v in selector.items())


def _unmodelled(snapshot: Snapshot, source: Source, sidecar: Sidecar | None) -> tuple[str, ...]:
    """EnvoyFilters/WasmPlugins selecting the source (own or root namespace), locked egress listeners."""
    root = snapshot.mesh.root_namespace
    out: list[str] = []
    filters: list[EnvoyFilter | WasmPlugin] = [*snapshot.envoy_filters, *snapshot.wasm_plugins]
    for obj in filters:
        if obj.namespace in (source.namespace, root) and _selects(obj.workload_selector, source.labels):
            out.append(obj.ref)
    if sidecar is not None and any(eg.unmodelled for eg in sidecar.egress):
        out.append(f"{sidecar.ref} (egress listener with port/bind/captureMode)")
    return tuple(sorted(out))


def resolve_short_host(host: str, namespace: str, domain_suffix: str) -> str:
    """`ResolveShortnameToFQDN`: a VirtualService host without a dot is `host.ns.svc.<suffix>`."""
    name = host.lower()
    if "." in name or name == "*" or name.startswith("*"):
        return name
    return f"{name}.{namespace}.svc.{domain_suffix}"


def _vs_order(vs: VirtualService) -> tuple[str, str, str]:
    return (vs.created or "", vs.name, vs.namespace)


def _vs_index(snapshot: Snapshot) -> tuple[dict[str, list[VirtualService]], list[VirtualService]]:
    """Mesh-bound VirtualServices by exact (resolved) host, plus those with wildcard hosts (built once)."""
    cached = snapshot.cache.get("vs-index")
    if isinstance(cached, tuple):
        return cached
    exact: dict[str, list[VirtualService]] = {}
    wild: dict[int, VirtualService] = {}
    suffix = snapshot.mesh.domain_suffix
    for vs in sorted(snapshot.virtual_services, key=_vs_order):
        if not vs.binds_mesh:
            continue
        for h in vs.hosts:
            name = resolve_short_host(h, vs.namespace, suffix)
            if name.startswith("*"):
                wild[id(vs)] = vs
            else:
                exact.setdefault(name, []).append(vs)
    index = (exact, list(wild.values()))
    snapshot.cache["vs-index"] = index
    return index


def vs_hosts(snapshot: Snapshot, vs: VirtualService) -> list[str]:
    """The VirtualService's hosts, short names resolved in its namespace."""
    return [resolve_short_host(h, vs.namespace, snapshot.mesh.domain_suffix) for h in vs.hosts]


def _hosts_overlap(a: str, b: str) -> bool:
    """host.Name.Matches, both directions (a VS host against an imported host)."""
    return (
        a == b
        or host_matches(a, b)
        or host_matches(b, a)
        or (a.startswith("*") and b.startswith("*") and (a[1:].endswith(b[1:]) or b[1:].endswith(a[1:])))
    )


def _vs_imported(scope: ProxyScope, vs: VirtualService, hosts: list[str]) -> bool:
    """`SelectVirtualServices`: the Sidecar must import the VS's namespace and one of its hosts."""
    sidecar = scope.sidecar
    if sidecar is None:
        return True
    listeners = sidecar.egress or ()
    patterns = [h for eg in listeners for h in eg.hosts] if listeners else ["*/*"]
    for pattern in patterns:
        if pattern.count("/") != 1:
            continue
        ns, name = pattern.split("/", 1)
        if ns.startswith("~"):
            continue
        ns = scope.source.namespace if ns == "." else ns
        if ns in ("*", vs.namespace) and any(name == "*" or _hosts_overlap(h, name.lower()) for h in hosts):
            return True
    return False


def mesh_virtual_services(scope: ProxyScope, host: str) -> list[VirtualService]:
    """Mesh-bound VirtualServices the source imports whose hosts cover `host`, in pilot's order:
    exported privately/explicitly to the source namespace first, then public; each oldest first."""
    snapshot = scope.snapshot
    exact, wild = _vs_index(snapshot)
    if not exact and not wild:
        return []
    name = host.lower()
    found = list(exact.get(name, ())) + [
        v for v in wild if any(host_matches(h, name) for h in vs_hosts(snapshot, v))
    ]
    ns = scope.source.namespace
    private: list[VirtualService] = []
    public: list[VirtualService] = []
    for vs in sorted({id(v): v for v in found}.values(), key=_vs_order):
        if not config_exported(snapshot, vs.export_to, vs.namespace, ns, "VirtualService"):
            continue
        if not _vs_imported(scope, vs, vs_hosts(snapshot, vs)):
            continue
        export = vs.export_to or snapshot.mesh.default_virtual_service_export_to
        (public if "*" in export else private).append(vs)
    return private + public
