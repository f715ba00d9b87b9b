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
(egressProxy catch-all). How meshprobe picks the Sidecar and reads its imports: ``docs/model.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from diag.rules import facts, fixes
from diag.rules.base import Diagnosis, Fix, Rule, RuleContext, observed_evidence


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
        fix = _import_fix(scope.raw, scope.namespace, ctx.source.namespace, svc.namespace, svc.host)
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


def _import_fix(raw: Mapping[str, Any], sidecar_ns: str, source_ns: str, entry_ns: str, host: str) -> Fix:
    """Import the entry; a root-namespace Sidecar applies mesh-wide, so the fix is then a copy of it
    in the source namespace (which takes precedence there) rather than an edit of the root one."""
    obj = fixes.sidecar_import(raw, entry_ns, host)
    if sidecar_ns == source_ns:
        return fixes.make_fix(
            f"import {entry_ns}/{host} in Sidecar {sidecar_ns}/{obj['metadata'].get('name')}", [obj]
        )
    obj["metadata"] = {"name": "default", "namespace": source_ns}
    obj["spec"].pop("workloadSelector", None)
    return fixes.make_fix(
        f"a Sidecar for namespace {source_ns} (a copy of {sidecar_ns}'s) importing {entry_ns}/{host}", [obj]
    )


RULE = Rule("MP0105", "HiddenBySidecar", "error", evaluate, sidecar_only=True)
