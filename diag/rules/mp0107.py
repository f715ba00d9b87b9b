"""MP0107 PortCapturedByTcpEntry: for this proxy, an entry without an address in use owns
``0.0.0.0:port`` with a match-all chain, so non-HTTP traffic on the port goes to that entry.

Istio behaviour relied on: a TCP-family (or protocol-less) service port with no address for this
proxy — no ``addresses``, and no auto-allocated VIP because DNS capture is off, resolution is NONE,
the entry is a wildcard or allocation is opted out — binds ``0.0.0.0:port`` with a TCP chain that
matches everything and becomes the port's only non-HTTP chain. DNS/STATIC entries then send every
host's traffic to their own endpoints (the wrong host: certificate or banner mismatch); NONE entries
pass any destination through, even under REGISTRY_ONLY. All-covering CIDR ``addresses`` do the
same. (Kubernetes ExternalName Services did so only up to Istio 1.20; from 1.21 they are aliases
and capture nothing — ``pilot/pkg/serviceregistry/kube/conversion.go`` — so this rule never names
them.) Protocol-less ports still route plain HTTP by Host.
Versions: all of 1.22–1.30; DNS capture + auto-allocation (default from 1.25) removes it for
DNS/STATIC entries on proxies that capture DNS. Source: istio/istio
``pilot/pkg/networking/core/listener.go`` (``buildSidecarOutboundListeners``, conflict handling),
``sidecar_simulation_test.go`` ``TestPassthroughTraffic``/``TestExternalNameServices``,
``pilot/pkg/networking/serviceentry/ip_autoallocation.go``, ``pilot/cmd/pilot-agent/options/options.go``
(DNS capture off by default), ``pkg/config/analysis/analyzers/serviceentry/protocoladdresses.go``
(IST0134, silent once ``status.addresses`` is set).
"""

from __future__ import annotations

from diag.predict import sidecar as predict
from diag.predict.model import PortOwner
from diag.rules import facts
from diag.rules.base import Diagnosis, Rule, RuleContext, observed_evidence

REASONS = {
    "tcp-no-address": "a TCP entry without an address for this proxy",
    "auto-no-address": "a protocol-less entry without an address for this proxy",
    "cidr-all": "an entry whose CIDR covers every address",
}


def evaluate(ctx: RuleContext) -> list[Diagnosis]:
    host = ctx.call.host
    cluster = ctx.cluster
    if cluster is None or facts.cluster_host(cluster) is None or facts.cluster_covers(cluster, host):
        return []
    owner = _owner(ctx)
    if ctx.snapshot is not None and owner is None:
        return []
    if ctx.snapshot is None and not _live_match_all(ctx):
        return []
    if owner is not None and owner.cluster and owner.cluster != cluster:
        return []
    owner_host = facts.cluster_host(cluster)
    resolution = owner.service.resolution if owner else ""
    what = REASONS.get(owner.reason, owner.reason) if owner else "a match-all chain on 0.0.0.0"
    ref = owner.ref if owner else f"cluster {cluster}"
    effect = (
        "any destination on this port is passed through, even under REGISTRY_ONLY"
        if resolution == "NONE"
        else f"the connection goes to {owner_host}'s endpoints, not to {host}"
    )
    message = f"port {ctx.call.port} is captured for this proxy by {ref} ({what}): {effect}"
    evidence = [
        *observed_evidence(ctx),
        "fix: give that entry `addresses` (the destination's published IPs/CIDRs), or enable DNS "
        "capture for this workload (resolution DNS/STATIC only); a protocol-less port still routes HTTP",
    ]
    # NONE passes any destination through (it "works", a warning unless blocked was expected);
    # DNS/STATIC send the call to another host's endpoints: an error even when something answered.
    level = "warning" if resolution == "NONE" and ctx.reached and ctx.expect != "blocked" else "error"
    return [
        RULE.diagnose(
            message,
            level=level,
            resources=(ref,) if owner else (),
            evidence=evidence,
            supersedes=("MP0101", "MP0202"),
        )
    ]


def _live_match_all(ctx: RuleContext) -> bool:
    """Without declared config: the live path is a match-all chain on a wildcard-bound listener."""
    actual = ctx.actual
    return (
        actual is not None
        and actual.filter_chain == "{}"
        and str(actual.listener).startswith(("0.0.0.0_", "[::]_"))
    )


def _owner(ctx: RuleContext) -> PortOwner | None:
    if ctx.snapshot is None:
        return None
    return predict.port_owner(ctx.snapshot, ctx.source, ctx.call.port)


RULE = Rule("MP0107", "PortCapturedByTcpEntry", "error", evaluate, sidecar_only=True)
