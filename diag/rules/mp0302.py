"""MP0302 NoSidecar: the source has no sidecar and is not ambient-enrolled.

Istio behaviour relied on: outbound policy (REGISTRY_ONLY, ServiceEntries, DestinationRules) is
enforced by the pod's own proxy; a pod without one (injection disabled for the namespace or pod,
a failed webhook) talks to the network directly.
Versions: all of 1.22–1.30. Source: istio/istio ``pkg/kube/inject/webhook.go``, ``inject.go``
(injection policy), ``app_probe.go`` (``FindSidecar``: a regular or native sidecar); istioctl analyze
IST0102/IST0103.
"""

from __future__ import annotations

from diag.rules.base import Diagnosis, Rule, RuleContext, observed_evidence


def evaluate(ctx: RuleContext) -> list[Diagnosis]:
    if ctx.dataplane != "none":
        return []
    message = (
        "the source has no sidecar and is not ambient: no mesh egress policy applies to it "
        "(check the istio-injection / istio.io/rev label and sidecar.istio.io/inject)"
    )
    return [
        RULE.diagnose(message, level="error" if ctx.failed else "warning", evidence=observed_evidence(ctx))
    ]


RULE = Rule("MP0302", "NoSidecar", "error", evaluate)
