"""MP0112 EgressGatewayMisrouted: the egress-gateway route is broken or bypassed.

Istio behaviour relied on (the egress-gateway pattern: ServiceEntry + Gateway + a DestinationRule
subset for the gateway Service + a VirtualService bound to `mesh` and the Gateway), each sub-reason
read from the predicted gateway hop (`diag.predict_gateway`, `Prediction.gateway`):

- no `mesh` route matches the call → the sidecar routes it directly: it works, bypassing the gateway
  (`pilot/pkg/networking/core/route/route.go` `sourceMatchHTTP`);
- a subset without a DestinationRule defining it → no such cluster on the sidecar: `503 NC`, empty,
  local (`pilot/pkg/networking/core/cluster.go` builds subset clusters from DR subsets only);
- the gateway Service lacks the port (istioctl analyze IST0162,
  `pkg/config/analysis/analyzers/gateway/gateway.go`), or no Gateway server is on it;
- sidecar↔gateway TLS mismatch (a Gateway server in `ISTIO_MUTUAL` without `tls: ISTIO_MUTUAL` +
  `sni` in the DR, or the reverse) → `503 UC` from the sidecar, a reset for TLS/TCP
  (`pilot/pkg/networking/core/cluster_tls.go`, `gateway.go` server TLS contexts);
- the host on no server of the Gateway → the gateway's route config has no virtual host for it
  (none at all: `blackhole:<port>`, "Empty route list will cause Envoy to 404 NR"), `404 NR`
  relayed with `x-envoy-upstream-service-time` (`pilot/pkg/networking/core/gateway.go`; IST0132,
  `pkg/config/analysis/analyzers/virtualservice/gateways.go`); no route of the VS for the gateway
  matching → 404 NR; a TLS-passthrough/TCP server without a matching tls/tcp route → reset;
- resolution NONE behind the gateway: gateways cannot use ORIGINAL_DST, the cluster has no
  endpoints → `503 UH` relayed (`pilot/pkg/networking/core/cluster.go`).

Without the gateway's objects in the input the hop is inferred from the cluster name and the
relayed answer. Versions: all of 1.22–1.30. Source: istio/istio `pilot/pkg/networking/core/gateway.go`,
`cluster.go`, `cluster_tls.go`, `route/route.go` (cited per sub-reason above); Istio's egress-gateway
and egress-gateway-tls-origination tasks.
"""

from __future__ import annotations

from typing import Any

from diag import fixes, predict
from diag.predict_gateway_model import GatewayHop, relayed_envoy_reply
from diag.rules.base import Diagnosis, Fix, Rule, RuleContext, observed_evidence
from diag.snapshot import Snapshot
from probes.model import Signature

RELAYED = {
    Signature.ENVOY_404_NR: "the gateway has no virtual host for it (VS host not on the Gateway, or a "
    "TLS/HTTP server mismatch): 404 NR at the gateway",
    Signature.ENVOY_503_NO_CLUSTER: "the route names a cluster that does not exist (a subset without its "
    "DestinationRule, or the gateway namespace not imported): 503 NC",
}
WHAT = {
    "subset-missing": "the sidecar has no cluster for the gateway subset (503 NC)",
    "port-not-on-service": "the gateway Service does not expose the port (IST0162)",
    "no-server": "no Gateway server listens on the port",
    "tls-mismatch": "sidecar↔gateway TLS mismatch",
    "no-vhost": "the host is not on the Gateway (404 NR at the gateway)",
    "no-route": "no route of the gateway's VirtualService matches (404 NR at the gateway)",
    "no-filter-chain": "the gateway has no tls/tcp route for the call (reset)",
    "no-cluster": "the gateway's route names a cluster it does not have (503 NC at the gateway)",
    "no-endpoints": "resolution NONE behind the gateway: no endpoints (503 UH at the gateway)",
}


def _via_gateway(cluster: str | None) -> bool:
    """Live only, no config: the cluster's name looks like an egress gateway's."""
    return bool(cluster) and "egressgateway" in str(cluster).split("|")[-1]


