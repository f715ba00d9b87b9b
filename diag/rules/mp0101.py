"""MP0101 NoServiceEntry: under REGISTRY_ONLY, no service visible to the source matches the call.

Istio behaviour relied on: with ``outboundTrafficPolicy.mode: REGISTRY_ONLY`` (mesh, or a Sidecar
overriding it), a call that no listener/filter chain/virtual host built from a *visible* service
matches falls to ``virtualOutbound-catchall-tcp`` → ``BlackHoleCluster`` (TCP/TLS: reset), to a
port listener's ``PassthroughFilterChain`` → ``BlackHoleCluster``, or to the shared HTTP route's
``block_all`` virtual host (direct 502). Matching is by (destination IP, port, SNI/Host) as Envoy
does it, not by "host:port is covered" (the matching rules: ``docs/model.md``, Prediction).
Versions: Istio 1.1.3+ (502 instead of 404 for HTTP), unchanged through 1.22–1.30.
Source: istio/istio ``pilot/pkg/networking/core/listener_builder.go`` (virtual outbound listener
and its catch-all chain), ``pilot/pkg/networking/core/httproute.go`` (``block_all`` vhost). The
call is the pod's: a short name is resolved through the search domains first (`diag.rules.diagnose`),
and an in-mesh or short name never gets a MESH_EXTERNAL entry as its fix (`docs/codes/MP0101.md`).
"""

from __future__ import annotations

from diag.predict.hosts import search_domains
from diag.rules import facts, fixes
from diag.rules.base import Diagnosis, Rule, RuleContext, observed_evidence


def evaluate(ctx: RuleContext) -> list[Diagnosis]:
    if ctx.mode != "REGISTRY_ONLY" or not ctx.blocked:
        return []
    call = ctx.call
    address = facts.dialled_address(ctx)
    evidence = [f"mode REGISTRY_ONLY, set by {ctx.mode_from or 'the mesh default'}", *observed_evidence(ctx)]
    fix = None
    if facts.in_mesh_host(ctx, call.host):
        evidence.append(_in_mesh_advice(ctx))
    else:
        known = facts.known_address(ctx)
        fix = fixes.service_entry(call.host, call.port, ctx.protocol, ctx.source.namespace, address=known)
        if fix is None and ctx.protocol == "tcp":
            evidence.append(
                "no fix written: a TCP entry needs the destination's addresses (published IPs/CIDRs), "
                "which meshprobe does not know; without them it would capture the port for every "
                "workload that sees it (MP0107)"
            )
    message = (
        f"nothing visible to namespace {ctx.source.namespace} matches {facts.target_text(ctx)}"
        f"{' at ' + address if address else ''}: the sidecar sends it to {ctx.decision or 'the blackhole'}"
    )
    return [RULE.diagnose(message, resources=facts.mode_resources(ctx), evidence=evidence, fix=fix)]


def _in_mesh_advice(ctx: RuleContext) -> str:
    host = ctx.call.host
    if "." not in host.rstrip("."):
        domains = ", ".join(f"{host}.{d}" for d in search_domains(ctx.source.namespace, _suffix(ctx)))
        return (
            f"no fix written: {host} is a short name; the pod looks it up as {domains} and no Service "
            "of that name exists there, so the call fails at DNS. A ServiceEntry is not the fix: "
            "call the full name of the Service (name.namespace) or of the external host"
        )
    return (
        f"no fix written: {host} is a name of the cluster's own domain, not an external host; "
        "a MESH_EXTERNAL ServiceEntry is never the fix. Check the Service's name, namespace and ports"
    )


def _suffix(ctx: RuleContext) -> str:
    return ctx.snapshot.mesh.domain_suffix if ctx.snapshot is not None else "cluster.local"


RULE = Rule("MP0101", "NoServiceEntry", "error", evaluate, sidecar_only=True)
