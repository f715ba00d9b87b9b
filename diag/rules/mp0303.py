"""MP0303 AmbientMode: the source is ambient-enrolled; sidecar rules do not apply.

Istio behaviour relied on: an ambient pod (annotation ``ambient.istio.io/redirection: enabled``,
label ``istio.io/dataplane-mode=ambient`` on pod or namespace) has no sidecar; ztunnel does not
implement ``outboundTrafficPolicy`` (unknown destinations pass through, istio/ztunnel#369), ignores
``exportTo`` (istio/istio#55163), captures DNS by default. Egress control is a waypoint plus
AuthorizationPolicy, or NetworkPolicy. The sidecar-only codes are suppressed.
Versions: ambient GA in 1.24; all of 1.22–1.30. Source: istio/istio#54281,
``manifests/charts/istio-cni/values.yaml``,
``pkg/config/analysis/analyzers/util/in_mesh.go`` (ambient enrolment).
"""

from __future__ import annotations

from diag.rules.base import Diagnosis, Rule, RuleContext


def evaluate(ctx: RuleContext) -> list[Diagnosis]:
    if ctx.dataplane != "ambient":
        return []
    message = (
        "the source is ambient-enrolled: sidecar rules do not apply and ztunnel does not enforce "
        "REGISTRY_ONLY; egress is controlled by a waypoint with AuthorizationPolicy, or NetworkPolicy"
    )
    return [RULE.diagnose(message, level="warning" if ctx.expect == "blocked" else "info")]


RULE = Rule("MP0303", "AmbientMode", "info", evaluate)
