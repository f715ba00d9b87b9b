"""MP0118 DeniedByAuthorizationPolicy: an AuthorizationPolicy at an egress gateway (or a waypoint)
denied the call.

Istio behaviour relied on: AuthorizationPolicy is enforced by the *server-side* proxy and never
governs a sidecar's outbound requests; on egress it applies at an egress gateway or a waypoint.
At the gateway, Envoy's RBAC filters run CUSTOM, then DENY, then ALLOW policies; when any ALLOW
policy selects the gateway, a request no ALLOW rule matches is denied
(`pilot/pkg/security/authz/builder/builder.go`, `pilot/pkg/security/authz/model/model.go`). The
caller is known by the identity in its Istio mTLS certificate,
`<trust domain>/ns/<namespace>/sa/<service account>`, so principal and namespace rules need a
Gateway server in `ISTIO_MUTUAL` mode; over plaintext they never match. What the client sees:
over plaintext HTTP (or with TLS origination) `403 RBAC: access denied`, relayed by its sidecar
with `x-envoy-upstream-service-time`; over TLS passthrough or TCP a closed connection
(`RESET_BEFORE_RESPONSE` / `TCP_CLOSED_AFTER_CONNECT`) — a 403 can never be seen through end-to-end
TLS. The policies evaluated are those of the predicted gateway hop (`diag.predict.gateway_authz`).
Versions: all of 1.22–1.30 (waypoints: ambient, 1.22+). Source: Istio docs "Authorization"
(concepts/security); istio/istio#58349. Why `--like` carries the service account:
`docs/probe-pod.md`.
"""

from __future__ import annotations

from typing import Any

from diag.predict.gateway_model import GatewayHop
from diag.rules import fixes
from diag.rules.base import Diagnosis, Fix, Rule, RuleContext, observed_evidence
from probes.model import Signature

REACHED = (Signature.OK, Signature.HTTP_STATUS)


def evaluate(ctx: RuleContext) -> list[Diagnosis]:
    hop = ctx.prediction.gateway if ctx.prediction is not None else None
    obs = ctx.observed
    if hop is not None and hop.reason == "denied":
        if obs is not None and obs.signature in REACHED and not _relayed_denial(obs):
            return []  # it got through: the prediction is wrong here, not the policy
        if obs is not None and ctx.protocol != "http" and obs.http is not None and obs.http.status:
            return []  # an HTTP answer through end-to-end TLS is the origin's: it got through
        return [_predicted(ctx, hop)]
    denial = obs is not None and (obs.signature is Signature.ENVOY_403_RBAC or _relayed_denial(obs))
    if obs is None or not denial or ctx.protocol != "http":
        return []  # Envoy's 403 is seen only on plaintext HTTP (TLS passthrough: the origin's own)
    where = f"the egress gateway {hop.gateway}" if hop is not None else "a gateway or waypoint on the path"
    applied = f" (policies there: {', '.join(hop.policies)})" if hop is not None and hop.policies else ""
    message = (
        f"{where} denied the call with an AuthorizationPolicy (403 RBAC: access denied){applied}, evaluated "
        "against the source's service account"
    )
    refs = hop.policies if hop is not None else ()
    return [RULE.diagnose(message, resources=refs, evidence=observed_evidence(ctx), supersedes=("MP0202",))]


def _relayed_denial(obs: Any) -> bool:
    """The gateway's 403 as the client gets it: relayed by its sidecar (with
    ``x-envoy-upstream-service-time``), so the probe reads it as the upstream's ``HTTP_STATUS``
    (tests/lab/test_gateway_authz.py: what the lab's real Envoys answer)."""
    http = obs.http
    return bool(obs.signature is Signature.HTTP_STATUS and http is not None and http.status == 403
                and (http.body_excerpt or "").startswith("RBAC: access denied"))  # fmt: skip


def _predicted(ctx: RuleContext, hop: GatewayHop) -> Diagnosis:
    seen = "403 RBAC: access denied, relayed" if hop.signature == "ENVOY_403_RBAC" else "a closed connection"
    message = f"at {hop.gateway}: {hop.message} (the client sees {seen})"
    evidence = [*observed_evidence(ctx), *(f"gateway: {n}" for n in hop.notes)]
    if hop.policies:
        evidence.append(f"policies selecting the gateway: {', '.join(hop.policies)}")
    refs = (hop.policy or "", hop.gateway_ref or "")
    fix = _fix(ctx, hop)
    return RULE.diagnose(message, resources=refs, evidence=evidence, fix=fix, supersedes=("MP0202",))


def _fix(ctx: RuleContext, hop: GatewayHop) -> Fix | None:
    """An ALLOW policy that matched nothing gets a rule for the caller's principal. No fix for a
    DENY (lifting a deny is a security decision) or without an identity (plaintext hop)."""
    if ctx.snapshot is None or not hop.principal or not hop.policy:
        return None
    policy = next((p for p in ctx.snapshot.authorization_policies if p.ref == hop.policy), None)
    if policy is None or policy.action != "ALLOW":
        return None
    principal = hop.principal

    def change(obj: dict[str, Any]) -> None:
        rule: dict[str, Any] = {"from": [{"source": {"principals": [principal]}}]}
        if ctx.protocol == "http":
            rule["to"] = [{"operation": {"hosts": [ctx.call.host.lower()]}}]
        obj["spec"].setdefault("rules", []).append(rule)

    obj = fixes.patched(policy.raw, change)
    return fixes.make_fix(f"allow {principal} in {policy.ref}", [obj])


RULE = Rule("MP0118", "DeniedByAuthorizationPolicy", "error", evaluate)
