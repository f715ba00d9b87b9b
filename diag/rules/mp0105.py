"""MP0105 HiddenBySidecar: the Sidecar selected for the source does not import the entry, or sets
REGISTRY_ONLY or an ``egressProxy``.

Istio behaviour relied on: the Sidecar applying to a workload is the one whose
``workloadSelector`` matches it, else its namespace's selector-less Sidecar, else the root
namespace's. Its ``egress[].hosts`` (``ns/host``, ``./host``, ``*/host``, wildcards) limit which
services the proxy imports; its ``outboundTrafficPolicy`` overrides the mesh mode, and an
``egressProxy`` replaces the passthrough for unknown traffic.
Versions: all of 1.22–1.30 (egressProxy since 1.8). Source: istio/istio
``pilot/pkg/model/push_context.go`` (``getSidecarScope``), ``pilot/pkg/model/sidecar.go``
(``egressHostsIndex``/``matchingAliases``, ``OutboundTrafficPolicy``), ``listener_builder.go``
(egressProxy catch-all); ``reference/istio-review.md`` §3.13, §3.11.
"""

from __future__ import annotations

from diag import fixes
from diag.rules import facts
from diag.rules.base import Diagnosis, Rule, RuleContext, observed_evidence


def evaluate(ctx: RuleContext) -> list[Diagnosis]:
    if not ctx.failed:
        return []
    scope = facts.sidecar(ctx)
    if scope is None:
        return []
    out: list[Diagnosis] = []
    for item in facts.hidden(ctx):
        if item.reason != "sidecar":
            continue
        svc = item.service
        obj = fixes.sidecar_import(scope.raw, svc.namespace, svc.host)
        fix = fixes.make_fix(f"import {svc.namespace}/{svc.host} in {scope.ref}", [obj])
        message = (
            f"{scope.ref} applies to this workload and does not import {svc.ref} "
            f"(egress hosts miss {svc.namespace}/{svc.host})"
        )
        out.append(
            RULE.diagnose(
                message,
                resources=(scope.ref, svc.ref),
                evidence=observed_evidence(ctx),
                fix=fix,
                supersedes=("MP0101", "MP0113"),
            )
        )
    policy = scope.outbound_traffic_policy
    registry_only = policy is not None and policy.mode == "REGISTRY_ONLY"
    if registry_only and ctx.blocked and ctx.mode_from == scope.ref:
        message = (
            f"{scope.ref} sets outboundTrafficPolicy REGISTRY_ONLY for this workload (over the mesh mode)"
        )
        out.append(
            RULE.diagnose(message, level="warning", resources=(scope.ref,), evidence=observed_evidence(ctx))
        )
    if policy is not None and policy.egress_proxy is not None and not ctx.reached:
        proxy = policy.egress_proxy
        message = (
            f"{scope.ref} sends unknown traffic to egressProxy {proxy.host}"
            f"{':' + str(proxy.port) if proxy.port else ''} instead of passing it through"
        )
        out.append(
            RULE.diagnose(message, level="warning", resources=(scope.ref,), evidence=observed_evidence(ctx))
        )
    return out


RULE = Rule("MP0105", "HiddenBySidecar", "error", evaluate, sidecar_only=True)
