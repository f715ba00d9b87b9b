"""Facts several rules derive from the context the same way: the dialled address, the services
that match the target (and why each is hidden), the host behind a cluster name, and the
object that sets the mode. Thin wrappers over `diag.predict.sidecar` / `diag.predict.visibility`
(the mesh model, docs/model.md), returning nothing when there is no snapshot (live-only contexts).
"""

from __future__ import annotations

from dataclasses import dataclass

from diag.model.resources import Sidecar
from diag.model.snapshot import MeshService, host_matches
from diag.predict import sidecar as predict
from diag.predict import visibility
from diag.predict.model import Candidate, Decision
from diag.rules.base import RuleContext

KIND_PREFIXES = ("ServiceEntry ", "Sidecar ", "ConfigMap ", "MeshConfig ", "Service ", "DestinationRule ")


@dataclass(frozen=True)
class Hidden:
    """A service that matches the target but is not visible to the source, and the first reason."""

    service: MeshService
    reason: str  # "discovery" (MP0115) | "export" (MP0104) | "sidecar" (MP0105)
    decision: Decision


def dialled_address(ctx: RuleContext) -> str | None:
    """The destination IP of the call: given, observed, or the one the prediction used (which may
    be assumed: see `known_address`)."""
    known = known_address(ctx)
    if known:
        return known
    if ctx.prediction is not None and ctx.prediction.dialled_address:
        return ctx.prediction.dialled_address
    return None


def known_address(ctx: RuleContext) -> str | None:
    """The destination IP as given (``--results``, the call) or observed — never one a prediction
    assumed or a stand-in for an address missing from the input. Fixes write only this one."""
    if ctx.call.address:
        return ctx.call.address
    obs = ctx.observed
    if obs is not None and obs.tcp is not None and obs.tcp.address:
        return obs.tcp.address.rsplit(":", 1)[0].strip("[]")
    if obs is not None and obs.dns is not None and obs.dns.a:
        return obs.dns.a[0]
    return None


def in_mesh_host(ctx: RuleContext, host: str) -> bool:
    """A name of the cluster's own DNS domain (``*.svc.cluster.local``, ``*.cluster.local``, a
    ``name.ns.svc`` the search domains complete) or a short name: never an external host, so never
    fixed with a MESH_EXTERNAL entry."""
    suffix = ctx.snapshot.mesh.domain_suffix if ctx.snapshot is not None else "cluster.local"
    name = host.lower().rstrip(".")
    return "." not in name or name == suffix or name.endswith(("." + suffix, ".svc"))


def matching(ctx: RuleContext, with_port: bool = True) -> tuple[Candidate, ...]:
    """Services whose host covers the target host, visible or not (with the port filter)."""
    if ctx.snapshot is None:
        return ()
    port = ctx.call.port if with_port else None
    return predict.candidates(ctx.snapshot, ctx.call.host, ctx.source, port)


def visible(ctx: RuleContext) -> tuple[Candidate, ...]:
    return tuple(c for c in matching(ctx, with_port=False) if c.visible is None or c.visible.allowed)


def sidecar(ctx: RuleContext) -> Sidecar | None:
    if ctx.snapshot is None:
        return None
    return visibility.sidecar_for(ctx.snapshot, ctx.source.namespace, ctx.source.labels)


def hidden(ctx: RuleContext) -> tuple[Hidden, ...]:
    """Each non-visible matching service with the first check that hides it, in Istio's order:
    discoverySelectors, exportTo, Sidecar import."""
    snap = ctx.snapshot
    if snap is None:
        return ()
    out: list[Hidden] = []
    scope = sidecar(ctx)
    for cand in matching(ctx, with_port=False):
        if cand.visible is not None and cand.visible.allowed:
            continue
        svc = cand.service
        found = visibility.in_discovery_scope(snap, svc.namespace)
        if not found.allowed:
            out.append(Hidden(svc, "discovery", found))
            continue
        exported = visibility.service_exported(snap, svc, ctx.source.namespace)
        if not exported.allowed:
            out.append(Hidden(svc, "export", exported))
            continue
        imported = visibility.sidecar_imports(scope, svc, ctx.source.namespace)
        if not imported.allowed:
            out.append(Hidden(svc, "sidecar", imported))
    return tuple(out)


def cluster_host(cluster: str | None) -> str | None:
    """``outbound|443|subset|host`` → host (None for other clusters)."""
    if not cluster or not cluster.startswith("outbound|"):
        return None
    parts = cluster.split("|")
    return parts[3] if len(parts) == 4 else None


def cluster_covers(cluster: str | None, host: str) -> bool:
    """The cluster is for a service whose host covers ``host``."""
    owner = cluster_host(cluster)
    return owner is not None and host_matches(owner, host)


def mode_resources(ctx: RuleContext) -> tuple[str, ...]:
    """The object setting the mode, when it is a nameable object."""
    origin = ctx.mode_from
    return (origin,) if origin.startswith(KIND_PREFIXES) else ()


def target_text(ctx: RuleContext) -> str:
    return f"{ctx.protocol}://{ctx.call.host}:{ctx.call.port}"
