"""Envoy's own HTTP responses ("local replies"), told apart from an upstream's answer (the
Envoy signatures in docs/signatures.md).

Rules (istio/istio ``pilot/pkg/networking/util/proxy_headers.go``, ``httproute.go``; what a real
Envoy sidecar answers in the lab: ``tests/probes/test_probe_lab.py``):

* An Envoy-generated signature is possible only on **plaintext HTTP through the local sidecar's
  HTTP connection manager** (or with TLS origination there). Over end-to-end TLS a
  ``503 no healthy upstream`` comes from an Envoy at the origin: `HTTP_STATUS`.
* ``server: envoy`` decides nothing: Istio overwrites ``server`` and ProxyConfig can change it
  (pilot/pkg/networking/util/proxy_headers.go).
* A local reply has no ``x-envoy-upstream-service-time``; a reply relayed from a routed cluster
  (the origin, or an egress gateway's own local reply) has it: `HTTP_STATUS`, origin via-route.

Bodies Envoy writes (source/common/http/... in envoyproxy/envoy; the pilot routes that produce
them: ``block_all`` direct response 502 with no body, httproute.go; NR 404; RBAC 403):

    502 ""                          block_all (REGISTRY_ONLY catch-all vhost)  ENVOY_BLACKHOLE_502
    404 ""                          no route (NR)                              ENVOY_404_NR
    403 "RBAC: access denied"       AuthorizationPolicy                        ENVOY_403_RBAC
    503 "no healthy upstream"       UH                                         ENVOY_503_UPSTREAM
    503 "upstream connect error or disconnect/reset before headers. ... reset reason: R"
                                    UF/URX/UC/UO/UPE (+ transport failure)     ENVOY_503_UPSTREAM
    503 ""                          no cluster (NC)                            ENVOY_503_NO_CLUSTER
    504 "upstream request timeout"   UT                                         ENVOY_504_TIMEOUT
    426 "" / "Upgrade Required"     HTTP/1.0 refused (PILOT_HTTP10 off)        ENVOY_426_HTTP10
    429 "local_rate_limited", "fault filter abort"                             ENVOY_LOCAL_OTHER
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

from probes.model import Origin, Signature

UPSTREAM_TIME = "x-envoy-upstream-service-time"
_UPSTREAM_RESET = re.compile(
    r"^upstream connect error or disconnect/reset before headers\.\s*"
    r"(?:retried and the latest )?reset reason:\s*(?P<reason>[^,]+?)\s*"
    r"(?:,\s*transport failure reason:\s*(?P<transport>.+?))?\s*$",
    re.DOTALL,
)
_OTHER_LOCAL_BODIES = ("local_rate_limited", "fault filter abort")


@dataclasses.dataclass(frozen=True)
class ReplyVerdict:
    signature: Signature
    origin: Origin | None
    envoy_reason: str | None = None
    note: str | None = None


def upstream_reset_reason(body: str) -> str | None:
    """The reason of a 503 'upstream connect error ...' body (with the TLS transport failure), else None."""
    match = _UPSTREAM_RESET.match(body.strip())
    if match is None:
        return None
    reason = match.group("reason").strip()
    transport = match.group("transport")
    if transport:
        return f"{reason} (TLS transport failure: {transport.strip()})"
    return reason


def _local_reply(status: int, body: str) -> tuple[Signature, str | None] | None:
    """(signature, envoy_reason) when (status, body) has the shape of one of Envoy's local replies."""
    text = body.strip()
    if status == 502 and text == "":
        return Signature.ENVOY_BLACKHOLE_502, "block_all"
    if status == 404 and text == "":
        return Signature.ENVOY_404_NR, "no route"
    if status == 403 and text.startswith("RBAC: access denied"):
        return Signature.ENVOY_403_RBAC, "RBAC: access denied"
    if status == 503:
        if text == "no healthy upstream":
            return Signature.ENVOY_503_UPSTREAM, text
        if text == "":
            return Signature.ENVOY_503_NO_CLUSTER, "no cluster"
        reason = upstream_reset_reason(text)
        if reason is not None:
            return Signature.ENVOY_503_UPSTREAM, reason
    if status == 504 and text == "upstream request timeout":
        return Signature.ENVOY_504_TIMEOUT, text
    if status == 426 and text in ("", "Upgrade Required"):
        return Signature.ENVOY_426_HTTP10, "HTTP/1.0 not accepted"
    if any(text.startswith(other) for other in _OTHER_LOCAL_BODIES):
        return Signature.ENVOY_LOCAL_OTHER, text[:80]
    return None


def status_signature(status: int) -> Signature:
    """OK for 1xx-3xx, else HTTP_STATUS."""
    return Signature.OK if status < 400 else Signature.HTTP_STATUS


def classify_reply(
    status: int, headers: Mapping[str, str], body: str, *, tls_end_to_end: bool, captured: bool | None
) -> ReplyVerdict:
    """Decide who answered and the signature. ``captured``: None when sidecar presence is unknown."""
    if tls_end_to_end:
        return ReplyVerdict(status_signature(status), Origin.END_TO_END_TLS)
    if captured is False:
        return ReplyVerdict(status_signature(status), Origin.DIRECT)
    if UPSTREAM_TIME in headers:
        return ReplyVerdict(status_signature(status), Origin.VIA_ROUTE)
    local = _local_reply(status, body)
    if local is not None:
        note = (
            None
            if captured
            else "sidecar presence unknown: an Envoy-shaped reply is taken as the local sidecar's"
        )
        return ReplyVerdict(local[0], Origin.LOCAL_SIDECAR, local[1], note)
    if captured:
        note = "no x-envoy-upstream-service-time (debug headers suppressed?): taken as routed upstream"
        return ReplyVerdict(status_signature(status), Origin.VIA_ROUTE, note=note)
    return ReplyVerdict(status_signature(status), None)
