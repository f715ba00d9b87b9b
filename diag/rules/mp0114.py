"""MP0114 AddressMismatch: an entry for this host and port exists, but its listener is bound to an
address the client did not dial.

Istio behaviour relied on: TCP-family ports bind the address in use for the proxy — a single SE
``addresses`` IP, a ClusterIP, or (with DNS capture) the auto-allocated VIP — and a VIP-bound TLS
listener has no SNI match. Traffic to any other IP of the host (CDN rotation, stale ``addresses``,
a client that bypasses the agent's DNS proxy: hard-coded IP, its own resolver, a JVM cache) misses
it and goes to ``virtualOutbound`` (the blackhole under REGISTRY_ONLY).
Versions: all of 1.22–1.30; auto-allocation on by default from 1.25. Source: istio/istio
``pilot/pkg/networking/core/listener.go`` (``GetAddressForProxy`` use), ``tls.go``
(SNI only on wildcard/CIDR binds), ``pilot/pkg/model/service.go`` (auto-allocated addresses).

When no address is known (offline, no probe result) and the port is opened by CIDR ranges (a TCP
entry listing a provider's published ranges, Istio's ``samples/external/github.yaml``), the
verdict depends on the address the name resolves to: a warning naming the ranges, superseding
MP0101/MP0102, which would blame the wrong thing (`docs/codes/MP0114.md`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace

from diag.model.resources import ServiceEntry
from diag.predict import sidecar as predict
from diag.rules import facts, fixes
from diag.rules.base import Diagnosis, Fix, Rule, RuleContext, observed_evidence


def evaluate(ctx: RuleContext) -> list[Diagnosis]:
    if ctx.snapshot is None or not (ctx.failed and ctx.blocked):
        return []
    dialled = facts.dialled_address(ctx)
    if not dialled:
        return _address_dependent(ctx)
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


def _address_dependent(ctx: RuleContext) -> list[Diagnosis]:
    """No address known: the blocked verdict rests on the assumption that the name resolves to none
    of the addresses the port is bound to. When one of them leads somewhere (a TCP entry listing a
    provider's published CIDRs), say that the verdict depends on the address instead of blaming an
    entry by name (MP0102/MP0101). Single IPs bound for other hosts are not counted: a name is not
    expected to resolve to another host's address."""
    assert ctx.snapshot is not None
    call = ctx.call
    open_for = []
    for owner in predict.address_owners(ctx.snapshot, ctx.source, call.port):
        ranges = [a for a in owner.addresses if "/" in a]
        sample = _sample(ranges[0]) if ranges else None  # a range is written to cover a destination
        if sample is None:
            continue
        alt = predict.predict(ctx.snapshot, ctx.source, replace(call, address=sample))
        if alt.verdict in ("allowed", "passthrough"):
            open_for.append((owner, alt))
    if not open_for:
        return []
    shown = "; ".join(
        f"{', '.join(o.addresses[:4])}{', …' if len(o.addresses) > 4 else ''} ({o.ref} → {a.envoy})"
        for o, a in open_for
    )
    message = (
        f"the verdict for {facts.target_text(ctx)} depends on the address {call.host} resolves to: port "
        f"{call.port} is open for {shown}. No address was given, so meshprobe assumed one outside them "
        "(blocked); probe from the pod and pass its result (explain --results) to decide"
    )
    return [
        RULE.diagnose(
            message,
            level="warning",
            resources=tuple(dict.fromkeys(o.ref for o, _ in open_for)),
            evidence=observed_evidence(ctx),
            supersedes=("MP0101", "MP0102", "MP0113"),
        )
    ]


def _sample(address: str) -> str | None:
    """An address inside an IP or CIDR (the first host of a range)."""
    try:
        net = ipaddress.ip_network(address, strict=False)
    except ValueError:
        return None
    if net.num_addresses == 1:
        return str(net.network_address)
    return str(net.network_address + 1)


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
        if facts.known_address(ctx) != dialled:
            return None  # only an address given or observed is ever written (never an assumed one)
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
