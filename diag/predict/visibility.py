"""Who sees what: discoverySelectors, exportTo, which Sidecar applies, egress.hosts import, and the
effective outbound mode — each answer names the object that decided it (`Decision.decided_by`).

Istio sources (istio/istio, read at 86c9f01f):
- discoverySelectors scope Services and Istio config (1.22+ by default, always from 1.25):
  `pkg/kube/namespace/filter.go` (label selectors with matchLabels/matchExpressions).
- exportTo: `pilot/pkg/model/push_context.go` `serviceExportTo` / `IsServiceVisible` (Public `*`,
  Private `.` = own namespace, `~` = none, named namespaces); defaults `defaultServiceExportTo`,
  `defaultVirtualServiceExportTo`, `defaultDestinationRuleExportTo` (`pkg/config/mesh/mesh.go`);
  the Service annotation `networking.istio.io/exportTo` (kube/conversion.go).
- Sidecar selection: `push_context.go` `doGetSidecarScope` + `initSidecarScopes` — in the proxy's
  namespace the oldest Sidecar whose workloadSelector matches, else the oldest selector-less one,
  else the root namespace's oldest selector-less Sidecar.
- egress.hosts: `pilot/pkg/model/sidecar.go` `convertIstioListenerToWrapper`, `selectServices`,
  `hostClassification.Matches` ("ns/host", "./host", "*/host", "~ns/host" exclusion, wildcards).
- mode: `pilot/pkg/model/sidecar.go` — the selected Sidecar's outboundTrafficPolicy wins over
  the mesh's (`--mode` stands for the mesh's).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from diag.model.resources import Sidecar
from diag.model.snapshot import MeshService, Snapshot, host_matches
from diag.predict.model import Decision, ModeDecision


def _selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A Kubernetes LabelSelector (matchLabels + matchExpressions) against labels."""
    match_labels = selector.get("matchLabels") or {}
    if isinstance(match_labels, Mapping):
        for k, v in match_labels.items():
            if labels.get(str(k)) != str(v):
                return False
    for expr in selector.get("matchExpressions") or ():
        if not isinstance(expr, Mapping):
            return False
        key, op = str(expr.get("key", "")), str(expr.get("operator", ""))
        values = [str(v) for v in expr.get("values") or ()]
        present = key in labels
        ok = {
            "In": present and labels.get(key) in values,
            "NotIn": not present or labels.get(key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }.get(op, False)
        if not ok:
            return False
    return True


def in_discovery_scope(snapshot: Snapshot, namespace: str) -> Decision:
    """Whether istiod watches `namespace` (MeshConfig `discoverySelectors`; none = all)."""
    mesh = snapshot.mesh
    if not mesh.discovery_selectors:
        return Decision(allowed=True, decided_by=mesh.ref, reason="no discoverySelectors")
    labels = {"kubernetes.io/metadata.name": namespace, **snapshot.namespace_labels(namespace)}
    for selector in mesh.discovery_selectors:
        if _selector_matches(selector, labels):
            return Decision(allowed=True, decided_by=mesh.ref, reason="namespace matches discoverySelectors")
    known = namespace in snapshot.namespaces
    reason = f"namespace {namespace} is outside meshConfig.discoverySelectors"
    if not known:
        reason += " (Namespace object not given: only kubernetes.io/metadata.name was checked)"
    return Decision(allowed=False, decided_by=mesh.ref, reason=reason)


def _export_allows(export_to: tuple[str, ...], owner_ns: str, to_namespace: str) -> bool:
    return "*" in export_to or ("." in export_to and owner_ns == to_namespace) or to_namespace in export_to


def service_exported(snapshot: Snapshot, service: MeshService, to_namespace: str) -> Decision:
    """Whether a service (SE `exportTo`, Service annotation, or mesh default) reaches `to_namespace`."""
    if service.export_to:
        export_to, decided_by = service.export_to, service.ref
        what = "exportTo" if service.kind == "ServiceEntry" else "annotation networking.istio.io/exportTo"
    else:
        export_to, decided_by = snapshot.mesh.default_service_export_to, snapshot.mesh.ref
        what = "defaultServiceExportTo"
    allowed = _export_allows(export_to, service.namespace, to_namespace)
    verb = "includes" if allowed else "excludes"
    return Decision(
        allowed=allowed, decided_by=decided_by, reason=f"{what} {list(export_to)} {verb} {to_namespace}"
    )


def config_exported(
    snapshot: Snapshot, export_to: tuple[str, ...], owner_ns: str, to_namespace: str, kind: str
) -> bool:
    """exportTo for a DestinationRule/VirtualService (`kind`) with the mesh's per-kind default."""
    if not export_to:
        mesh = snapshot.mesh
        export_to = (
            mesh.default_destination_rule_export_to
            if kind == "DestinationRule"
            else mesh.default_virtual_service_export_to
        )
    return _export_allows(export_to, owner_ns, to_namespace)


def _created_key(sc: Sidecar) -> tuple[str, str, str]:
    return (sc.created or "", sc.name, sc.namespace)


def sidecar_for(snapshot: Snapshot, namespace: str, labels: Mapping[str, str]) -> Sidecar | None:
    """The Sidecar applying to a workload: selector match > namespace default > root default."""
    local = sorted(snapshot.sidecars_by_namespace.get(namespace, ()), key=_created_key)
    for sc in local:
        selector = sc.workload_selector
        if selector is not None and all(labels.get(k) == v for k, v in selector.items()):
            return sc
    for sc in local:
        if sc.workload_selector is None:
            return sc
    root = sorted(snapshot.sidecars_by_namespace.get(snapshot.mesh.root_namespace, ()), key=_created_key)
    for sc in root:
        if sc.workload_selector is None:
            return sc
    return None


def _split_egress_host(pattern: str, source_namespace: str) -> tuple[str, str, bool] | None:
    if pattern.count("/") != 1:
        return None
    ns, name = pattern.split("/", 1)
    excluded = ns.startswith("~")
    if excluded:
        ns = ns[1:] or "*"
    if ns == ".":
        ns = source_namespace
    return ns, name.lower(), excluded


def _name_imported(imported: str, service_host: str) -> bool:
    """host.Name SubsetOf: the service host (maybe wildcard) lies within the imported name."""
    if imported == "*":
        return True
    if service_host == imported:
        return True
    if not imported.startswith("*"):
        return False
    suffix = imported[1:]
    if service_host.startswith("*"):
        return service_host[1:].endswith(suffix)
    return host_matches(imported, service_host)


def egress_host_matches(pattern: str, service: MeshService, source_namespace: str) -> bool:
    """Whether one Sidecar `egress.hosts` item ("ns/dnsName") imports `service` (exclusions: no)."""
    parts = _split_egress_host(pattern, source_namespace)
    if parts is None or parts[2]:
        return False
    ns, name, _ = parts
    return (ns == "*" or ns == service.namespace) and _name_imported(name, service.host)


def sidecar_imports(sidecar: Sidecar | None, service: MeshService, source_namespace: str) -> Decision:
    """Whether the Sidecar (None = no Sidecar, import all) imports the service.

    Only the catch-all egress listener (no port) decides what gets the normal listeners; hosts of
    port-specific egress listeners are counted as imports too (those listeners are unmodelled).
    """
    if sidecar is None:
        return Decision(allowed=True, decided_by="", reason="no Sidecar: every visible service is imported")
    listeners = sidecar.egress or ()
    hosts = [h for eg in listeners for h in eg.hosts] if listeners else ["*/*"]
    for pattern in hosts:
        parts = _split_egress_host(pattern, source_namespace)
        if parts is None or not parts[2]:
            continue
        ns, name, _ = parts
        if (ns == "*" or ns == service.namespace) and _name_imported(name, service.host):
            return Decision(
                allowed=False, decided_by=sidecar.ref, reason=f"egress host {pattern!r} excludes it"
            )
    for pattern in hosts:
        if egress_host_matches(pattern, service, source_namespace):
            return Decision(
                allowed=True, decided_by=sidecar.ref, reason=f"egress host {pattern!r} imports it"
            )
    return Decision(
        allowed=False,
        decided_by=sidecar.ref,
        reason=f"no egress host imports {service.namespace}/{service.host} (hosts: {hosts})",
    )


def sidecar_importer(sidecar: Sidecar, source_namespace: str) -> Callable[[MeshService], bool]:
    """`sidecar_imports(...).allowed` with the egress hosts parsed once (for whole-scope passes)."""
    listeners = sidecar.egress or ()
    hosts = [h for eg in listeners for h in eg.hosts] if listeners else ["*/*"]
    parsed = [p for p in (_split_egress_host(h, source_namespace) for h in hosts) if p is not None]
    excluded = [(ns, name) for ns, name, ex in parsed if ex]
    included = [(ns, name) for ns, name, ex in parsed if not ex]

    def imports(service: MeshService) -> bool:
        for ns, name in excluded:
            if (ns == "*" or ns == service.namespace) and _name_imported(name, service.host):
                return False
        return any(
            (ns == "*" or ns == service.namespace) and _name_imported(name, service.host)
            for ns, name in included
        )

    return imports


def service_visible(
    snapshot: Snapshot, service: MeshService, namespace: str, labels: Mapping[str, str]
) -> Decision:
    """All three checks in order: discovery scope, exportTo, Sidecar import (first "no" wins)."""
    scope = in_discovery_scope(snapshot, service.namespace)
    if not scope.allowed:
        return scope
    exported = service_exported(snapshot, service, namespace)
    if not exported.allowed:
        return exported
    imported = sidecar_imports(sidecar_for(snapshot, namespace, labels), service, namespace)
    if not imported.allowed:
        return imported
    return Decision(allowed=True, decided_by=exported.decided_by, reason="visible")


def effective_mode(
    snapshot: Snapshot,
    namespace: str,
    labels: Mapping[str, str],
    override: str | None = None,
    mesh_mode: str | None = None,
) -> ModeDecision:
    """The outbound mode for a proxy (`pilot/pkg/model/sidecar.go` `initSidecarScopeInternalIndexes`: the
    selected Sidecar's `outboundTrafficPolicy` when it sets one, else the mesh's).

    `mesh_mode` is `--mode`: it stands for the mesh-wide setting (MeshConfig
    `outboundTrafficPolicy.mode`), so a Sidecar still overrides it. `override` is the effective
    mode when it is known for certain (the live sidecar's catch-all cluster) and wins over both.
    """
    if override:
        return ModeDecision(mode=override.upper(), decided_by="sidecar catch-all")
    sidecar = sidecar_for(snapshot, namespace, labels)
    if sidecar is not None and sidecar.outbound_traffic_policy is not None:
        policy = sidecar.outbound_traffic_policy
        proxy = None
        if policy.egress_proxy is not None and policy.mode == "ALLOW_ANY":
            ep = policy.egress_proxy
            proxy = f"outbound|{ep.port or ''}|{ep.subset}|{ep.host}"
        return ModeDecision(mode=policy.mode, decided_by=sidecar.ref, egress_proxy=proxy)
    return mesh_wide_mode(snapshot, mesh_mode)


def mesh_wide_mode(snapshot: Snapshot, mesh_mode: str | None = None) -> ModeDecision:
    """The mesh-wide mode: `--mode` when given, else MeshConfig `outboundTrafficPolicy.mode`."""
    if mesh_mode:
        return ModeDecision(mode=mesh_mode.upper(), decided_by="--mode")
    return ModeDecision(mode=snapshot.mesh.mode, decided_by=snapshot.mesh.ref)
