"""MP0112 EgressGatewayMisrouted: the egress-gateway route is broken or bypassed.

Istio behaviour relied on (the egress-gateway pattern: ServiceEntry + Gateway + a DestinationRule
subset for the gateway Service + a VirtualService bound to `mesh` and the Gateway), each sub-reason
read from the predicted gateway hop (`diag.predict.gateway`, `Prediction.gateway`):

- no `mesh` route matches the call → the sidecar routes it directly: it works, bypassing the gateway
  (`pilot/pkg/networking/core/route/route.go` `sourceMatchHTTP`). Reported whenever a VirtualService
  for the host binds it to an egress gateway or sends other calls to one (another port, another
  match) but this call goes direct: a warning that leaves an `allowed` target passing, an error with
  `--expect via-gateway`. Its fix, the VirtualService with the call on the mesh rule that sends
  other calls to the gateway (`tls.go` `matchTLS`/`matchTCP` for tls/tcp rules), is built and
  re-predicted in `diag/rules/mp0112_bypass_fix.py`;
- a subset without a DestinationRule defining it → no such cluster on the sidecar: `503 NC`, empty,
  local (`pilot/pkg/networking/core/cluster.go` builds subset clusters from DR subsets only);
- the gateway Service lacks the port (istioctl analyze IST0162,
  `pkg/config/analysis/analyzers/gateway/gateway.go`), or no Gateway server is on it;
- sidecar↔gateway TLS mismatch (`pilot/pkg/networking/core/cluster_tls.go`, `gateway.go` server
  TLS contexts), each way its own reply from the sidecar (no `x-envoy-upstream-service-time`), a
  reset for TLS/TCP calls: plaintext to a Gateway server in `ISTIO_MUTUAL` (the DR subset without
  `tls: ISTIO_MUTUAL` + `sni`) → the gateway closes the connection: `503 UC`, "reset reason:
  connection termination"; `ISTIO_MUTUAL` to a plaintext (or PASSTHROUGH) server → the sidecar's
  handshake fails (`WRONG_VERSION_NUMBER`, the gateway logs `400 DPE` per attempt), retried on
  connect-failure: `503 UF,URX`, "retried and the latest reset reason: remote connection failure";
- the host on no server of the Gateway → the gateway's route config has no virtual host for it
  (none at all: `blackhole:<port>`, "Empty route list will cause Envoy to 404 NR"), `404 NR`
  relayed with `x-envoy-upstream-service-time` (`pilot/pkg/networking/core/gateway.go`; IST0132,
  `pkg/config/analysis/analyzers/virtualservice/gateways.go`); no route of the VS for the gateway
  matching → 404 NR; a TLS-passthrough/TCP server without a matching tls/tcp route → reset;
- resolution NONE behind the gateway: gateways cannot use ORIGINAL_DST, the cluster has no
  endpoints → `503 UH` relayed (`pilot/pkg/networking/core/cluster.go`);
- a plaintext server on the port with `tls.httpsRedirect` holding the host → its virtual hosts get
  `require_tls: ALL` (`pilot/pkg/networking/core/gateway.go` `buildGatewayHTTPRouteConfig`): the
  gateway answers the plaintext request with a `301` to https before any route, relayed with
  `x-envoy-upstream-service-time` (the probe's `HTTP_STATUS` 301, or a redirect chain starting with
  that 301, whatever its https hop got). An answer without that 301 (a 200) is not reported.

Without the gateway's objects in the input the hop is inferred from the cluster name and the
relayed answer. Versions: all of 1.22–1.30. Source: istio/istio `pilot/pkg/networking/core/gateway.go`,
`cluster.go`, `cluster_tls.go`, `route/route.go` (cited per sub-reason above); Istio's egress-gateway
and egress-gateway-tls-origination tasks.
"""

from __future__ import annotations

from typing import Any

from diag.model.resources import VirtualService
from diag.predict.gateway_model import GatewayHop, relayed_envoy_reply
from diag.rules.base import Diagnosis, Fix, Rule, RuleContext, observed_evidence
from diag.rules.mp0112_bypass import egress_bound
from diag.rules.mp0112_bypass_fix import bypass_fix
from diag.rules.mp0112_fix import gateway_fix, not_on_gateway, redirecting
from probes.model import Signature

