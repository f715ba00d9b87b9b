"""MP0109 IstioMtlsToExternalHost: the sidecar presents a mesh certificate (Istio mTLS) to a
non-mesh host.

Istio behaviour relied on: a DestinationRule with ``tls.mode: ISTIO_MUTUAL`` (or MUTUAL with mesh
certificates) applies to any host it covers, MESH_EXTERNAL included (user settings win). Without a
DR, auto-mTLS applies only to endpoints labelled ``security.istio.io/tlsMode: istio`` (or carrying a
``serviceAccount``), never to ORIGINAL_DST (resolution NONE) clusters; ``location: MESH_INTERNAL``
alone does not cause mTLS (that is lint MP0405). Symptoms: 503 with a TLS transport failure on
HTTP, a handshake reset on TLS/TCP.
Versions: all of 1.22–1.30. Source: istio/istio ``pilot/pkg/networking/core/cluster_tls.go``
(auto-mTLS transport-socket match; user TLS wins), ``pilot/pkg/serviceregistry/serviceentry/
conversion.go`` (endpoint TLS mode), ``pilot/pkg/model/push_context.go`` (``destinationRule``: which
DestinationRule applies).
"""

from __future__ import annotations

from diag.predict import sidecar as predict
from diag.rules import fixes
from diag.rules.base import Diagnosis, Rule, RuleContext, observed_evidence


def evaluate(ctx: RuleContext) -> list[Diagnosis]:
    pred = ctx.prediction
    if pred is None or pred.upstream_tls is None or pred.service is None:
        return []
    tls = pred.upstream_tls
    svc = pred.service
    if svc.kind != "ServiceEntry" or tls.mode not in ("ISTIO_MUTUAL", "AUTO_ISTIO_MUTUAL"):
        return []
    port = ctx.call.port
    symptom = "503 with a TLS transport failure" if ctx.protocol == "http" else "a TLS handshake reset"
    if tls.mode == "AUTO_ISTIO_MUTUAL":
        message = (
            f"{svc.ref} has endpoints labelled as mesh workloads (tlsMode: istio or a serviceAccount): "
            f"auto-mTLS presents the mesh certificate to {ctx.call.host} ({symptom})"
        )
        return [
            RULE.diagnose(
                message,
                resources=(svc.ref,),
                evidence=observed_evidence(ctx),
                supersedes=("MP0202", "MP0108"),
            )
        ]
    dr = predict.destination_rule_for(ctx.snapshot, ctx.source, ctx.call.host) if ctx.snapshot else None
    fix = None
    if dr is not None:
        obj = fixes.destination_rule_port_tls(ctx.call.host, dr.namespace, port, "DISABLE", base=dr.raw)
        fix = fixes.make_fix(f"no Istio mTLS to {ctx.call.host}:{port} in {dr.ref}", [obj])
    message = (
        f"{tls.decided_by} applies ISTIO_MUTUAL to {ctx.call.host}, a host outside the mesh ({svc.ref}): "
        f"the sidecar presents its mesh certificate ({symptom})"
    )
    return [
        RULE.diagnose(
            message,
            resources=(tls.decided_by or "", svc.ref),
            evidence=observed_evidence(ctx),
            fix=fix,
            supersedes=("MP0202", "MP0108"),
        )
    ]


RULE = Rule("MP0109", "IstioMtlsToExternalHost", "error", evaluate, sidecar_only=True)
