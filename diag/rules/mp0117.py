"""MP0117 ServerFirstOnSniffedPort: a server-first protocol on a port where Istio sniffs.

Istio behaviour relied on: when a visible service makes a port HTTP or protocol-less on
``0.0.0.0`` (or an auto VIP), the listener runs ``http_inspector``, which waits for the client's
first bytes; ``listener_filters_timeout`` is MeshConfig ``protocolDetectionTimeout``, default 0 =
wait forever. A server-first protocol (SSH, SMTP, MySQL, FTP) waits for the server's banner
instead: both sides wait, the client times out (READ_TIMEOUT, no banner).
Versions: all of 1.22–1.30 (``protocolDetectionTimeout`` default 0 since 1.11). Source: istio/istio
``pilot/pkg/networking/core/listener.go`` (listener filters and timeout), ``pkg/config/mesh/mesh.go``;
Istio docs "Server first protocols".
"""

from __future__ import annotations

from diag.predict import visibility
from diag.rules.base import Diagnosis, Rule, RuleContext, observed_evidence
from probes.model import Signature

SERVER_FIRST_PORTS = frozenset({21, 22, 25, 110, 143, 587, 3306})


def evaluate(ctx: RuleContext) -> list[Diagnosis]:
    if ctx.protocol != "tcp" or ctx.snapshot is None:
        return []
    obs = ctx.observed
    silent = obs is not None and (
        obs.signature is Signature.READ_TIMEOUT or (obs.tcp is not None and obs.tcp.silent)
    )
    if obs is None and ctx.call.port not in SERVER_FIRST_PORTS:
        return []
    if obs is not None and not silent:
        return []
    sniffers = [
        svc
        for svc in ctx.snapshot.services_on_port(ctx.call.port)
        if (p := svc.port(ctx.call.port)) is not None
        and p.family in ("http", "auto")
        and not svc.addresses
        and visibility.service_visible(ctx.snapshot, svc, ctx.source.namespace, ctx.source.labels).allowed
    ]
    if not sniffers:
        return []
    refs = tuple(sorted({s.ref for s in sniffers}))
    timeout = ctx.snapshot.mesh.protocol_detection_timeout
    message = (
        f"port {ctx.call.port} is sniffed for this proxy because of {', '.join(refs)}: a server-first "
        f"protocol waits for a banner while Envoy waits for the client (protocolDetectionTimeout {timeout})"
    )
    return [
        RULE.diagnose(
            message,
            level="error" if silent else "warning",
            resources=refs,
            evidence=[
                *observed_evidence(ctx),
                "fix: declare the port TCP (with addresses) or set protocolDetectionTimeout",
            ],
            supersedes=("MP0203",),
        )
    ]


RULE = Rule("MP0117", "ServerFirstOnSniffedPort", "warning", evaluate, sidecar_only=True)