RELAYED = {
    Signature.ENVOY_404_NR: "the gateway has no virtual host for it (VS host not on the Gateway, or a "
    "TLS/HTTP server mismatch): 404 NR at the gateway",
    Signature.ENVOY_503_NO_CLUSTER: "the route names a cluster that does not exist (a subset without its "
    "DestinationRule, or the gateway namespace not imported): 503 NC",
}
NO_VS = "no VirtualService for the host routes other calls to a gateway to copy"
MTLS_SERVER = ("ISTIO_MUTUAL", "MUTUAL", "SIMPLE")
MISMATCH_SEEN = {
    True: "plaintext to a server expecting Istio mTLS: the gateway closes it "
    "(503 UC, connection termination)",
    False: "Istio mTLS to a plaintext server: the handshake fails (WRONG_VERSION_NUMBER; 400 DPE at the "
    "gateway) and is retried (503 UF,URX, remote connection failure)",
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
    "tls-redirect": "the Gateway's server on the port redirects plaintext HTTP to https",
}
REDIRECTS = "redirects plaintext HTTP to https (tls.httpsRedirect)"
REDIRECT_SEEN = "; expect a 301 to https from the gateway (relayed: with x-envoy-upstream-service-time)"


def _via_gateway(cluster: str | None) -> bool:
    """Live only, no config: the cluster's name looks like an egress gateway's."""
    return bool(cluster) and "egressgateway" in str(cluster).split("|")[-1]


def evaluate(ctx: RuleContext) -> list[Diagnosis]:
    hop = ctx.prediction.gateway if ctx.prediction is not None else None
    if hop is not None:
        got_through = ctx.observed is not None and ctx.signature in (Signature.OK, Signature.HTTP_STATUS)
        got_through = got_through and _seen(ctx) is None  # a relayed Envoy reply is the gateway's
        got_through = got_through and not (hop.reason == "tls-redirect" and _redirected(ctx))
        if hop.reason in WHAT and not got_through:  # an answer from beyond the gateway outranks the config
            return [_from_hop(ctx, hop)]
        relayed = _relayed(ctx, hop.resources) if hop.reason != "denied" else None
        return [relayed] if relayed is not None else []
    if ctx.snapshot is None and _via_gateway(ctx.cluster):
        relayed = _relayed(ctx, ())  # live only: the hop is inferred from the cluster name
        return [relayed] if relayed is not None else []
    if ctx.expect == "via-gateway":
        return [_bypass(ctx, egress_bound(ctx))]
    bound = egress_bound(ctx)
    if bound and (ctx.actual is None or not _via_gateway(ctx.actual.cluster)):
        return [_bypass(ctx, bound, level="warning")]  # it may work: a finding, not a failure
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


def _bypass(ctx: RuleContext, bound: list[VirtualService], level: str | None = None) -> Diagnosis:
    refs = tuple(v.ref for v in bound)
    if any(v.binds_mesh for v in bound):
        mesh = ", ".join(v.ref for v in bound if v.binds_mesh)
        why = f"the mesh route of {mesh} does not match this call (port {ctx.call.port}): it goes direct"
    elif bound:
        why = f"{', '.join(refs)} is bound to the egress gateway only (not to mesh): the sidecar goes direct"
    else:
        why = "no VirtualService bound to mesh routes it to an egress gateway"
    found = bypass_fix(ctx.snapshot, ctx.source, ctx.call, bound) if ctx.snapshot and bound else None
    if found is None or found.fix is None:
        why += f"; no fix offered: {found.why if found else NO_VS}"
    message = f"{ctx.call.host} does not go through an egress gateway: {why}"
    return RULE.diagnose(
        message, level=level, resources=refs, evidence=observed_evidence(ctx),
        fix=found.fix if found is not None else None,
        supersedes=("MP0202",) if level is None else (),
    )  # fmt: skip


