"""MP0102 PortNotDeclared: a visible entry matches the host but declares no such port.

Istio behaviour relied on: listeners, chains and vhosts are built per declared service *port*;
an entry for the host on other ports contributes nothing on this one. On a port where some
visible service declares HTTP, the shared route ``"<port>"`` ends in ``block_all`` (502);
otherwise the call falls to ``virtualOutbound`` (reset) under REGISTRY_ONLY.
Versions: all of 1.22–1.30. Source: istio/istio ``pilot/pkg/networking/core/listener.go``
(``buildSidecarOutboundListeners``: one listener per service port), ``httproute.go``
(``buildSidecarOutboundHTTPRouteConfig``), ``pilot/pkg/model/service.go``
(``GetAddressForProxy``: a TCP port of an entry without addresses binds ``0.0.0.0``).
"""

from __future__ import annotations

from diag.model.resources import ServiceEntry
from diag.model.snapshot import MeshService
from diag.rules import facts, fixes
from diag.rules.base import Diagnosis, Fix, Rule, RuleContext, observed_evidence


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
    evidence = observed_evidence(ctx)
    fix = _fix(ctx, svc, port, evidence) if svc.kind == "ServiceEntry" else None
    message = f"{svc.ref} matches {ctx.call.host} but declares ports {declared}, not {port}: {symptom}"
    return [
        RULE.diagnose(
            message,
            resources=(svc.ref,),
            evidence=evidence,
            fix=fix,
            supersedes=("MP0101", "MP0113"),
        )
    ]


def _fix(ctx: RuleContext, svc: MeshService, port: int, evidence: list[str]) -> Fix | None:
    """Declare the port on the entry — never as a TCP port of an entry without addresses, which
    would own ``0.0.0.0:port`` for every host (MP0107): a plain TCP call gets an entry of its own
    bound to the address it dialled (observed or given); without that address no fix is safe."""
    entry = svc.resource
    if ctx.protocol != "tcp" or (isinstance(entry, ServiceEntry) and entry.addresses):
        added = fixes.add_port(entry.raw, port, ctx.protocol)
        return fixes.make_fix(f"declare port {port} on {svc.ref}", [added])
    known = facts.known_address(ctx)
    if known:
        return fixes.service_entry(ctx.call.host, port, "tcp", ctx.source.namespace, address=known)
    evidence.append(
        f"no fix written: declaring TCP port {port} on {svc.ref}, which has no addresses, would send "
        f"all TCP on port {port}, to any host, to {ctx.call.host} (MP0107); an entry bound to the "
        "address the client dials is safe — probe the target (explain --results) so meshprobe sees "
        "it, or name the protocol (tls://, https://, http://) if the client speaks one"
    )
    return None


RULE = Rule("MP0102", "PortNotDeclared", "error", evaluate, sidecar_only=True)
