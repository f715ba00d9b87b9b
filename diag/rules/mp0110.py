"""MP0110 EntryUnresolvableBySidecar: a DNS-resolved cluster for the entry has no hosts.

Istio behaviour relied on: ``resolution: DNS`` becomes a STRICT_DNS cluster (DNS_ROUND_ROBIN:
LOGICAL_DNS) that Envoy resolves itself; a name it cannot resolve (typo, a private zone the proxy
cannot see) leaves the cluster empty: ``503 no healthy upstream`` (UH) on HTTP, a reset/close on
TLS/TCP that only ``/clusters`` tells from a blackhole. That is mesh configuration, not upstream.
Versions: all of 1.22–1.30. Source: istio/istio ``pilot/pkg/networking/core/cluster.go``
(resolution → cluster type); how the probe reads the 503 and the
reset: ``docs/signatures.md``.
"""

from __future__ import annotations

from diag.live import path as livepath
from diag.rules.base import Diagnosis, Rule, RuleContext, observed_evidence
from probes.model import Signature


def evaluate(ctx: RuleContext) -> list[Diagnosis]:
    cluster = ctx.cluster
    if not cluster or not cluster.startswith("outbound|"):
        return []
    evidence = observed_evidence(ctx)
    empty = False
    sidecar = ctx.sidecar
    if sidecar is not None and sidecar.clusters:
        empty = cluster in livepath.empty_clusters(sidecar.config or {}, sidecar.clusters)
        if empty:
            evidence.append(f"/clusters lists {cluster} with no hosts")
    obs = ctx.observed
    uh = (
        obs is not None
        and obs.signature is Signature.ENVOY_503_UPSTREAM
        and obs.http is not None
        and "no healthy upstream" in (obs.http.envoy_reason or obs.http.body_excerpt or "")
    )
    svc = ctx.prediction.service if ctx.prediction else None
    dns_entry = svc is not None and svc.resolution in ("DNS", "DNS_ROUND_ROBIN")
    if not empty and not (uh and dns_entry and "egressgateway" not in cluster):
        return []
    ref = svc.ref if svc is not None else f"cluster {cluster}"
    message = (
        f"the sidecar cannot resolve the endpoints of {cluster}: the cluster has no hosts "
        "(check the host name and that the proxy's DNS can resolve it)"
    )
    return [
        RULE.diagnose(
            message, resources=(ref,) if svc else (), evidence=evidence, supersedes=("MP0202", "MP0203")
        )
    ]


RULE = Rule("MP0110", "EntryUnresolvableBySidecar", "error", evaluate, sidecar_only=True)
