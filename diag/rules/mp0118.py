"""MP0118 DeniedByAuthorizationPolicy: an AuthorizationPolicy at an egress gateway or waypoint
denied the call.

Istio behaviour relied on: AuthorizationPolicy is enforced by the *server-side* proxy (inbound) and
never governs a sidecar's outbound requests; on egress it applies at an egress gateway or a
waypoint, evaluated against the source workload's identity (service account). Denial is
``403 RBAC: access denied`` for HTTP, a reset for TLS/TCP.
Versions: all of 1.22–1.30 (waypoints: ambient, 1.22+). Source: Istio docs "Authorization"
(concepts/security); istio/istio#58349. Why ``--like`` carries the service account:
``docs/probe-pod.md``.
"""

from __future__ import annotations

from diag.rules.base import Diagnosis, Rule, RuleContext, observed_evidence
from probes.model import Signature


def evaluate(ctx: RuleContext) -> list[Diagnosis]:
    obs = ctx.observed
    if obs is None or obs.signature is not Signature.ENVOY_403_RBAC:
        return []
    hop = (
        "the egress gateway"
        if "egressgateway" in (ctx.cluster or "")
        else "a gateway or waypoint on the path"
    )
    message = (
        f"{hop} denied the call with an AuthorizationPolicy (403 RBAC: access denied), evaluated against "
        "the source's service account"
    )
    return [RULE.diagnose(message, evidence=observed_evidence(ctx), supersedes=("MP0202",))]


RULE = Rule("MP0118", "DeniedByAuthorizationPolicy", "error", evaluate)
