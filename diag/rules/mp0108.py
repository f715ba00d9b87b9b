"""MP0108 DoubleTls: a DestinationRule originates TLS on a port where the client already speaks TLS.

Istio behaviour relied on: a user DestinationRule's ``tls`` (SIMPLE/MUTUAL/ISTIO_MUTUAL, top level
or ``portLevelSettings``) becomes the cluster's upstream transport socket, even for MESH_EXTERNAL
entries; on a TLS/HTTPS/TCP port the app's own TLS is then wrapped in a second TLS session. The
origin answers the inner ClientHello as plaintext: ``wrong version number`` (TLS_WRONG_VERSION) or
a reset. (On an HTTP-declared port, TLS never reaches that cluster: MP0103.) Not for Istio mTLS
to an egress gateway: a Gateway server in ``ISTIO_MUTUAL`` terminates it and passes the app's TLS on
(the mTLS-passthrough pattern); a server that does not is MP0112's TLS mismatch.
Versions: all of 1.22–1.30. Source: istio/istio ``pilot/pkg/networking/core/cluster_tls.go``
(``buildUpstreamTLSSettings``: user settings win), istio/istio#36377, Istio docs "Double TLS";
``pilot/pkg/networking/core/listener.go`` (an HTTP-declared port's chain never takes TLS).
"""

from __future__ import annotations

from diag.predict import sidecar as predict
from diag.rules import fixes
from diag.rules.base import Diagnosis, Rule, RuleContext, observed_evidence

ORIGINATING = ("SIMPLE", "MUTUAL", "ISTIO_MUTUAL")


def evaluate(ctx: RuleContext) -> list[Diagnosis]:
    pred = ctx.prediction
    if ctx.protocol not in ("https", "tls") or pred is None or pred.upstream_tls is None:
        return []
    tls = pred.upstream_tls
    if tls.mode not in ORIGINATING or not (tls.decided_by or "").startswith("DestinationRule"):
        return []
    if tls.mode == "ISTIO_MUTUAL" and pred.service is not None and pred.service.kind == "ServiceEntry":
        return []  # MP0109 says it better
    if tls.mode == "ISTIO_MUTUAL" and pred.gateway is not None:
        return []  # to an egress gateway: it ends the mTLS and the app's TLS goes on, or MP0112 says why not
    port = ctx.call.port
    dr = predict.destination_rule_for(ctx.snapshot, ctx.source, ctx.call.host) if ctx.snapshot else None
    fix = None
    if dr is not None:
        obj = fixes.destination_rule_port_tls(ctx.call.host, dr.namespace, port, "DISABLE", base=dr.raw)
        fix = fixes.make_fix(
            f"stop originating TLS on port {port} in {dr.ref} (the client already speaks TLS)", [obj]
        )
    message = (
        f"{tls.decided_by} sets tls.mode {tls.mode} for {ctx.call.host}:{port}, where the client already "
        "speaks TLS: the sidecar wraps TLS in TLS (wrong version number, or a reset)"
    )
    return [
        RULE.diagnose(
            message,
            resources=(tls.decided_by or "",),
            evidence=observed_evidence(ctx),
            fix=fix,
            supersedes=("MP0202",),
        )
    ]


RULE = Rule("MP0108", "DoubleTls", "error", evaluate, sidecar_only=True)
