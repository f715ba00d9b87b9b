"""MP0116 TlsOriginationBroken: plain HTTP toward a TLS origin without working origination.

Istio behaviour relied on: HTTP declared on a port whose origin speaks TLS, with no DestinationRule
``tls.mode: SIMPLE``, sends plaintext to a TLS server (``503 UC``, connection termination); SIMPLE
origination on port 80 without ``targetPort: 443`` sends TLS to the origin's plaintext port; a CA
or SAN that does not verify fails the upstream handshake (503 with a TLS/CERTIFICATE_VERIFY_FAILED
transport failure reason).
Versions: all of 1.22–1.30. Source: istio/istio ``pilot/pkg/networking/core/cluster_tls.go``;
Istio task "Egress TLS origination". The port is the cluster's: a VirtualService that sends port
80 to port 443 gets the origination of 443.
"""

from __future__ import annotations

from diag.rules import fixes
from diag.rules.base import Diagnosis, Fix, Rule, RuleContext, observed_evidence
from probes.model import Signature

TLS_REASONS = ("connection termination", "TLS", "tls", "CERTIFICATE_VERIFY_FAILED", "SSL")


def evaluate(ctx: RuleContext) -> list[Diagnosis]:
    pred = ctx.prediction
    if ctx.protocol != "http" or pred is None or pred.service is None:
        return []
    svc = pred.service
    # The cluster's port is where the sidecar connects (a VirtualService may send port 80 to 443).
    upstream = _cluster_port(ctx.cluster) or ctx.call.port
    port = svc.port(upstream) or svc.port(ctx.call.port)
    if port is None or "egressgateway" in (ctx.cluster or ""):
        return []
    mode = pred.upstream_tls.mode if pred.upstream_tls else "NONE"
    reason = _tls_failure(ctx)
    found = (
        _origination_to_plain_port(ctx, svc.ref, mode, upstream, port.target_port, reason)
        or _no_origination(ctx, svc.ref, mode, port.protocol, reason)
        or _verification(ctx, mode, reason, pred.upstream_tls.decided_by if pred.upstream_tls else None)
    )
    return [found] if found else []


def _tls_failure(ctx: RuleContext) -> str | None:
    """Envoy's 503 reason when it names a TLS/termination failure, else None."""
    obs = ctx.observed
    if obs is None or obs.signature is not Signature.ENVOY_503_UPSTREAM or obs.http is None:
        return None
    reason = obs.http.envoy_reason or ""
    return reason if any(r in reason for r in TLS_REASONS) else None


def _cluster_port(cluster: str | None) -> int | None:
    parts = (cluster or "").split("|")
    return int(parts[1]) if len(parts) == 4 and parts[1].isdigit() else None


def _origination_to_plain_port(
    ctx: RuleContext, ref: str, mode: str, upstream: int, target: int | None, reason: str | None
) -> Diagnosis | None:
    if not (mode == "SIMPLE" and upstream == 80 and target in (None, 80)):
        return None
    message = (
        f"TLS origination for {ctx.call.host}:80 without targetPort 443 on {ref}: the sidecar speaks TLS "
        "to the origin's plaintext port"
    )
    level = "error" if reason or ctx.failed else "warning"
    return RULE.diagnose(
        message, level=level, resources=(ref,), evidence=observed_evidence(ctx), supersedes=("MP0202",)
    )


def _no_origination(
    ctx: RuleContext, ref: str, mode: str, declared: str, reason: str | None
) -> Diagnosis | None:
    https_port = ctx.call.port == 443 and declared in ("HTTP", "HTTP2")
    if mode not in ("NONE", "DISABLE") or not (reason or https_port):
        return None
    message = (
        f"plain HTTP to {ctx.call.host}:{ctx.call.port} is sent to the origin unencrypted, but the origin "
        "expects TLS and no DestinationRule originates it"
    )
    return RULE.diagnose(
        message,
        level="error" if reason else "warning",
        resources=(ref,),
        evidence=observed_evidence(ctx),
        fix=_origination(ctx),
        supersedes=("MP0202",),
    )


def _verification(
    ctx: RuleContext, mode: str, reason: str | None, decided_by: str | None
) -> Diagnosis | None:
    if not reason or mode not in ("SIMPLE", "MUTUAL"):
        return None
    message = f"TLS origination to {ctx.call.host} fails: {reason} (check caCertificates/subjectAltNames/sni)"
    return RULE.diagnose(
        message, resources=(decided_by or "",), evidence=observed_evidence(ctx), supersedes=("MP0202",)
    )


def _origination(ctx: RuleContext) -> Fix:
    obj = fixes.destination_rule_port_tls(ctx.call.host, ctx.source.namespace, ctx.call.port, "SIMPLE")
    obj["spec"]["trafficPolicy"]["portLevelSettings"][-1]["tls"]["sni"] = ctx.call.host
    return fixes.make_fix(
        f"originate TLS to {ctx.call.host} on port {ctx.call.port} (namespace {ctx.source.namespace} only)",
        [obj],
    )


RULE = Rule("MP0116", "TlsOriginationBroken", "error", evaluate, sidecar_only=True)
