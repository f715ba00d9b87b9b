"""The HTTP(S) prober (httpx): GET the target, follow redirects hop by hop, classify the answer.

Each hop resolves its host with `probes.dns` and dials that address itself (the URL carries the
IP; ``Host`` and, for HTTPS, the SNI via httpx's ``sni_hostname`` extension carry the name), so
no second name resolution happens in httpx or OpenSSL. httpx's transport runs with ``trust_env=False``
(proxies only when the options name one), without the client layer (no cookies, auth or
redirect handling: the probe follows redirects itself). Connections are never reused.

Phases come from httpcore's ``trace`` extension: connect (TCP), tls (handshake), request
(headers and body sent), first_byte (waiting for the response headers). A timeout is TCP_TIMEOUT
while connecting and READ_TIMEOUT afterwards.

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

from probes import __version__
from probes.classify import classify
from probes.dns import resolve
from probes.envoy import UPSTREAM_TIME, classify_reply
from probes.model import (
    HttpEvidence,
    Phase,
    Phases,
    ProbeResult,
    Protocol,
    RedirectHop,
    Signature,
    TargetSpec,
)
from probes.options import HTTP_ALPN, ProbeContext
from probes.targets import TargetError, parse_target
from probes.tcp import tcp_evidence
from probes.tls import evidence_from_socket, failure_evidence

BODY_BYTES = 4096
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
    """httpcore trace callback: timestamps per event, the phase in progress, the TLS stream."""

    def __init__(self) -> None:
        self.marks: dict[str, float] = {}
        self.phase: Phase | None = Phase.CONNECT
        self.tls_stream: Any = None

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
        return Phases(
            resolve=resolve_seconds,
            connect=self.span("connection.connect_tcp.started", "connection.connect_tcp.complete"),
            tls=self.span("connection.start_tls.started", "connection.start_tls.complete"),
            request=self.span("http11.send_request_headers.started", "http11.send_request_body.complete"),
            first_byte=self.span(
                "http11.receive_response_headers.started", "http11.receive_response_headers.complete"
            ),
        )


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _host_header(spec: TargetSpec) -> str:
    default = 443 if spec.protocol is Protocol.HTTPS else 80
    return _bracket(spec.host) if spec.port == default else f"{_bracket(spec.host)}:{spec.port}"


def _request(spec: TargetSpec, address: str, ctx: ProbeContext, tracer: Tracer) -> httpx.Request:
    proxied = ctx.options.proxy is not None
    url = spec.url if proxied else f"{spec.protocol.value}://{_bracket(address)}:{spec.port}{spec.path}"
    extensions: dict[str, Any] = {"trace": tracer}
    if spec.protocol is Protocol.HTTPS and spec.sni and not proxied:
        extensions["sni_hostname"] = spec.sni
    extensions["timeout"] = ctx.http_timeouts
    headers = {
        "Host": _host_header(spec),
        "User-Agent": f"meshprobe/{__version__}",
        "Accept": "*/*",
        "Connection": "close",
    }
    return httpx.Request("GET", url, headers=headers, extensions=extensions)


def _read_body(response: httpx.Response) -> tuple[bytes, str | None]:
    body = b""
    try:
        for chunk in response.iter_raw():
            body += chunk
            if len(body) >= BODY_BYTES:
                break
    except httpx.HTTPError as exc:
        return body, f"body cut short: {classify(exc, Phase.FIRST_BYTE).error}"
    return body[:BODY_BYTES], None


def _evidence(response: httpx.Response, body: bytes, envoy_reason: str | None) -> HttpEvidence:
    kept = {k: response.headers[k] for k in KEPT_HEADERS if k in response.headers}
    length = response.headers.get("content-length")
    return HttpEvidence(
        status=response.status_code,
        http_version=response.http_version,
        headers=kept,
        content_length=int(length) if length and length.isdigit() else None,
        body_excerpt=body[:EXCERPT_CHARS].decode("utf-8", "replace") if body else "",
        envoy_reason=envoy_reason,
        upstream_service_time=response.headers.get(UPSTREAM_TIME),
    )


def probe_hop(spec: TargetSpec, ctx: ProbeContext) -> tuple[ProbeResult, str | None]:
    """Probe one URL (no redirects): the result and the Location to follow, if any."""
    started = time.perf_counter()
    res = resolve(spec.host, spec.ip_literal, ctx)
    if res.address is None:
        failed = ProbeResult(
            target=spec,
            signature=res.signature or Signature.PROBE_ERROR,
            dns=res.evidence,
            phases=Phases(resolve=res.elapsed),
            error=res.error,
            error_class=res.error_class,
            elapsed=time.perf_counter() - started,
            notes=spec.warnings,
        )
        return failed, None
    tracer = Tracer()
    base = ProbeResult(
        target=spec,
        signature=Signature.PROBE_ERROR,
        dns=res.evidence,
        notes=spec.warnings,
        tcp=tcp_evidence(res.address, spec.port, ctx, spec.host),
    )
    try:
        response = ctx.http_transport.handle_request(_request(spec, res.address, ctx, tracer))
    except Exception as exc:
        failure = classify(exc, tracer.phase)
        tls = failure_evidence(res.address, spec, ctx, failure) if tracer.phase is Phase.TLS else None
        failed = dataclasses.replace(
            base,
            signature=failure.signature,
            phases=tracer.phases(res.elapsed),
            tls=tls,
            error=failure.error,
            error_class=failure.error_class,
            elapsed=time.perf_counter() - started,
        )
        return failed, None
    result = _answered(base, response, tracer, ctx)
    result = dataclasses.replace(
        result, phases=tracer.phases(res.elapsed), elapsed=time.perf_counter() - started
    )
    location = response.headers.get("location") if 300 <= response.status_code < 400 else None
    return result, location


def _answered(base: ProbeResult, response: httpx.Response, tracer: Tracer, ctx: ProbeContext) -> ProbeResult:
    """The result for a response: TLS evidence, the body excerpt, and who answered (`classify_reply`)."""
    spec = base.target
    try:
        tls_evidence = None
        if tracer.tls_stream is not None:
            ssl_object = tracer.tls_stream.get_extra_info("ssl_object")
            tls_evidence = evidence_from_socket(ssl_object, spec.sni, True, HTTP_ALPN)
        body, body_note = _read_body(response)
    finally:
        response.close()
    verdict = classify_reply(
        response.status_code,
        response.headers,
        body.decode("utf-8", "replace"),
        tls_end_to_end=spec.protocol is Protocol.HTTPS,
        captured=base.tcp.captured if base.tcp else None,
    )
    proxy = ctx.options.proxy
    proxy_note = f"sent through the proxy {proxy}: connect/TLS evidence is the proxy's" if proxy else None
    notes = base.notes + tuple(n for n in (verdict.note, body_note, proxy_note) if n)
    return dataclasses.replace(
        base,
        signature=verdict.signature,
        origin=verdict.origin,
        tls=tls_evidence,
        http=_evidence(response, body, verdict.envoy_reason),
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
