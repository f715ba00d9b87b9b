"""MP0103 ProtocolMismatch: a visible entry declares a protocol the client does not speak.

Istio behaviour relied on: an HTTP-family port binds ``0.0.0.0:port`` with one chain matching
``transport_protocol: raw_buffer`` and ALPN ``http/1.1``/``h2c``; TLS (and raw TCP that is not
HTTP, e.g. ``tcp://`` to a Service's ``http`` port) never matches it and takes
the listener's ``PassthroughFilterChain``: BlackHoleCluster under REGISTRY_ONLY (a reset that looks
exactly like MP0101), PassthroughCluster under ALLOW_ANY (it works but bypasses the entry, its
DestinationRule and telemetry). The reverse (TLS/HTTPS declared, plaintext spoken) has no SNI and
falls through too, unless TLS origination was intended (MP0116). Config-driven; outranks MP0101.
Versions: Istio 1.6+ (ALPN match and fall-through chain; before, the HTTP listener swallowed TLS,
istio/istio#16458). Source: ``pilot/pkg/networking/core/listener.go`` (HTTP chain match,
``PassthroughFilterChain``).
"""

from __future__ import annotations

from diag.model.resources import HTTP_FAMILY, TLS_FAMILY
from diag.rules import facts, fixes
from diag.rules.base import Diagnosis, Rule, RuleContext, observed_evidence


def evaluate(ctx: RuleContext) -> list[Diagnosis]:
    port = ctx.call.port
    out: list[Diagnosis] = []
    for cand in facts.visible(ctx):
        svc = cand.service
        declared = svc.port(port)
        if declared is None:
            continue
        if ctx.protocol in ("https", "tls", "tcp") and declared.protocol in HTTP_FAMILY:
            out.extend(_tls_on_http(ctx, svc.ref, svc.kind, svc.resource.raw, declared.protocol))
        elif ctx.protocol == "http" and declared.protocol in TLS_FAMILY and ctx.failed:
            message = (
                f"{svc.ref} declares {declared.protocol} on port {port} but the client speaks plain HTTP: "
                "no SNI, so no TLS chain matches; use https:// or configure TLS origination (MP0116)"
            )
            out.append(
                RULE.diagnose(
                    message,
                    resources=(svc.ref,),
                    evidence=observed_evidence(ctx),
                    supersedes=("MP0101", "MP0113"),
                )
            )
    return out


def _tls_on_http(ctx: RuleContext, ref: str, kind: str, raw: object, declared: str) -> list[Diagnosis]:
    port = ctx.call.port
    works = ctx.mode != "REGISTRY_ONLY"  # ALLOW_ANY: the passthrough chain takes it (bypassing the entry)
    if not works and not ctx.failed:
        return []
    spoken = "raw TCP (not HTTP)" if ctx.protocol == "tcp" else "TLS"
    evidence = observed_evidence(ctx)
    fix = None
    if ctx.protocol == "tcp":
        # Redeclaring the port would change how every HTTP client of it is routed: advice, no fix.
        evidence.append(
            f"no fix written: speak HTTP to port {port}, or, if the service really speaks TCP there, "
            "declare the port TCP (for a Service: a `tcp-` port name or appProtocol tcp) — that "
            "changes the port for every client"
        )
    elif kind == "ServiceEntry" and isinstance(raw, dict):
        wanted = "TLS" if ctx.protocol == "tls" else "HTTPS"
        fix = fixes.make_fix(
            f"declare port {port} as {wanted} on {ref}", [fixes.set_port_protocol(raw, port, wanted)]
        )
    if works:
        message = (
            f"{ref} declares {declared} on port {port} but the client speaks {spoken}: it works only "
            "through the passthrough catch-all, bypassing the entry (its DestinationRule and telemetry)"
        )
        return [RULE.diagnose(message, level="warning", resources=(ref,), evidence=evidence, fix=fix)]
    what = "the TLS handshake falls" if ctx.protocol != "tcp" else "the connection falls"
    message = (
        f"{ref} declares {declared} on port {port} but the client speaks {spoken}: the HTTP chain only "
        f"takes plaintext HTTP, so {what} to the blackhole (a reset, like MP0101)"
    )
    return [
        RULE.diagnose(
            message,
            resources=(ref,),
            evidence=evidence,
            fix=fix,
            supersedes=("MP0101", "MP0113"),
        )
    ]


RULE = Rule("MP0103", "ProtocolMismatch", "error", evaluate, sidecar_only=True)
