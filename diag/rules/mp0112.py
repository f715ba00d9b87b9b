"""MP0112 EgressGatewayMisrouted: the egress-gateway route is broken or bypassed.

Istio behaviour relied on (egress gateway pattern: SE + Gateway + DR subset + a VirtualService
bound to ``mesh`` and the gateway): a ``mesh`` route that does not match the call leaves the sidecar
routing directly (it works, bypassing the gateway); a VS host missing from the Gateway's servers
gives the gateway no vhost (404 NR, relayed with ``x-envoy-upstream-service-time``); a subset with
no DestinationRule is a missing cluster (503 NC, empty); an mTLS mismatch between sidecar and
gateway is ``503 UC`` (connection termination); resolution NONE cannot work behind a gateway
(ORIGINAL_DST is unusable there: no endpoints, 503 UH). The gateway hop is inferred.
Versions: all of 1.22–1.30. Source: istio/istio ``pilot/pkg/networking/core/gateway.go``
(``blackhole`` vhost), ``cluster.go`` (NONE behind gateways); Istio egress-gateway task;
istioctl analyze IST0132 (``pkg/config/analysis/analyzers/virtualservice/gateways.go``) and IST0162
(``pkg/config/analysis/analyzers/gateway/gateway.go``).
"""

from __future__ import annotations

from diag import predict
from diag.rules import facts
from diag.rules.base import Diagnosis, Rule, RuleContext, observed_evidence
from probes.model import Signature

RELAYED = {
    Signature.ENVOY_404_NR: "the gateway has no virtual host for it (VS host not on the Gateway, or a "
    "TLS/HTTP server mismatch): 404 NR at the gateway",
    Signature.ENVOY_503_NO_CLUSTER: "the route names a cluster that does not exist (a subset without its "
    "DestinationRule, or the gateway namespace not imported): 503 NC",
}


def _via_gateway(cluster: str | None) -> bool:
    return bool(cluster) and "egressgateway" in str(cluster).split("|")[-1]


def evaluate(ctx: RuleContext) -> list[Diagnosis]:
    vs = predict.virtual_services_for(ctx.snapshot, ctx.source, ctx.call.host) if ctx.snapshot else ()
    gateway_vs = [v for v in vs if any(g != "mesh" for g in v.gateways)]
    refs = tuple(v.ref for v in gateway_vs)
    found: list[Diagnosis | None] = []
    if ctx.expect == "via-gateway" and not _via_gateway(ctx.cluster):
        why = (
            "its mesh route does not match this call"
            if gateway_vs
            else "no VirtualService bound to mesh routes it to an egress gateway"
        )
        found.append(_diagnose(ctx, f"{ctx.call.host} does not go through an egress gateway: {why}", refs))
    if _via_gateway(ctx.cluster):
        found.append(_relayed(ctx, refs))
        found.append(_none_behind_gateway(ctx, refs))
    return [d for d in found if d is not None]


def _diagnose(ctx: RuleContext, message: str, refs: tuple[str, ...], *extra: str) -> Diagnosis:
    return RULE.diagnose(
        message, resources=refs, evidence=observed_evidence(ctx), supersedes=("MP0202", *extra)
    )


def _relayed(ctx: RuleContext, refs: tuple[str, ...]) -> Diagnosis | None:
    """What the gateway answered, relayed by the sidecar (inferred hop)."""
    obs = ctx.observed
    if obs is None:
        return None
    if obs.signature in RELAYED:
        return _diagnose(ctx, f"via {ctx.cluster}: {RELAYED[obs.signature]}", refs, "MP0119")
    reason = (obs.http.envoy_reason or "") if obs.http is not None else ""
    if obs.signature is Signature.ENVOY_503_UPSTREAM and ("termination" in reason or "tls" in reason.lower()):
        return _diagnose(ctx, f"via {ctx.cluster}: sidecar↔gateway mTLS mismatch (503 UC: {reason})", refs)
    return None


def _none_behind_gateway(ctx: RuleContext, refs: tuple[str, ...]) -> Diagnosis | None:
    none = [
        c.service
        for c in facts.visible(ctx)
        if c.service.resolution == "NONE" and c.service.kind == "ServiceEntry"
    ]
    if not none:
        return None
    svc = none[0]
    message = (
        f"{svc.ref} has resolution NONE but {ctx.call.host} is routed through {ctx.cluster}: "
        "a gateway cannot use ORIGINAL_DST (no endpoints, 503 UH); use resolution DNS"
    )
    return _diagnose(ctx, message, (svc.ref, *refs))


RULE = Rule("MP0112", "EgressGatewayMisrouted", "error", evaluate, sidecar_only=True)
