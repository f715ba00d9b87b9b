"""MP0202 UpstreamError: the upstream's own error, not the mesh's.

Istio behaviour relied on: over TLS passthrough the sidecar only relays bytes, so what the client
sees (an HTTP status, an origin's own Envoy reply, a certificate problem) comes from the origin;
on plaintext HTTP a response relayed from the origin's cluster carries
``x-envoy-upstream-service-time``. Only after capture (MP0107), a gateway (MP0112, MP0118) and an
address mismatch (MP0114) are excluded — those rules supersede this one.
Versions: all of 1.22–1.30. Source: istio/istio ``pilot/pkg/networking/util/proxy_headers.go``
(debug headers), ``httproute.go`` (``block_all``'s empty 502). How a local reply is told from a
relayed one: ``docs/signatures.md``.
"""

from __future__ import annotations

from diag.rules.base import BLOCK_DECISIONS, Diagnosis, Rule, RuleContext, observed_evidence
from probes.model import Origin, Signature

UPSTREAM_SIGNATURES = frozenset(
    {
        Signature.HTTP_STATUS,
        Signature.TLS_CERT_UNTRUSTED,
        Signature.TLS_HOSTNAME_MISMATCH,
        Signature.TLS_ALERT,
        Signature.ENVOY_503_UPSTREAM,
        Signature.ENVOY_504_TIMEOUT,
        Signature.PROTOCOL_ERROR,
    }
)


def evaluate(ctx: RuleContext) -> list[Diagnosis]:
    obs = ctx.observed
    if obs is None or obs.signature not in UPSTREAM_SIGNATURES or ctx.decision in BLOCK_DECISIONS:
        return []
    if not ctx.failed:
        return []  # e.g. a preset's registry answering 401 at its root: reached, as asked
    end_to_end = obs.origin in (Origin.END_TO_END_TLS, Origin.VIA_ROUTE, Origin.DIRECT) or ctx.protocol in (
        "https",
        "tls",
    )
    if not end_to_end:
        return []
    if obs.signature is Signature.ENVOY_503_UPSTREAM and ctx.protocol == "http":
        return []  # the sidecar's own 503: MP0110/MP0203/MP0116 tell which
    status = f" {obs.http.status}" if obs.http is not None and obs.http.status else ""
    message = (
        f"{ctx.call.host} answered with its own error ({obs.signature.value}{status}): not the mesh's doing"
    )
    return [RULE.diagnose(message, evidence=observed_evidence(ctx))]


RULE = Rule("MP0202", "UpstreamError", "error", evaluate, mesh=False)
