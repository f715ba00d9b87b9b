"""The HTTP(S) prober: GET the target, follow redirects hop by hop, classify the answer.

Each hop resolves its host with `probes.dns`, dials that address itself and, for HTTPS, does the
TLS handshake with the TLS prober's code (SNI = the host, verification, certificate evidence),
so no second name resolution happens anywhere; httpcore's HTTP/1.1 layer (httpx's own) then
speaks HTTP over that socket (`probes.http_exchange`). With a proxy configured the request goes
through httpx's transport instead (``trust_env`` off: proxies only when the options name one).
Connections are never reused.

Phases: connect and tls are timed here; request (headers sent) and first_byte (waiting for the
response headers) come from httpcore's ``trace`` extension. A timeout is TCP_TIMEOUT while
connecting and READ_TIMEOUT afterwards.

Redirects: every 3xx with a Location is recorded as a `RedirectHop` and the next URL is probed
as its own target (DNS, connect, TLS); a URL seen before is a loop, and at most
``max_redirects`` hops are followed — both end the probe as `HTTP_STATUS` with the reason.
The result's evidence is the last hop's. Who answered (and whether Envoy did) is decided by
`probes.envoy.classify_reply`.
"""

from __future__ import annotations

import dataclasses
import time
import urllib.parse
from typing import Any

import httpx

from probes.classify import Classified, classify
from probes.dns import resolve
from probes.envoy import UPSTREAM_TIME, classify_reply
from probes.http_exchange import Answer, answer_from_httpx, exchange, request_headers
from probes.model import (
    HttpEvidence,
    Phase,
    Phases,
    ProbeResult,
    Protocol,
    RedirectHop,
    Signature,
    TargetSpec,
    TlsEvidence,
)
from probes.options import HTTP_ALPN, ProbeContext
from probes.targets import TargetError, parse_target
from probes.tcp import open_connection, tcp_evidence
from probes.tls import evidence_from_socket, failure_evidence, server_hostname

EXCERPT_CHARS = 200
KEPT_HEADERS = (UPSTREAM_TIME, "server", "content-length", "location", "content-type")
_PHASE_OF_EVENT = {
    "connection.connect_tcp": Phase.CONNECT,
    "connection.start_tls": Phase.TLS,
    "http11.send_request_headers": Phase.REQUEST,
    "http11.send_request_body": Phase.REQUEST,
    "http11.receive_response_headers": Phase.FIRST_BYTE,
}


class Tracer:
    """httpcore trace callback: timestamps per event, the phase in progress, the TLS stream; the
    direct path sets ``connect_seconds``/``tls_seconds`` itself."""

    def __init__(self) -> None:
        self.marks: dict[str, float] = {}
        self.phase: Phase | None = Phase.CONNECT
        self.tls_stream: Any = None
        self.connect_seconds: float | None = None
        self.tls_seconds: float | None = None

    def __call__(self, event: str, info: dict[str, Any]) -> None:
        self.marks[event] = time.perf_counter()
        name, _, stage = event.rpartition(".")
        if stage == "started" and name in _PHASE_OF_EVENT:
            self.phase = _PHASE_OF_EVENT[name]
        if event == "connection.start_tls.complete":
            self.tls_stream = info.get("return_value")

    def span(self, start: str, end: str) -> float | None:
        if start in self.marks and end in self.marks:
            return self.marks[end] - self.marks[start]
        return None

    def phases(self, resolve_seconds: float) -> Phases:
        connect = self.span("connection.connect_tcp.started", "connection.connect_tcp.complete")
        tls = self.span("connection.start_tls.started", "connection.start_tls.complete")
        return Phases(
            resolve=resolve_seconds,
            connect=self.connect_seconds if self.connect_seconds is not None else connect,
            tls=self.tls_seconds if self.tls_seconds is not None else tls,
            request=self.span("http11.send_request_headers.started", "http11.send_request_body.complete"),
            first_byte=self.span(
                "http11.receive_response_headers.started", "http11.receive_response_headers.complete"
            ),
        )


def _evidence(answer: Answer, envoy_reason: str | None) -> HttpEvidence:
    length = answer.headers.get("content-length")
    return HttpEvidence(
        status=answer.status,
        http_version=answer.http_version,
        headers={k: answer.headers[k] for k in KEPT_HEADERS if k in answer.headers},
        content_length=int(length) if length and length.isdigit() else None,
        body_excerpt=answer.body[:EXCERPT_CHARS].decode("utf-8", "replace"),
        envoy_reason=envoy_reason,
        upstream_service_time=answer.headers.get(UPSTREAM_TIME),
    )


def _failed(base: ProbeResult, failure: Classified, tls: TlsEvidence | None = None) -> ProbeResult:
    return dataclasses.replace(
        base, signature=failure.signature, tls=tls, error=failure.error, error_class=failure.error_class
    )


Attempt = tuple[ProbeResult, Answer | None]  # (the result so far, the answer if there was one)


