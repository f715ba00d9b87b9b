"""MP0119 VirtualServiceNoRoute: a VirtualService bound to the mesh for this host has no http
route matching the request.

Istio behaviour relied on: a mesh-bound VirtualService replaces the host's default route with the
routes it builds for this proxy and port, in rule order (`BuildHTTPRoutesForVirtualService`):
matches for another port, for gateways other than `mesh`, or for other source labels or
namespaces are dropped first (`TranslateRoute`, `sourceMatchHTTP`), and Istio adds no fallback
route. A request none of the remaining routes matches gets Envoy's `404` with flag NR — local,
empty body, no `x-envoy-upstream-service-time`. (Unknown hosts get 502 `block_all`, never 404,
since 1.1.3.) Diagnosed from the prediction alone (which route Envoy would try, in order), from
the live sidecar's config, or from an observed local 404.
Versions: all of 1.22–1.30. Source: istio/istio `pilot/pkg/networking/core/route/route.go`
(`BuildHTTPRoutesForVirtualService`, `TranslateRoute`, `sourceMatchHTTP`, `TranslateRouteMatch`).
"""

from __future__ import annotations

from diag.predict import sidecar as predict
from diag.rules import fixes
from diag.rules.base import Diagnosis, Fix, Rule, RuleContext, observed_evidence
from probes.model import Signature


def evaluate(ctx: RuleContext) -> list[Diagnosis]:
    obs = ctx.observed
    local_nr = (
        obs is not None
        and obs.signature is Signature.ENVOY_404_NR
        and (obs.http is None or not obs.http.upstream_service_time)
    )
    live_nr = ctx.actual is not None and ctx.actual.outcome in ("no_route", "no_vhost")
    pred = ctx.prediction
    predicted_nr = pred is not None and pred.http_action == "no_route" and ctx.actual is None
    if ctx.protocol != "http" or not (local_nr or live_nr or predicted_nr) or ctx.snapshot is None:
        return []
    services = predict.virtual_services_for(ctx.snapshot, ctx.source, ctx.call.host)
    if not services:
        return []
    owner = pred.matched[0] if pred is not None and pred.http_action == "no_route" and pred.matched else ""
    vs = next((v for v in services if v.ref == owner), services[0])
    request = f"{ctx.call.method} {ctx.call.path}"
    message = f"{vs.ref} routes {ctx.call.host} but none of its http routes matches {request} (404 NR)"
    tried = pred.routes_tried if pred is not None else ()
    evidence = [f"route tried: {t}" for t in tried] or ["no route of the VirtualService applies"]
    return [
        RULE.diagnose(
            message,
            resources=(vs.ref, *(v.ref for v in services if v is not vs)),
            evidence=[*evidence, *observed_evidence(ctx)],
            fix=_default_route(vs.raw, ctx.call.host, ctx.call.port),
            supersedes=("MP0101", "MP0113", "MP0202"),
        )
    ]


def _default_route(raw: object, host: str, port: int) -> Fix | None:
    if not isinstance(raw, dict):
        return None
    obj = fixes.patched(
        raw,
        lambda o: (
            o["spec"]
            .setdefault("http", [])
            .append({"route": [{"destination": {"host": host, "port": {"number": port}}}]})
        ),
    )
    return fixes.make_fix(f"add a last, match-all http route to {host}:{port}", [obj])


RULE = Rule("MP0119", "VirtualServiceNoRoute", "error", evaluate, sidecar_only=True)
