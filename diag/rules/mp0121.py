"""MP0121 UnmodelledConfig: config meshprobe does not model selects the source proxy.

Istio behaviour relied on: EnvoyFilters and WasmPlugins patch the generated Envoy config after
pilot builds it; a Sidecar egress listener with an explicit ``port``/``bind``/``captureMode`` builds
a "locked" listener (no ALPN match when not on the wildcard). Predictions may be wrong there; the
live path (``actual``) is the ground truth.
Versions: all of 1.22–1.30. Source: istio/istio ``pilot/pkg/networking/core/envoyfilter``,
``listener.go`` (egress listeners with bind/captureMode). What else is not modelled:
``docs/model.md``.
"""

from __future__ import annotations

from diag.rules.base import Diagnosis, Rule, RuleContext


def evaluate(ctx: RuleContext) -> list[Diagnosis]:
    pred = ctx.prediction
    if pred is None or not pred.unmodelled:
        return []
    items = tuple(pred.unmodelled)
    message = (
        f"{', '.join(items)} select this workload and are not modelled: the prediction may be wrong here"
    )
    return [RULE.diagnose(message, resources=tuple(i for i in items if " " in i))]


RULE = Rule("MP0121", "UnmodelledConfig", "warning", evaluate, sidecar_only=True)