def evaluate(ctx: RuleContext) -> list[Diagnosis]:
    hop = ctx.prediction.gateway if ctx.prediction is not None else None
    if hop is not None:
        got_through = ctx.observed is not None and ctx.signature in (Signature.OK, Signature.HTTP_STATUS)
        got_through = got_through and _seen(ctx) is None  # a relayed Envoy reply is the gateway's
        if hop.reason in WHAT and not got_through:  # an answer from beyond the gateway outranks the config
            return [_from_hop(ctx, hop)]
        relayed = _relayed(ctx, hop.resources) if hop.reason != "denied" else None
        return [relayed] if relayed is not None else []
    if ctx.snapshot is None and _via_gateway(ctx.cluster):
        relayed = _relayed(ctx, ())  # live only: the hop is inferred from the cluster name
        return [relayed] if relayed is not None else []
    if ctx.expect == "via-gateway":
        return [_bypass(ctx)]
    return []


def _diagnose(
    ctx: RuleContext,
    message: str,
    refs: tuple[str, ...],
    *extra: str,
    fix: Fix | None = None,
    evidence: tuple[str, ...] = (),
) -> Diagnosis:
    return RULE.diagnose(
        message,
        resources=refs,
        evidence=[*observed_evidence(ctx), *evidence],
        fix=fix,
        supersedes=("MP0202", *extra),
    )


def _bypass(ctx: RuleContext) -> Diagnosis:
    vs = predict.virtual_services_for(ctx.snapshot, ctx.source, ctx.call.host) if ctx.snapshot else ()
    gateway_vs = [v for v in vs if any(g != "mesh" for g in v.gateways)]
    refs = tuple(v.ref for v in gateway_vs)
    if gateway_vs:
        why = f"the mesh route of {', '.join(refs)} does not match this call (port {ctx.call.port})"
    else:
        why = "no VirtualService bound to mesh routes it to an egress gateway"
    return _diagnose(ctx, f"{ctx.call.host} does not go through an egress gateway: {why}", refs)


def _not_on_gateway(hop: GatewayHop) -> bool:
    """No VS bound to the Gateway has a host on the port (the `blackhole` vhost), or none covers the host."""
    return hop.reason == "no-vhost" or (
        hop.reason == "no-route" and (hop.vhost or "").startswith("blackhole:")
    )


def _from_hop(ctx: RuleContext, hop: GatewayHop) -> Diagnosis:
    seen = f"; expect {hop.signature}" + (f" ({hop.origin})" if hop.origin else "") if hop.signature else ""
    inferred = " (gateway inferred: its Service is not in the input)" if hop.inferred else ""
    what = WHAT["no-vhost"] if _not_on_gateway(hop) else WHAT[hop.reason]
    message = f"via {hop.gateway}{inferred}: {what}: {hop.message}{seen}"
    evidence = tuple(f"gateway: {n}" for n in hop.notes)
    extra = (
        ("MP0119", "MP0101") if hop.reason == "port-not-on-service" else ("MP0119",)
    )  # the sidecar's 503 NC
    fix = _fix(ctx.snapshot, ctx, hop)
    return _diagnose(ctx, message, hop.resources, *extra, fix=fix, evidence=evidence)


def _seen(ctx: RuleContext) -> str | None:
    """The Envoy signature of a gateway reply the sidecar relayed (the probe reads it as HTTP_STATUS)."""
    obs = ctx.observed
    if obs is None or obs.http is None or obs.signature is not Signature.HTTP_STATUS:
        return None
    origin = obs.origin.value if obs.origin is not None else None
    return relayed_envoy_reply(obs.http.status, obs.http.body_excerpt, origin)


