"""Predict the Envoy path pilot's config gives a call, and answer the rules' side questions.

`predict(snapshot, source, call)` follows how pilot builds a sidecar's outbound config
(`reference/istio-review.md` §9; `pilot/pkg/networking/core/listener.go`
`buildSidecarOutboundListeners`, `tls.go`, `httproute.go`, `listener_builder.go`): which listener
(`VIP_port`, `0.0.0.0_port`, or `virtualOutbound`), which filter chain, route config and virtual
host, and which cluster; the verdict; the resources on the path; the effective mode and the
object that sets it. The listener model lives in `diag.predict_listeners`, the proxy scope in
`diag.predict_scope`.

Side questions for rules (all index-driven, no scan of all entries per call):
`candidates` (entries matching a host whatever their visibility), `near_names` (MP0113),
`port_owner` (MP0107), `bound_addresses` (MP0114), `dns_answer`, `upstream_tls` (MP0108/0109),
`destination_rule_for`, `virtual_services_for`.
"""

from __future__ import annotations

from diag.predict_model import (
    Call,
    Candidate,
    Decision,
    EnvoyPath,
    ModeDecision,
    NearName,
    PortOwner,
    Prediction,
    Source,
    UpstreamTls,
)
from diag.resources import DestinationRule, VirtualService
from diag.snapshot import MeshService, Snapshot

__all__ = [
    "Call",
    "Candidate",
    "Decision",
    "EnvoyPath",
    "ModeDecision",
    "NearName",
    "PortOwner",
    "Prediction",
    "Source",
    "UpstreamTls",
    "bound_addresses",
    "candidates",
    "destination_rule_for",
    "dns_answer",
    "near_names",
    "port_owner",
    "predict",
    "upstream_tls",
    "virtual_services_for",
]


def predict(snapshot: Snapshot, source: Source, call: Call) -> Prediction:
    """The path, verdict and deciding resources for `call` made by `source`."""
    del snapshot, source, call
    raise NotImplementedError


def candidates(
    snapshot: Snapshot, host: str, source: Source | None = None, port: int | None = None
) -> tuple[Candidate, ...]:
    """Services whose host matches `host` (exact or wildcard), visible or not, with why."""
    del snapshot, host, source, port
    raise NotImplementedError


def near_names(snapshot: Snapshot, host: str) -> tuple[NearName, ...]:
    """Entries for names close to `host`: wildcard without apex, siblings, trailing dot, parent."""
    del snapshot, host
    raise NotImplementedError


def port_owner(snapshot: Snapshot, source: Source, port: int) -> PortOwner | None:
    """The service whose match-all chain owns `0.0.0.0:port` for this proxy (capture), if any."""
    del snapshot, source, port
    raise NotImplementedError


def bound_addresses(snapshot: Snapshot, source: Source, host: str, port: int) -> tuple[str, ...]:
    """Where the listener for (host, port) is bound for this proxy: IPs, CIDRs, or ("0.0.0.0",)."""
    del snapshot, source, host, port
    raise NotImplementedError


def dns_answer(snapshot: Snapshot, source: Source, host: str) -> tuple[str, ...] | None:
    """What the agent's DNS proxy answers for `host` (None: no capture, or not in its table)."""
    del snapshot, source, host
    raise NotImplementedError


def upstream_tls(snapshot: Snapshot, source: Source, service: MeshService, port: int) -> UpstreamTls:
    """Upstream TLS of the service's cluster on `port` (user DR wins; auto-mTLS rules)."""
    del snapshot, source, service, port
    raise NotImplementedError


def destination_rule_for(snapshot: Snapshot, source: Source, host: str) -> DestinationRule | None:
    """The DR pilot applies for `host` from this source (client ns → service ns → root ns)."""
    del snapshot, source, host
    raise NotImplementedError


def virtual_services_for(snapshot: Snapshot, source: Source, host: str) -> tuple[VirtualService, ...]:
    """Mesh-bound VirtualServices visible to the source whose hosts cover `host`."""
    del snapshot, source, host
    raise NotImplementedError
