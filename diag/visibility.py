"""Who sees what: discoverySelectors, exportTo, which Sidecar applies, egress.hosts import, and the
effective outbound mode — each answer names the object that decided it (`Decision.decided_by`).

Istio sources:
- discoverySelectors scope Istio config and Services (1.22+ by default, always from 1.25):
  `pilot/pkg/model/push_context.go` / `pkg/kube/namespace/filter.go`.
- exportTo: `push_context.go` `IsServiceVisible` / `initServiceRegistry` (Public, Private = own
  namespace, named namespaces, `~` = none), defaults `defaultServiceExportTo`,
  `defaultVirtualServiceExportTo`, `defaultDestinationRuleExportTo` (pkg/config/mesh/mesh.go);
  Service annotation `networking.istio.io/exportTo` (kube/conversion.go).
- Sidecar selection: `push_context.go` `getSidecarScope` — workloadSelector match, else the
  namespace's selector-less Sidecar, else the root namespace's selector-less Sidecar.
- egress.hosts: `pilot/pkg/model/sidecar.go` `matchingAliases`/`egressHostsIndex` ("ns/host",
  "./host", "*/host", "~/host", wildcards both sides).
- mode: `sidecar.go` `OutboundTrafficPolicy` — the Sidecar's policy wins over the mesh's.
"""

from __future__ import annotations

from collections.abc import Mapping

from diag.predict_model import Decision, ModeDecision
from diag.resources import Sidecar
from diag.snapshot import MeshService, Snapshot


def in_discovery_scope(snapshot: Snapshot, namespace: str) -> Decision:
    """Whether istiod watches `namespace` (MeshConfig `discoverySelectors`; none = all)."""
    del snapshot, namespace
    raise NotImplementedError


def service_exported(snapshot: Snapshot, service: MeshService, to_namespace: str) -> Decision:
    """Whether a service (SE `exportTo`, Service annotation, or mesh default) reaches `to_namespace`."""
    del snapshot, service, to_namespace
    raise NotImplementedError


def config_exported(
    snapshot: Snapshot, export_to: tuple[str, ...], owner_ns: str, to_namespace: str, kind: str
) -> bool:
    """exportTo for a DestinationRule/VirtualService (`kind`) with the mesh's per-kind default."""
    del snapshot, export_to, owner_ns, to_namespace, kind
    raise NotImplementedError


def sidecar_for(snapshot: Snapshot, namespace: str, labels: Mapping[str, str]) -> Sidecar | None:
    """The Sidecar applying to a workload: selector match > namespace default > root default."""
    del snapshot, namespace, labels
    raise NotImplementedError


def egress_host_matches(pattern: str, service: MeshService, source_namespace: str) -> bool:
    """Whether one Sidecar `egress.hosts` item ("ns/dnsName") imports `service`."""
    del pattern, service, source_namespace
    raise NotImplementedError


def sidecar_imports(sidecar: Sidecar | None, service: MeshService, source_namespace: str) -> Decision:
    """Whether the Sidecar (None = no Sidecar, import all) imports the service."""
    del sidecar, service, source_namespace
    raise NotImplementedError


def service_visible(
    snapshot: Snapshot, service: MeshService, namespace: str, labels: Mapping[str, str]
) -> Decision:
    """All three checks in order: discovery scope, exportTo, Sidecar import (first "no" wins)."""
    del snapshot, service, namespace, labels
    raise NotImplementedError


def effective_mode(
    snapshot: Snapshot, namespace: str, labels: Mapping[str, str], override: str | None = None
) -> ModeDecision:
    """The outbound mode for a proxy: `override` (--mode) > Sidecar policy > MeshConfig."""
    del snapshot, namespace, labels, override
    raise NotImplementedError
