"""MP0304 UnexpectedlyAllowed: ``--expect blocked``, yet traffic got through; names what allows it.

Istio behaviour relied on: what lets a call out of a REGISTRY_ONLY-minded mesh — the ALLOW_ANY
mode (mesh or Sidecar), a visible entry or Service for the host, a NONE/CIDR entry capturing the
port (MP0107), a Sidecar ``egressProxy``, bypassed capture (MP0204), or an ambient source (ztunnel
ignores the mode).
Versions: all of 1.22–1.30. Source: istio/istio
``pilot/pkg/networking/core/listener_builder.go`` (catch-all, egressProxy),
``tools/istio-iptables/pkg/capture/run.go`` (what is not captured), istio/istio#54281 (ztunnel).
"""

from __future__ import annotations

from diag.predict import sidecar as predict
from diag.rules import facts
from diag.rules.base import PASS_DECISIONS, Diagnosis, Rule, RuleContext, observed_evidence


def evaluate(ctx: RuleContext) -> list[Diagnosis]:
    if ctx.expect != "blocked" or not ctx.reached:
        return []
    why: list[str] = []
    resources: list[str] = []
    if ctx.dataplane == "ambient":
        why.append("the source is ambient (ztunnel does not enforce REGISTRY_ONLY)")
    if ctx.bypass:
        why.append("capture is bypassed: " + "; ".join(ctx.bypass))
    if ctx.mode == "ALLOW_ANY" and ctx.decision in PASS_DECISIONS:
        why.append(f"the mode is ALLOW_ANY (set by {ctx.mode_from})")
        resources.extend(facts.mode_resources(ctx))
    if ctx.mode == "EGRESS_PROXY" or (ctx.prediction and ctx.prediction.mode == "EGRESS_PROXY"):
        why.append("a Sidecar egressProxy forwards unknown traffic")
    owner = predict.port_owner(ctx.snapshot, ctx.source, ctx.call.port) if ctx.snapshot else None
    if (
        owner is not None
        and ctx.cluster == owner.cluster
        and not facts.cluster_covers(owner.cluster, ctx.call.host)
    ):
        why.append(f"{owner.ref} captures port {ctx.call.port} ({owner.reason})")
        resources.append(owner.ref)
    elif ctx.prediction is not None and ctx.prediction.matched:
        why.append("it is registered: " + ", ".join(ctx.prediction.matched))
        resources.extend(ctx.prediction.matched)
    message = f"{ctx.call.host}:{ctx.call.port} was expected to be blocked but got through"
    message += (
        ": " + "; ".join(why) if why else " (no mesh setting explains it: check capture and the live config)"
    )
    return [RULE.diagnose(message, resources=resources, evidence=observed_evidence(ctx))]


RULE = Rule("MP0304", "UnexpectedlyAllowed", "error", evaluate)
