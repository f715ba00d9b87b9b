"""MP0112's bypass test: is the call's host meant to leave through an egress gateway?

A VirtualService for the host, visible to the source, that binds the host to an egress gateway's
Gateway or whose mesh route sends some of the host's traffic (another port, another match) to an
egress gateway's Service says so; if this call's path is direct, it bypasses the gateway
(`pilot/pkg/networking/core/route/route.go` `sourceMatchHTTP`: a mesh route that does not match
falls through to the host's own route). A Gateway is an egress gateway's when its selector names
one (`istio: egressgateway`, or "egress" in a selector value, as installations label them), or a
Service the route targets selects such pods (`diag.predict.gateway_workload.gateway_for_cluster`).
"""

from __future__ import annotations

from diag.model.resources import VirtualService
from diag.model.snapshot import Snapshot, host_matches
from diag.predict.gateway_workload import gateway_for_cluster
from diag.predict.scope import resolve_short_host
from diag.rules.base import RuleContext


def egress_bound(ctx: RuleContext) -> list[VirtualService]:
    """VirtualServices for the call's host, visible to the source, that bind it to an egress gateway
    or send some of its traffic (another port, another match) to one: the host is meant to leave
    through the gateway, so a direct path is a bypass."""
    snapshot = ctx.snapshot
    if snapshot is None:
        return []
    host = ctx.call.host.lower()
    out = []
    for vs in snapshot.virtual_services:
        if not any(host_matches(h, host) for h in vs.hosts) or not _visible(vs, ctx.source.namespace):
            continue
        if _binds_egress_gateway(snapshot, vs) or _routes_to_gateway(snapshot, vs):
            out.append(vs)
    return out


def _visible(vs: VirtualService, namespace: str) -> bool:
    export = vs.export_to or ("*",)
    return vs.namespace == namespace or "*" in export or namespace in export


def _binds_egress_gateway(snapshot: Snapshot, vs: VirtualService) -> bool:
    """A Gateway the VS lists selects an egress gateway (`istio: egressgateway`, or "egress" in a
    selector value, as the installation's gateways are labelled)."""
    keys = {g if "/" in g else f"{vs.namespace}/{g}" for g in vs.gateways if g != "mesh"}
    return any(
        f"{g.namespace}/{g.name}" in keys and any("egress" in str(v) for v in g.selector.values())
        for g in snapshot.gateways
    )


def _routes_to_gateway(snapshot: Snapshot, vs: VirtualService) -> bool:
    """A mesh route of the VS sends traffic to an egress gateway's Service."""
    if not vs.binds_mesh:
        return False
    for rule in (*vs.http, *vs.tls, *vs.tcp):
        for dest in rule.destinations:
            name = resolve_short_host(dest.host, vs.namespace, snapshot.mesh.domain_suffix)
            if gateway_for_cluster(snapshot, f"outbound|{dest.port or 80}||{name}") is not None:
                return True
    return False
