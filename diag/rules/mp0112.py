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
``reference/istio-egress.md`` §3, ``reference/istio-review.md`` §6.1.
"""

from __future__ import annotations

from diag import predict
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
    cluster = ctx.cluster
    vs = predict.virtual_services_for(ctx.snapshot, ctx.source, ctx.call.host) if ctx.snapshot else ()
    gateway_vs = [v for v in vs if any(g != "mesh" for g in v.gateways)]
    refs = tuple(v.ref for v in gateway_vs)
    evidence = observed_evidence(ctx)
    out: list[Diagnosis] = []
    if ctx.expect == "via-gateway" and not _via_gateway(cluster):
        why = (
            "its mesh route does not match this call"
            if gateway_vs
            else "no VirtualService bound to mesh routes it to an egress gateway"
        )
        out.append(
            RULE.diagnose(
                f"{ctx.call.host} does not go through an egress gateway: {why}",
                resources=refs,
                evidence=evidence,
                supersedes=("MP0202",),
            )
        )
    if not _via_gateway(cluster):
        return out
    obs = ctx.observed
    if obs is not None and obs.signature in RELAYED:
        out.append(
            RULE.diagnose(
                f"via {cluster}: {RELAYED[obs.signature]}",
                resources=refs,
                evidence=evidence,
                supersedes=("MP0202", "MP0119"),
            )
        )
    elif obs is not None and obs.signature is Signature.ENVOY_503_UPSTREAM and obs.http is not None:
        reason = obs.http.envoy_reason or ""
        if "termination" in reason or "TLS" in reason or "tls" in reason:
            out.append(
                RULE.diagnose(
                    f"via {cluster}: sidecar↔gateway mTLS mismatch (503 UC: {reason})",
                    resources=refs,
                    evidence=evidence,
                    supersedes=("MP0202",),
                )
            )
    svc = ctx.prediction.service if ctx.prediction else None
    if svc is not None and svc.resolution == "NONE" and svc.host.lower() == ctx.call.host.lower():
        out.append(
            RULE.diagnose(
                f"{svc.ref} has resolution NONE but is routed through {cluster}: a gateway "
                "cannot use ORIGINAL_DST (no endpoints, 503 UH); use resolution DNS",
                resources=(svc.ref, *refs),
                evidence=evidence,
                supersedes=("MP0202",),
            )
        )
    return out


RULE = Rule("MP0112", "EgressGatewayMisrouted", "error", evaluate, sidecar_only=True)
