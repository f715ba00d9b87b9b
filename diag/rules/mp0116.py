"""MP0116 TlsOriginationBroken: plain HTTP toward a TLS origin without working origination.

Istio behaviour relied on: HTTP declared on a port whose origin speaks TLS, with no DestinationRule
``tls.mode: SIMPLE``, sends plaintext to a TLS server (``503 UC``, connection termination); SIMPLE
origination on port 80 without ``targetPort: 443`` sends TLS to the origin's plaintext port; a CA
or SAN that does not verify fails the upstream handshake (503 with a TLS/CERTIFICATE_VERIFY_FAILED
transport failure reason).
Versions: all of 1.22–1.30. Source: istio/istio ``pilot/pkg/networking/core/cluster_tls.go``;
Istio task "Egress TLS origination"; ``reference/istio-review.md`` §3.4; ``reference/lab-prototype.md``
§6.
"""

from __future__ import annotations

from diag import fixes
from diag.rules.base import Diagnosis, Fix, Rule, RuleContext, observed_evidence
from probes.model import Signature

TLS_REASONS = ("connection termination", "TLS", "tls", "CERTIFICATE_VERIFY_FAILED", "SSL")


def evaluate(ctx: RuleContext) -> list[Diagnosis]:
    pred = ctx.prediction
    if ctx.protocol != "http" or pred is None or pred.service is None:
        return []
    svc = pred.service
    port = svc.port(ctx.call.port)
    mode = pred.upstream_tls.mode if pred.upstream_tls else "NONE"
    cluster = ctx.cluster or ""
    if port is None or "egressgateway" in cluster:
        return []
    obs = ctx.observed
    reason = (obs.http.envoy_reason or "") if obs is not None and obs.http is not None else ""
    failed_tls = (
        obs is not None
        and obs.signature is Signature.ENVOY_503_UPSTREAM
        and any(r in reason for r in TLS_REASONS)
    )
    evidence = observed_evidence(ctx)
    if mode == "SIMPLE" and ctx.call.port == 80 and port.target_port in (None, 80):
        message = (
            f"TLS origination for {ctx.call.host}:80 without targetPort 443 on {svc.ref}: the sidecar "
            "speaks TLS to the origin's plaintext port"
        )
        return [
            RULE.diagnose(
                message,
                level="error" if failed_tls or ctx.failed else "warning",
                resources=(svc.ref,),
                evidence=evidence,
                supersedes=("MP0202",),
            )
        ]
    no_origination = mode in ("NONE", "DISABLE")
    if no_origination and (failed_tls or (ctx.call.port == 443 and port.protocol in ("HTTP", "HTTP2"))):
        message = (
            f"plain HTTP to {ctx.call.host}:{ctx.call.port} is sent to the origin unencrypted, but the "
            "origin expects TLS and no DestinationRule originates it"
        )
        return [
            RULE.diagnose(
                message,
                level="error" if failed_tls else "warning",
                resources=(svc.ref,),
                evidence=evidence,
                fix=_origination(ctx),
                supersedes=("MP0202",),
            )
        ]
    if failed_tls and mode in ("SIMPLE", "MUTUAL"):
        message = (
            f"TLS origination to {ctx.call.host} fails: {reason} (check caCertificates/subjectAltNames/sni)"
        )
        return [
            RULE.diagnose(
                message,
                resources=(pred.upstream_tls.decided_by or "",) if pred.upstream_tls else (),
                evidence=evidence,
                supersedes=("MP0202",),
            )
        ]
    return []


def _origination(ctx: RuleContext) -> Fix:
    obj = fixes.destination_rule_port_tls(ctx.call.host, ctx.source.namespace, ctx.call.port, "SIMPLE")
    obj["spec"]["trafficPolicy"]["portLevelSettings"][-1]["tls"]["sni"] = ctx.call.host
    return fixes.make_fix(
        f"originate TLS to {ctx.call.host} on port {ctx.call.port} (namespace {ctx.source.namespace} only)",
        [obj],
    )


RULE = Rule("MP0116", "TlsOriginationBroken", "error", evaluate, sidecar_only=True)
