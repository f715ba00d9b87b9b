"""MP0106 RedirectTargetBlocked: the target is allowed but redirects to a host that is blocked.

Istio behaviour relied on: every hop of a redirect chain is a new connection the sidecar matches on
its own (Host/SNI of the *new* host); an entry for the first host says nothing about the second
(e.g. a registry redirecting to a CDN or blob host). The blocked hop shows the blackhole's
signature (502 ``block_all`` or a reset).
Versions: all of 1.22–1.30. Source: istio/istio ``samples/external/README.md`` ("problems with
server names"), ``samples/external/pypi.yaml`` (a redirect host and a file host),
istio/istio#52403 (google.com → www.google.com).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from diag.rules import fixes
from diag.rules.base import BLOCK_SIGNATURES, Diagnosis, Fix, Rule, RuleContext

SCHEME_PORTS = {"http": 80, "https": 443}


def evaluate(ctx: RuleContext) -> list[Diagnosis]:
    obs = ctx.observed
    if obs is None or not obs.redirects:
        return []
    out: list[Diagnosis] = []
    hops = [(hop.url, hop.signature) for hop in obs.redirects[1:]]
    last = obs.redirects[-1]
    if last.location and last.location not in {url for url, _ in hops}:
        # The probe records the hops it completed; the hop that failed is the result's own signature.
        hops.append((last.location, obs.signature))
    for url, signature in hops:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if signature not in BLOCK_SIGNATURES or not host or host == ctx.call.host.lower():
            continue
        scheme = parts.scheme or "https"
        port = parts.port or SCHEME_PORTS.get(scheme, 443)
        fix: Fix | None = fixes.service_entry(host, port, scheme, ctx.source.namespace)
        message = f"{ctx.call.host} redirects to {host}:{port}, which is blocked ({signature.value})"
        evidence = [f"{h.status} {h.url} → {h.location or '-'} ({h.signature.value})" for h in obs.redirects]
        out.append(RULE.diagnose(message, evidence=evidence, fix=fix))
    return out


RULE = Rule("MP0106", "RedirectTargetBlocked", "error", evaluate, sidecar_only=True)
