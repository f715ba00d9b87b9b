"""MP0301 AllowAnyMode: the effective mode is ALLOW_ANY, so the target is reachable with no entry.

Istio behaviour relied on: under ALLOW_ANY the ``virtualOutbound-catchall-tcp`` chain, the port
listeners' ``PassthroughFilterChain`` and the HTTP routes' ``allow_any`` vhost all use
``PassthroughCluster``: unknown destinations pass. The mode comes from the Sidecar selecting the
workload if it sets one, else MeshConfig (``ALLOW_ANY`` by default).
Versions: all of 1.22–1.30. Source: istio/istio ``pilot/pkg/networking/core/listener_builder.go``,
``httproute.go`` (``allow_any``), ``pkg/config/mesh/mesh.go`` (default),
``pilot/pkg/bootstrap/mesh.go`` (the ``istio``/``istio-<rev>`` ConfigMap).
"""

from __future__ import annotations

from diag.rules import facts
from diag.rules.base import PASS_DECISIONS, Diagnosis, Rule, RuleContext, observed_evidence


def evaluate(ctx: RuleContext) -> list[Diagnosis]:
    if ctx.mode != "ALLOW_ANY" or ctx.decision not in PASS_DECISIONS:
        return []
    message = (
        f"the effective mode is ALLOW_ANY (set by {ctx.mode_from or 'the mesh default'}): "
        f"{ctx.call.host}:{ctx.call.port} is reachable through {ctx.decision} without any entry"
    )
    return [RULE.diagnose(message, resources=facts.mode_resources(ctx), evidence=observed_evidence(ctx))]


RULE = Rule("MP0301", "AllowAnyMode", "info", evaluate, sidecar_only=True)
