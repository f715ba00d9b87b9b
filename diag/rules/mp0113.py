"""MP0113 HostNameMismatch: an entry exists for a name near the target's, not for the target.

Istio behaviour relied on: service hosts match exactly or by a ``*.`` wildcard that does not cover
the apex (``*.example.com`` ≠ ``example.com``); a sibling subdomain is another host; Istio does not
set Envoy's ``strip_trailing_host_dot``, so ``host.`` misses ``host``; redirects and CDNs move
clients to hosts nobody registered. Letter case in the *target* never matters (Envoy lower-cases
Host and SNI); mixed case in config is a lint finding (MP0404).
Versions: all of 1.22–1.30. Source: istio/istio ``pkg/config/host/name.go`` (``Matches``),
Envoy ``source/common/router/config_impl.cc`` (``findVirtualHost`` lower-cases),
``source/common/network/connection_socket_impl.h`` (the SNI lower-cased).
"""

from __future__ import annotations

from diag.predict import sidecar as predict
from diag.rules import fixes
from diag.rules.base import Diagnosis, Rule, RuleContext, observed_evidence

RELATIONS = {
    "wildcard-not-apex": "its wildcard does not cover the apex",
    "sibling": "it is a sibling name",
    "trailing-dot": "the target ends with a dot, which Envoy does not strip",
    "parent-wildcard": "its wildcard covers only deeper names",
}


def evaluate(ctx: RuleContext) -> list[Diagnosis]:
    if ctx.snapshot is None or not (ctx.failed and ctx.blocked):
        return []
    near = [n for n in predict.near_names(ctx.snapshot, ctx.call.host) if n.relation != "case"]
    if not near:
        return []
    host = ctx.call.host
    names = ", ".join(
        f"{n.service.host} ({n.service.ref}: {RELATIONS.get(n.relation, n.relation)})" for n in near
    )
    trailing = host.endswith(".")
    fix = (
        None
        if trailing
        else fixes.service_entry(
            host, ctx.call.port, ctx.protocol, ctx.source.namespace, address=ctx.call.address
        )
    )
    message = f"no entry for {host}, but for near names: {names}"
    if trailing:
        message += "; call the name without the trailing dot"
    return [
        RULE.diagnose(
            message, resources=tuple(n.service.ref for n in near), evidence=observed_evidence(ctx), fix=fix
        )
    ]


RULE = Rule("MP0113", "HostNameMismatch", "warning", evaluate, sidecar_only=True)
