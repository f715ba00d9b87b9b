"""MP0111 WildcardWithDnsResolution: a wildcard entry with DNS resolution.

Istio behaviour relied on: ``ValidateServiceEntry`` rejects wildcard hosts with resolution DNS or
DNS_ROUND_ROBIN when no ``endpoints`` are given, so from files such an entry is invalid (rejected
at admission, left out of predictions) and cannot exist live. With endpoints it is valid, and
*every* host the wildcard covers is sent to those endpoints (MP0107-like: wrong certificate or
banner).
Versions: all of 1.22–1.30. Source: istio/istio ``pkg/config/validation/validation.go``
(``ValidateServiceEntry``); what ``explain --config`` does with invalid objects: ``docs/model.md``
(Validation).
"""

from __future__ import annotations

from diag.model.resources import ServiceEntry
from diag.model.snapshot import host_matches
from diag.rules import fixes
from diag.rules.base import Diagnosis, Rule, RuleContext, observed_evidence

DNS = ("DNS", "DNS_ROUND_ROBIN")


def evaluate(ctx: RuleContext) -> list[Diagnosis]:
    out: list[Diagnosis] = []
    host = ctx.call.host
    for obj in ctx.invalid_objects:
        if not isinstance(obj, ServiceEntry) or obj.resolution not in DNS or obj.endpoints:
            continue
        wild = [h for h in obj.hosts if h.startswith("*") and host_matches(h, host)]
        if not wild:
            continue
        tls_only = all(p.protocol in ("TLS", "HTTPS", "HTTP") for p in obj.ports)
        fix = None
        if tls_only:
            fix = fixes.make_fix(
                f"resolution NONE for the wildcard entry {obj.ref} (matched by SNI/Host)",
                [fixes.patched(obj.raw, lambda o: o["spec"].update(resolution="NONE"))],
            )
        message = (
            f"{obj.ref} covers {host} with {wild[0]} and resolution {obj.resolution} without endpoints: "
            "Istio rejects it at admission, so it is left out of the prediction"
        )
        out.append(RULE.diagnose(message, resources=(obj.ref,), evidence=observed_evidence(ctx), fix=fix))
    pred = ctx.prediction
    svc = pred.service if pred else None
    if svc is not None and svc.is_wildcard and svc.resolution in DNS and svc.endpoints:
        targets = ", ".join(e.address for e in svc.endpoints if e.address) or "its endpoints"
        message = (
            f"{svc.ref} is a wildcard with DNS resolution: every host under {svc.host} goes to {targets}"
        )
        out.append(
            RULE.diagnose(message, level="warning", resources=(svc.ref,), evidence=observed_evidence(ctx))
        )
    return out


RULE = Rule("MP0111", "WildcardWithDnsResolution", "error", evaluate, sidecar_only=True)
