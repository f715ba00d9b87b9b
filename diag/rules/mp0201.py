"""MP0201 DnsFailure: the name does not resolve in the pod, and no mesh setting would make it.

Istio behaviour relied on: without DNS capture the pod resolves through its own resolver; the mesh
plays no part. With DNS capture (``ISTIO_META_DNS_CAPTURE``) the agent answers for hosts in the
proxy's scope (SE ``addresses`` or auto-allocated VIPs, on by default from 1.25), so an entry in
scope *would* make it resolve: then the failure is the mesh's (a hidden or missing entry), not DNS.
Before readiness the agent answers SERVFAIL. An empty AAAA beside a good A is normal.
Versions: all of 1.22–1.30. Source: istio/istio ``pkg/dns/server/name_table.go``,
``pkg/dns/client/dns.go``, ``pkg/istio-agent/agent.go`` (readiness waits for the name table),
``tools/istio-iptables/pkg/capture/run.go`` (``SetupDNSRedir``).
"""

from __future__ import annotations

from diag.predict import sidecar as predict
from diag.rules import facts
from diag.rules.base import DNS_SIGNATURES, Diagnosis, Rule, RuleContext, observed_evidence


def evaluate(ctx: RuleContext) -> list[Diagnosis]:
    if ctx.signature not in DNS_SIGNATURES:
        return []
    answer = predict.dns_answer(ctx.snapshot, ctx.source, ctx.call.host) if ctx.snapshot else None
    if answer:
        return []  # the agent would answer: a scope problem (MP0104/MP0105) or a stale proxy, not DNS
    evidence = observed_evidence(ctx)
    with_address = [c.service for c in facts.visible(ctx) if c.service.addresses or c.service.auto_addresses]
    if with_address:
        evidence.append(
            f"{with_address[0].ref} has addresses: enabling DNS capture for this workload would make "
            f"{ctx.call.host} resolve to them"
        )
    message = f"{ctx.call.host} does not resolve in the pod ({ctx.signature.value if ctx.signature else ''})"
    return [RULE.diagnose(message, evidence=evidence)]


RULE = Rule("MP0201", "DnsFailure", "error", evaluate, mesh=False)