def _relayed(ctx: RuleContext, refs: tuple[str, ...]) -> Diagnosis | None:
    """What the gateway answered, relayed by the sidecar, when the hop's config does not explain it."""
    obs = ctx.observed
    if obs is None or (obs.origin is not None and obs.origin.value == "local-sidecar"):
        return None
    where = f"via {ctx.cluster}"
    seen = _seen(ctx)
    signature = Signature(seen) if seen is not None else obs.signature
    if signature in RELAYED:
        return _diagnose(ctx, f"{where}: {RELAYED[signature]}", refs, "MP0119")
    reason = (obs.http.envoy_reason or "") if obs.http is not None else ""
    if signature is Signature.ENVOY_503_UPSTREAM and ("termination" in reason or "tls" in reason.lower()):
        return _diagnose(ctx, f"{where}: sidecar↔gateway mTLS mismatch (503 UC: {reason})", refs)
    return None


def _fix(snapshot: Snapshot | None, ctx: RuleContext, hop: GatewayHop) -> Fix | None:
    """Add the host to the Gateway, the subset to the DR, Istio mTLS to the DR's subset, or
    resolution DNS to the entry; none where the fix is not ours to write (the gateway Service)."""
    if snapshot is None:
        return None
    host = ctx.call.host.lower()
    if _not_on_gateway(hop) and hop.gateway_ref:
        gw = next((g for g in snapshot.gateways if g.ref == hop.gateway_ref), None)
        if gw is not None:
            obj = fixes.patched(gw.raw, lambda o: _add_host(o, hop.port, host))
            return fixes.make_fix(f"add {host} to the port {hop.port} servers of {gw.ref}", [obj])
    dr = next((d for d in snapshot.destination_rules if d.ref == hop.destination_rule), None)
    if hop.reason == "subset-missing" and dr is not None:
        obj = fixes.patched(
            dr.raw, lambda o: o["spec"].setdefault("subsets", []).append({"name": hop.subset})
        )
        return fixes.make_fix(f"define subset {hop.subset} in {dr.ref}", [obj])
    if hop.reason == "tls-mismatch" and dr is not None and hop.server_tls == "ISTIO_MUTUAL":
        obj = fixes.patched(
            dr.raw, lambda o: _port_tls(o, hop.subset, hop.port, {"mode": "ISTIO_MUTUAL", "sni": host})
        )
        return fixes.make_fix(f"send Istio mTLS (SNI {host}) to the gateway: {dr.ref}", [obj])
    if hop.reason == "tls-mismatch" and dr is not None and hop.server_tls in ("", "PASSTHROUGH"):
        obj = fixes.patched(dr.raw, lambda o: _port_tls(o, hop.subset, hop.port, {"mode": "DISABLE"}))
        return fixes.make_fix(f"send the app's own bytes to the gateway's port {hop.port}: {dr.ref}", [obj])
    if hop.reason == "no-endpoints":
        se = next((s for s in snapshot.service_entries if s.ref == hop.destination), None)
        if se is not None:
            obj = fixes.patched(se.raw, lambda o: o["spec"].__setitem__("resolution", "DNS"))
            return fixes.make_fix(f"resolve {host} by DNS at the gateway: {se.ref}", [obj])
    return None


def _add_host(obj: dict[str, Any], port: int, host: str) -> None:
    for server in obj["spec"]["servers"]:
        if (server.get("port") or {}).get("number") == port and host not in server.setdefault("hosts", []):
            server["hosts"].append(host)


def _port_tls(obj: dict[str, Any], subset: str, port: int, tls: dict[str, str]) -> None:
    """`tls` for the port on the subset (or on the whole DR without a subset)."""
    spec = obj["spec"]
    subsets = spec.get("subsets") or []
    target = next((s for s in subsets if s.get("name") == subset), None) if subset else None
    holder = target if target is not None else spec
    policy = holder.setdefault("trafficPolicy", {})
    levels = [p for p in policy.get("portLevelSettings") or [] if (p.get("port") or {}).get("number") != port]
    levels.append({"port": {"number": port}, "tls": tls})
    policy["portLevelSettings"] = levels


RULE = Rule("MP0112", "EgressGatewayMisrouted", "error", evaluate, sidecar_only=True)
