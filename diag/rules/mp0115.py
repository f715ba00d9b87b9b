"""MP0115 OutsideDiscoverySelectors: the entry's namespace is outside ``meshConfig.discoverySelectors``.

Istio behaviour relied on: istiod ignores Services *and Istio config* (ServiceEntries included) in
namespaces no discovery selector matches — by default since 1.22
(``ENABLE_ENHANCED_RESOURCE_SCOPING``), unconditionally since 1.25. The entry then exists in the
cluster but in no proxy's config.
Versions: 1.22+ (1.20–1.21: Services only). Source: istio/istio ``pkg/kube/namespace/filter.go``,
``pilot/pkg/features/experimental.go`` (1.22), commit fa361b9bca4 (the
flag removed, 1.25).
"""

from __future__ import annotations

from typing import Any

from diag.rules import facts, fixes
from diag.rules.base import Diagnosis, Fix, Rule, RuleContext, observed_evidence


def evaluate(ctx: RuleContext) -> list[Diagnosis]:
    if not ctx.failed or ctx.snapshot is None:
        return []
    out: list[Diagnosis] = []
    for item in facts.hidden(ctx):
        if item.reason != "discovery":
            continue
        svc = item.service
        message = (
            f"{svc.ref} matches {ctx.call.host} but namespace {svc.namespace} is outside "
            "meshConfig.discoverySelectors: istiod ignores it"
        )
        fix = _label_fix(ctx, svc.namespace)
        out.append(
            RULE.diagnose(
                message,
                resources=(svc.ref, ctx.snapshot.mesh.ref),
                evidence=[item.decision.reason, *observed_evidence(ctx)],
                fix=fix,
                supersedes=("MP0101", "MP0113"),
            )
        )
    return out


def _label_fix(ctx: RuleContext, namespace: str) -> Fix | None:
    """Label the namespace with the first selector's ``matchLabels`` (only exact labels are safe)."""
    assert ctx.snapshot is not None
    for selector in ctx.snapshot.mesh.discovery_selectors:
        labels = selector.get("matchLabels")
        if isinstance(labels, dict) and labels and not selector.get("matchExpressions"):
            obj: dict[str, Any] = {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": namespace, "labels": dict(labels)},
            }
            existing = ctx.snapshot.namespaces.get(namespace)
            if existing is not None and existing.raw:
                wanted = dict(labels)
                obj = fixes.patched(
                    existing.raw,
                    lambda o, w=wanted: o.setdefault("metadata", {}).setdefault("labels", {}).update(w),  # type: ignore[misc]
                )
                if not obj.get("spec"):
                    obj.pop("spec", None)
            return fixes.make_fix(f"label namespace {namespace} so istiod watches it", [obj])
    return None


RULE = Rule("MP0115", "OutsideDiscoverySelectors", "error", evaluate)
