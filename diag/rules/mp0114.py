"""MP0114 AddressMismatch: an entry for this host and port exists, but its listener is bound to an
address the client did not dial.

Istio behaviour relied on: TCP-family ports bind the address in use for the proxy — a single SE
``addresses`` IP, a ClusterIP, or (with DNS capture) the auto-allocated VIP — and a VIP-bound TLS
listener has no SNI match. Traffic to any other IP of the host (CDN rotation, stale ``addresses``,
a client that bypasses the agent's DNS proxy: hard-coded IP, its own resolver, a JVM cache) misses
it and goes to ``virtualOutbound`` (the blackhole under REGISTRY_ONLY).
Versions: all of 1.22–1.30; auto-allocation on by default from 1.25. Source: istio/istio
``pilot/pkg/networking/core/listener.go`` (``GetAddressForProxy`` use), ``tls.go``
(SNI only on wildcard/CIDR binds), ``pilot/pkg/model/service.go`` (auto-allocated addresses);
``reference/istio-review.md`` §3.2.
"""

from __future__ import annotations

import ipaddress

from diag import fixes, predict
from diag.resources import ServiceEntry
from diag.rules import facts
from diag.rules.base import Diagnosis, Fix, Rule, RuleContext, observed_evidence


def evaluate(ctx: RuleContext) -> list[Diagnosis]:
    if ctx.snapshot is None or not (ctx.failed and ctx.blocked):
        return []
    dialled = facts.dialled_address(ctx)
    if not dialled:
        return []
    bound = predict.bound_addresses(ctx.snapshot, ctx.source, ctx.call.host, ctx.call.port)
    if not bound or "0.0.0.0" in bound or "::" in bound or _covered(dialled, bound):
        return []
    svc = next((c.service for c in facts.visible(ctx) if c.service.port(ctx.call.port)), None)
    ref = svc.ref if svc else ctx.call.host
    message = (
        f"the listener for {ctx.call.host}:{ctx.call.port} is bound to {', '.join(bound)}, "
        f"but the client dialled {dialled}"
    )
    fix = _fix(ctx, svc.resource if svc else None, dialled)
    evidence = observed_evidence(ctx)
    if svc is not None and not svc.addresses:
        evidence.append("the bound address is auto-allocated: the client bypassed the agent's DNS proxy")
    return [
        RULE.diagnose(
            message,
            resources=(ref,) if svc else (),
            evidence=evidence,
            fix=fix,
            supersedes=("MP0101", "MP0113", "MP0202"),
        )
    ]


def _covered(address: str, bound: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for item in bound:
        try:
            if ip in ipaddress.ip_network(item, strict=False):
                return True
        except ValueError:
            continue
    return False


def _fix(ctx: RuleContext, entry: object, dialled: str) -> Fix | None:
    if not isinstance(entry, ServiceEntry) or not entry.addresses:
        return None
    if ctx.protocol == "tcp":
        ip = ipaddress.ip_address(dialled)
        obj = fixes.patched(
            entry.raw, lambda o: o["spec"].setdefault("addresses", []).append(f"{ip}/{ip.max_prefixlen}")
        )
        return fixes.make_fix(f"add {dialled} to the addresses of {entry.ref}", [obj])
    if all(p.protocol in ("HTTP", "HTTPS", "TLS", "HTTP2", "GRPC") for p in entry.ports):
        obj = fixes.patched(entry.raw, lambda o: o["spec"].pop("addresses", None))
        return fixes.make_fix(
            f"drop the fixed addresses of {entry.ref} (TLS/HTTP match by SNI/Host on 0.0.0.0)", [obj]
        )
    return None


RULE = Rule("MP0114", "AddressMismatch", "error", evaluate, sidecar_only=True)