def _from_hop(ctx: RuleContext, hop: GatewayHop) -> Diagnosis:
    seen = f"; expect {hop.signature}" + (f" ({hop.origin})" if hop.origin else "") if hop.signature else ""
    inferred = " (gateway inferred: its Service is not in the input)" if hop.inferred else ""
    what = WHAT["no-vhost"] if not_on_gateway(hop) else WHAT[hop.reason]
    if hop.reason == "tls-mismatch" and ctx.protocol == "http":
        seen = f"; expect {MISMATCH_SEEN[hop.server_tls in MTLS_SERVER]} from the sidecar"
    refs = hop.resources
    if hop.reason == "tls-redirect":
        gws = [g.ref for g in redirecting(ctx.snapshot, hop, ctx.call.host.lower())] if ctx.snapshot else []
        what = f"the server of {', '.join(gws) or hop.gateway_ref} on port {hop.port} {REDIRECTS}"
        seen = REDIRECT_SEEN
        refs = tuple(dict.fromkeys((*refs, *gws)))
    message = f"via {hop.gateway}{inferred}: {what}: {hop.message}{seen}"
    evidence = tuple(f"gateway: {n}" for n in hop.notes)
    extra: tuple[str, ...] = ("MP0119",)  # the sidecar's 503 NC
    if hop.reason == "port-not-on-service":
        extra += ("MP0101",)
    if hop.reason == "tls-mismatch":
        extra += ("MP0108",)  # the TLS the sidecar adds is toward the gateway, not the origin
    if ctx.observed is None or ctx.observed.signature.value == hop.signature or _seen(ctx) == hop.signature:
        extra += ("MP0203",)  # what failed is the gateway hop, not the upstream beyond it
    fix = gateway_fix(ctx.snapshot, ctx, hop)
    return _diagnose(ctx, message, refs, *extra, fix=fix, evidence=evidence)


def _seen(ctx: RuleContext) -> str | None:
    """The Envoy signature of a gateway reply the sidecar relayed (the probe reads it as HTTP_STATUS)."""
    obs = ctx.observed
    if obs is None or obs.http is None or obs.signature is not Signature.HTTP_STATUS:
        return None
    origin = obs.origin.value if obs.origin is not None else None
    return relayed_envoy_reply(obs.http.status, obs.http.body_excerpt, origin)


def _redirected(ctx: RuleContext) -> bool:
    """The probe saw the gateway's 301: its own result (the redirect not followed), or the first hop
    of the redirect chain it followed (whatever the https hop then got: it did not go this way)."""
    obs = ctx.observed
    if obs is None:
        return False
    if obs.signature is Signature.HTTP_STATUS and obs.http is not None and obs.http.status == 301:
        return True
    first = obs.redirects[0] if obs.redirects else None
    return first is not None and first.status == 301 and (first.location or "").startswith("https://")


def _relayed(ctx: RuleContext, refs: tuple[str, ...]) -> Diagnosis | None:
    """What the gateway answered, relayed by the sidecar, when the hop's config does not explain it."""
    obs = ctx.observed
    if obs is None:
        return None
    where = f"via {ctx.cluster}"
    if obs.origin is not None and obs.origin.value == "local-sidecar":  # the sidecar's reply, not relayed
        mismatch = _tls_mismatch(obs)
        if mismatch is None:
            return None
        return _diagnose(ctx, f"{where}: sidecar↔gateway TLS mismatch: {mismatch}", refs, "MP0203")
    seen = _seen(ctx)
    signature = Signature(seen) if seen is not None else obs.signature
    if signature in RELAYED:
        return _diagnose(ctx, f"{where}: {RELAYED[signature]}", refs, "MP0119")
    mismatch = _tls_mismatch(obs)
    if mismatch is not None:
        return _diagnose(ctx, f"{where}: sidecar↔gateway TLS mismatch: {mismatch}", refs, "MP0203")
    return None


def _tls_mismatch(obs: Any) -> str | None:
    """The sidecar's own 503 on its way to the gateway, read as a TLS mismatch when its reason says
    so: `UC` "connection termination" (plaintext to an ISTIO_MUTUAL server), or a TLS transport
    failure (ISTIO_MUTUAL to a plaintext server). A bare "remote connection failure" (`UF,URX`) is
    that too when the config predicts it, but alone it may be a gateway that refuses: MP0203's."""
    if obs.signature is not Signature.ENVOY_503_UPSTREAM or obs.http is None:
        return None
    reason = obs.http.envoy_reason or ""
    if "termination" in reason:
        return f"{MISMATCH_SEEN[True]} ({reason})"
    if "tls" in reason.lower():
        return f"{MISMATCH_SEEN[False]} ({reason})"
    return None


RULE = Rule("MP0112", "EgressGatewayMisrouted", "error", evaluate, sidecar_only=True)
