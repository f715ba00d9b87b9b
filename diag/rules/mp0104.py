"""MP0104 NotExported: a matching entry exists but ``exportTo`` hides it from the source namespace.

Istio behaviour relied on: istiod only puts a service into a proxy's scope when its ``exportTo``
(ServiceEntry field, Kubernetes Service annotation ``networking.istio.io/exportTo``, else MeshConfig
``defaultServiceExportTo``) includes ``*``, the proxy's namespace, or ``.`` with the proxy in the
service's own namespace. Hidden services build nothing for that proxy. Sidecar mode only (ambient
ignores exportTo, istio/istio#55163).
Versions: all of 1.22–1.30. Source: istio/istio ``pilot/pkg/model/push_context.go``
(``IsServiceVisible``, ``initServiceRegistry``), ``pilot/pkg/serviceregistry/kube/conversion.go``
(exportTo annotation), ``pkg/config/mesh/mesh.go`` (``defaultServiceExportTo``: ``*``),
``pkg/config/validation/validation.go`` (``validateExportTo``).
"""

from __future__ import annotations

from diag.rules import facts, fixes
from diag.rules.base import Diagnosis, Rule, RuleContext, observed_evidence


def evaluate(ctx: RuleContext) -> list[Diagnosis]:
    if not ctx.failed:
        return []
    out: list[Diagnosis] = []
    ns = ctx.source.namespace
    for item in facts.hidden(ctx):
        if item.reason != "export":
            continue
        svc = item.service
        obj = fixes.export_to_namespace(svc.resource.raw, ns, annotation=svc.kind == "Service")
        fix = fixes.make_fix(f"export {svc.ref} to namespace {ns}", [obj])
        why = item.decision.reason
        message = f"{svc.ref} matches {ctx.call.host} but is not exported to namespace {ns} ({why})"
        resources = (svc.ref, item.decision.decided_by) if item.decision.decided_by != svc.ref else (svc.ref,)
        out.append(
            RULE.diagnose(
                message,
                resources=resources,
                evidence=observed_evidence(ctx),
                fix=fix,
                supersedes=("MP0101", "MP0113"),
            )
        )
    return out


RULE = Rule("MP0104", "NotExported", "error", evaluate, sidecar_only=True)
