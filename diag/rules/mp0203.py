"""MP0203 UpstreamUnreachable: routed or passed through, but the upstream refused or dropped.

Istio behaviour relied on: a registered or passed-through connection that the origin refuses
fails fast (503 UF "connection failure", or a close right after connect); one a firewall drops
waits ``connectTimeout`` (default 10 s) — times up to 3 attempts on routes to registered HTTP hosts
(2 retries on connect-failure; the ``allow_any`` route has none). Check NetworkPolicy and the
egress firewall.
Versions: all of 1.22–1.30. Source: istio/istio ``pkg/config/mesh/mesh.go`` (connectTimeout),
``pilot/pkg/networking/core/route/retry`` (default retry policy), ``httproute.go``.
"""

from __future__ import annotations

from diag.rules.base import BLOCK_DECISIONS, Diagnosis, Rule, RuleContext, observed_evidence
from probes.model import Signature

DROPPED = frozenset({Signature.TCP_TIMEOUT, Signature.READ_TIMEOUT})


def evaluate(ctx: RuleContext) -> list[Diagnosis]:
    obs = ctx.observed
    if obs is None or ctx.decision in BLOCK_DECISIONS or ctx.decision is None:
        return []
    reason = (obs.http.envoy_reason or "") if obs.http is not None else ""
    refused = obs.signature is Signature.ENVOY_503_UPSTREAM and (
        "connection failure" in reason or "refused" in reason
    )
    closed = obs.signature is Signature.TCP_CLOSED_AFTER_CONNECT
    # Envoy's own word for a dropped SYN: 503 "reset reason: connection timeout" after connectTimeout
    # (× the retries); a route-level timeout is a 504, not this.
    timed_out = obs.signature is Signature.ENVOY_503_UPSTREAM and "connection timeout" in reason
    if refused or closed:
        message = (
            f"the sidecar routed {ctx.call.host}:{ctx.call.port} to {ctx.decision}, but the upstream refused"
        )
    elif obs.signature in DROPPED or timed_out:
        message = (
            f"the sidecar routed {ctx.call.host}:{ctx.call.port} to {ctx.decision}, but the upstream did not "
            f"answer within {obs.elapsed:.0f} s (dropped? connectTimeout is 10 s × up to 3 attempts: check "
            "NetworkPolicy and the egress firewall)"
        )
    else:
        return []
    return [RULE.diagnose(message, evidence=observed_evidence(ctx))]


RULE = Rule("MP0203", "UpstreamUnreachable", "error", evaluate, mesh=False)
