"""MP0102 PortNotDeclared: a visible entry matches the host but declares no such port.

Istio behaviour relied on: listeners, chains and vhosts are built per declared service *port*;
an entry for the host on other ports contributes nothing on this one. On a port where some
visible service declares HTTP, the shared route ``"<port>"`` ends in ``block_all`` (502);
otherwise the call falls to ``virtualOutbound`` (reset) under REGISTRY_ONLY.
Versions: all of 1.22–1.30. Source: istio/istio ``pilot/pkg/networking/core/listener.go``
(``buildSidecarOutboundListeners``: one listener per service port), ``httproute.go``
(``buildSidecarOutboundHTTPRouteConfig``); ``reference/istio-review.md`` §3.13.
"""

from __future__ import annotations

from diag import fixes
from diag.rules import facts
from diag.rules.base import Diagnosis, Rule, RuleContext, observed_evidence


def evaluate(ctx: RuleContext) -> list[Diagnosis]:
    if not (ctx.failed and ctx.blocked):
        return []
    port = ctx.call.port
    seen = facts.visible(ctx)
    if not seen or any(c.service.port(port) is not None for c in seen):
        return []
    svc = seen[0].service
    declared = ", ".join(str(p.number) for p in svc.ports) or "none"
    symptom = "502 from block_all" if ctx.decision == "block_all" else "a reset by the blackhole"
    fix = None
    addresses = getattr(svc.resource, "addresses", ())
    if svc.kind == "ServiceEntry" and (ctx.protocol != "tcp" or addresses):
        fix = fixes.make_fix(
            f"declare port {port} on {svc.ref}",
            [fixes.add_port(svc.resource.raw, port, ctx.protocol)],
        )
    message = f"{svc.ref} matches {ctx.call.host} but declares ports {declared}, not {port}: {symptom}"
    return [
        RULE.diagnose(
            message,
            resources=(svc.ref,),
            evidence=observed_evidence(ctx),
            fix=fix,
            supersedes=("MP0101", "MP0113"),
        )
    ]


RULE = Rule("MP0102", "PortNotDeclared", "error", evaluate, sidecar_only=True)
