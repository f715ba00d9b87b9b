"""MP0305 SidecarNotListening: connection refused although the destination is captured and a
sidecar is present.

Istio behaviour relied on: captured connections are redirected to the proxy's 15001 listener; if
Envoy is not listening yet (before readiness — no ``holdApplicationUntilProxyStarts``), any more
(after ``quitquitquit``/shutdown), or there is no ``virtualOutbound`` (interception NONE), the
kernel refuses the redirected SYN: ECONNREFUSED for a remote address that may well be up.
Versions: all of 1.22–1.30. Source: istio/istio ``pilot/pkg/networking/core/listener_builder.go``
(virtualOutbound absent with interception NONE), ``pilot/cmd/pilot-agent/status/server.go``.
"""

from __future__ import annotations

from diag.rules.base import Diagnosis, Rule, RuleContext, observed_evidence
from probes.model import Signature


def evaluate(ctx: RuleContext) -> list[Diagnosis]:
    if ctx.signature is not Signature.TCP_REFUSED or ctx.dataplane != "sidecar" or ctx.bypass:
        return []
    message = (
        "connection refused although the destination is captured and a sidecar is present: Envoy was not "
        "listening (before readiness, after shutdown, or no virtualOutbound)"
    )
    return [RULE.diagnose(message, evidence=observed_evidence(ctx), supersedes=("MP0203",))]


RULE = Rule("MP0305", "SidecarNotListening", "error", evaluate, sidecar_only=True)
