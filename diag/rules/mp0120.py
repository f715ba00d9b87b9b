"""MP0120 SidecarConfigStale: the live sidecar path differs from the prediction, or the proxy
rejected config updates.

Istio behaviour relied on: istiod debounces and pushes config over xDS; a proxy keeps its previous
config until the push arrives, and keeps it for good when it NACKs an update (e.g. duplicate vhost
domains that differ only in case, istio/istio#49638). ``listener_manager.lds.update_rejected`` and
``cluster_manager.cds.update_rejected`` are in Istio's default stats inclusion list.
With DNS capture, a lookup that fails for a host the agent's name table should hold is the same
staleness seen through DNS (the agent answers SERVFAIL until the table arrives,
``pkg/dns/client/dns.go``).
Versions: all of 1.22–1.30. Source: istio/istio ``tools/packaging/common/envoy_bootstrap.json``
(stats inclusion), ``pilot/pkg/xds`` (debounce/push), ``pkg/bootstrap/config.go``
(the default stats matcher).
"""

from __future__ import annotations

from diag.live import path as livepath
from diag.predict import sidecar as predict
from diag.rules.base import DNS_SIGNATURES, Diagnosis, Rule, RuleContext, observed_evidence


def evaluate(ctx: RuleContext) -> list[Diagnosis]:
    out: list[Diagnosis] = []
    sidecar = ctx.sidecar
    if sidecar is not None:
        rejected = livepath.rejected_updates(sidecar.config or None, sidecar.update_rejected)
        if rejected:
            out.append(
                RULE.diagnose(
                    "the sidecar rejected config updates (NACK): it runs older config",
                    evidence=list(rejected),
                )
            )
    if ctx.declared_mode and ctx.live_mode and ctx.declared_mode != ctx.live_mode:
        message = (
            f"the live catch-all says {ctx.live_mode}, the declared config says {ctx.declared_mode} "
            f"({ctx.prediction.mode_from if ctx.prediction else 'mesh'}): the config given is not the one in "
            "effect for this proxy (revision, Sidecar, or a stale push); predicting with the live mode"
        )
        out.append(RULE.diagnose(message, evidence=observed_evidence(ctx)))
    if ctx.signature in DNS_SIGNATURES and ctx.snapshot is not None:
        answer = predict.dns_answer(ctx.snapshot, ctx.source, ctx.call.host)
        if answer:
            message = (
                f"with DNS capture the agent should answer {ctx.call.host} with {', '.join(answer)}, "
                "but the pod's lookup failed: the proxy was not ready (SERVFAIL before its name table "
                "arrives) or its name table is older than the config"
            )
            out.append(RULE.diagnose(message, evidence=observed_evidence(ctx)))
    pred, actual = ctx.prediction, ctx.actual
    if pred is None or actual is None or actual.outcome == "no_listener":
        return out
    if actual.envoy != pred.envoy:
        message = (
            f"the live sidecar sends {ctx.call.host}:{ctx.call.port} to {actual.envoy}, the declared config "
            f"predicts {pred.envoy}: config not pushed yet, rejected, or changed by something unmodelled"
        )
        out.append(
            RULE.diagnose(
                message, evidence=[*observed_evidence(ctx), f"predicted: {pred.path.listener} → {pred.envoy}"]
            )
        )
    return out


RULE = Rule("MP0120", "SidecarConfigStale", "warning", evaluate, sidecar_only=True)
