"""MP0204 BypassedSidecar: from config, this call never goes through the sidecar.

Istio behaviour relied on: istio-iptables (or istio-cni) redirects outbound TCP except what the pod
excludes: ports in ``traffic.sidecar.istio.io/excludeOutboundPorts``, CIDRs in
``excludeOutboundIPRanges``, anything outside a narrowed ``includeOutboundIPRanges``; packets of the
proxy's UID *or* GID (1337 unless the platform allocates another); everything with
``sidecar.istio.io/interceptionMode: NONE`` or ``hostNetwork``. Bypassed traffic usually *succeeds*
directly (REGISTRY_ONLY silently does not apply) or meets a firewall; reported whatever the outcome.
Versions: all of 1.22–1.30. Source: istio/istio ``tools/istio-iptables/pkg/capture/run.go``
(owner match on uid and gid), ``tools/common/config/config.go`` (the gid defaults to the uid),
``manifests/charts/istio-control/istio-discovery/files/injection-template.yaml`` (annotations →
istio-iptables flags).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from diag.model.resources import Pod
from diag.rules import facts
from diag.rules.base import Diagnosis, Rule, RuleContext, observed_evidence

PROXY_ID = 1337
A = "traffic.sidecar.istio.io/"


def evaluate(ctx: RuleContext) -> list[Diagnosis]:
    reasons = list(ctx.bypass)
    pod = _pod(ctx)
    if pod is not None:
        reasons.extend(bypass_reasons(pod, ctx.call.port, facts.dialled_address(ctx)))
    if not reasons:
        return []
    level = "info" if ctx.expect != "blocked" and not ctx.failed else "warning"
    message = f"{ctx.call.host}:{ctx.call.port} bypasses the sidecar: " + "; ".join(reasons)
    return [
        RULE.diagnose(
            message,
            level=level,
            resources=(pod.ref,) if pod else (),
            evidence=observed_evidence(ctx),
            supersedes=("MP0305",),  # not captured: a refusal is the upstream's, not a missing listener
        )
    ]


def _pod(ctx: RuleContext) -> Pod | None:
    if ctx.snapshot is None or not ctx.source.labels:
        return None
    for pod in ctx.snapshot.pods:
        if pod.namespace == ctx.source.namespace and all(
            pod.labels.get(k) == v for k, v in ctx.source.labels.items()
        ):
            return pod
    return None


def bypass_reasons(pod: Pod, port: int, address: str | None) -> list[str]:
    """Why traffic from this pod to (address, port) is not captured, from its spec and annotations."""
    ann = pod.annotations
    out: list[str] = []
    if pod.host_network:
        out.append("the pod uses hostNetwork")
    if ann.get("sidecar.istio.io/interceptionMode", "").upper() == "NONE":
        out.append("interceptionMode NONE")
    if str(port) in _items(ann.get(A + "excludeOutboundPorts", "")):
        out.append(f"port {port} is in excludeOutboundPorts")
    if address and _in_any(address, _items(ann.get(A + "excludeOutboundIPRanges", ""))):
        out.append(f"{address} is in excludeOutboundIPRanges")
    include = _items(ann.get(A + "includeOutboundIPRanges", "*"))
    if include and "*" not in include and (address is None or not _in_any(address, include)):
        out.append(f"includeOutboundIPRanges is narrowed to {', '.join(include)}")
    out.extend(_identity(pod.raw))
    return out


def _items(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def _in_any(address: str, cidrs: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
        return any(ip in ipaddress.ip_network(c, strict=False) for c in cidrs if c != "*")
    except ValueError:
        return False


def _identity(raw: Mapping[str, Any]) -> list[str]:
    spec_value = raw.get("spec")
    spec: Mapping[str, Any] = spec_value if isinstance(spec_value, Mapping) else {}
    pod_ctx = spec.get("securityContext") or {}
    out: list[str] = []
    for container in spec.get("containers") or []:
        if not isinstance(container, Mapping) or container.get("name") == "istio-proxy":
            continue
        sc = {**pod_ctx, **(container.get("securityContext") or {})}
        for key, what in (("runAsUser", "uid"), ("runAsGroup", "gid")):
            if sc.get(key) == PROXY_ID:
                out.append(f"container {container.get('name')} runs as the proxy's {what} {PROXY_ID}")
    return out


RULE = Rule("MP0204", "BypassedSidecar", "warning", evaluate)