def _direct(base: ProbeResult, address: str, ctx: ProbeContext, tracer: Tracer) -> Attempt:
    """Connect, TLS (HTTPS), then one HTTP/1.1 exchange over our own socket."""
    spec = base.target
    conn = open_connection(address, spec.port, ctx.options.timeout)
    tracer.connect_seconds = conn.seconds
    if conn.sock is None:
        assert conn.failure is not None
        return _failed(base, conn.failure), None
    sock = conn.sock
    tls = None
    if spec.protocol is Protocol.HTTPS:
        tracer.phase = Phase.TLS
        started = time.perf_counter()
        try:
            sock = ctx.http_context.wrap_socket(conn.sock, server_hostname=server_hostname(spec))
        except Exception as exc:
            tracer.tls_seconds = time.perf_counter() - started
            conn.sock.close()
            failure = classify(exc, Phase.TLS)
            return _failed(base, failure, failure_evidence(address, spec, ctx, failure)), None
        tracer.tls_seconds = time.perf_counter() - started
        tls = evidence_from_socket(sock, spec.sni, True, HTTP_ALPN)
    tracer.phase = Phase.REQUEST
    try:
        answer = exchange(sock, spec, address, {"trace": tracer, "timeout": ctx.http_timeouts})
    except Exception as exc:
        sock.close()
        return _failed(base, classify(exc, tracer.phase), tls), None
    return dataclasses.replace(base, tls=tls), answer


def _via_proxy(base: ProbeResult, address: str, ctx: ProbeContext, tracer: Tracer) -> Attempt:
    """Through httpx's transport and the configured proxy (the proxy resolves and connects)."""
    spec = base.target
    request = httpx.Request(
        "GET",
        spec.url,
        headers=request_headers(spec),
        extensions={"trace": tracer, "timeout": ctx.http_timeouts},
    )
    try:
        response = ctx.http_transport.handle_request(request)
    except Exception as exc:
        failure = classify(exc, tracer.phase)
        tls = failure_evidence(address, spec, ctx, failure) if tracer.phase is Phase.TLS else None
        return _failed(base, failure, tls), None
    tls = None
    if tracer.tls_stream is not None:
        tls = evidence_from_socket(tracer.tls_stream.get_extra_info("ssl_object"), spec.sni, True, HTTP_ALPN)
    note = f"sent through the proxy {ctx.options.proxy}: connect/TLS evidence is the proxy's"
    return dataclasses.replace(base, tls=tls, notes=(*base.notes, note)), answer_from_httpx(response)


def probe_hop(spec: TargetSpec, ctx: ProbeContext) -> tuple[ProbeResult, str | None]:
    """Probe one URL (no redirects): the result and the Location to follow, if any."""
    started = time.perf_counter()
    res = resolve(spec.host, spec.ip_literal, ctx)
    if res.address is None:
        return res.failed_result(spec, started), None
    tracer = Tracer()
    base = ProbeResult(
        target=spec,
        signature=Signature.PROBE_ERROR,
        dns=res.evidence,
        notes=spec.warnings,
        tcp=tcp_evidence(res.address, spec.port, ctx, spec.host),
    )
    attempt = _via_proxy if ctx.options.proxy else _direct
    result, answer = attempt(base, res.address, ctx, tracer)
    if answer is not None:
        result = _answered(result, answer)
    result = dataclasses.replace(
        result, phases=tracer.phases(res.elapsed), elapsed=time.perf_counter() - started
    )
    return result, answer.location if answer is not None else None


def _answered(base: ProbeResult, answer: Answer) -> ProbeResult:
    """Who answered (`classify_reply`) and the HTTP evidence."""
    spec = base.target
    verdict = classify_reply(
        answer.status,
        answer.headers,
        answer.body.decode("utf-8", "replace"),
        tls_end_to_end=spec.protocol is Protocol.HTTPS,
        captured=base.tcp.captured if base.tcp else None,
    )
    notes = base.notes + tuple(n for n in (verdict.note, answer.body_note) if n)
    return dataclasses.replace(
        base,
        signature=verdict.signature,
        origin=verdict.origin,
        http=_evidence(answer, verdict.envoy_reason),
        notes=notes,
    )


def probe(spec: TargetSpec, ctx: ProbeContext) -> ProbeResult:
    """GET ``spec`` and follow redirects hop by hop; never raises for network outcomes."""
    started = time.perf_counter()
    hops: list[RedirectHop] = []
    seen = {spec.url}
    current = spec
    while True:
        result, location = probe_hop(current, ctx)
        if location is None:
            return _final(spec, result, hops, started)
        assert result.http is not None and result.http.status is not None
        hops.append(
            RedirectHop(
                url=current.url, status=result.http.status, location=location, signature=result.signature
            )
        )
        try:
            following = parse_target(urllib.parse.urljoin(current.url, location))
        except TargetError as exc:
            return _final(spec, result, hops, started, note=f"redirect not followed: {exc}")
        if following.protocol not in (Protocol.HTTP, Protocol.HTTPS):
            return _final(spec, result, hops, started, note=f"redirect to {following.url} not followed")
        if following.url in seen:
            return _final(spec, result, hops, started, error=f"redirect loop: {following.url} seen before")
        if len(hops) >= ctx.options.max_redirects:
            return _final(
                spec, result, hops, started, error=f"more than {ctx.options.max_redirects} redirects"
            )
        seen.add(following.url)
        current = following


def _final(
    spec: TargetSpec,
    last: ProbeResult,
    hops: list[RedirectHop],
    started: float,
    *,
    note: str | None = None,
    error: str | None = None,
) -> ProbeResult:
    notes = last.notes if last.target is spec else (*spec.warnings, *last.notes)
    if hops:
        notes = (*notes, f"evidence is from the last hop: {last.target.url}")
    if note:
        notes = (*notes, note)
    signature = last.signature
    if error is not None:
        signature = Signature.HTTP_STATUS
    return dataclasses.replace(
        last,
        target=spec,
        signature=signature,
        redirects=tuple(hops),
        error=error or last.error,
        elapsed=time.perf_counter() - started,
        notes=tuple(dict.fromkeys(notes)),
    )
