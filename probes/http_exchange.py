"""One HTTP/1.1 GET over a socket the probe connected (and TLS-wrapped) itself, with httpcore.

The HTTP prober dials the address DNS gave and does the TLS handshake with the same code as the
TLS prober (so SNI, verification and evidence are identical, and no second name resolution can
happen); httpcore's `HTTP11Connection` (httpx's own HTTP/1.1 layer, h11 underneath) then speaks
HTTP over that socket through `SocketStream`, a minimal `httpcore.NetworkStream`. This skips
httpx's client, pool and transport layers, which cost about as much CPU as the TLS handshake.

`Answer` is what a prober needs from a response, whichever path produced it (this one, or httpx's
transport when a proxy is configured: `answer_from_httpx`).
"""

from __future__ import annotations

import dataclasses
import socket
import ssl
from collections.abc import Iterable, Mapping
from typing import Any

import httpcore
import httpx

from probes import __version__
from probes.model import Protocol, TargetSpec

BODY_BYTES = 4096


class SocketStream(httpcore.NetworkStream):
    """A connected (possibly TLS) socket as an httpcore stream; socket errors propagate unchanged
    (`probes.classify` maps them with the phase in progress)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self._sock.settimeout(timeout)
        return self._sock.recv(max_bytes)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._sock.settimeout(timeout)
        self._sock.sendall(buffer)

    def close(self) -> None:
        self._sock.close()

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object" and isinstance(self._sock, ssl.SSLSocket):
            return self._sock
        return None


@dataclasses.dataclass(frozen=True)
class Answer:
    status: int
    http_version: str
    headers: Mapping[str, str]  # lower-case names; the last value wins
    body: bytes
    body_note: str | None = None

    @property
    def location(self) -> str | None:
        return self.headers.get("location") if 300 <= self.status < 400 else None


def bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def host_header(spec: TargetSpec) -> str:
    default = 443 if spec.protocol is Protocol.HTTPS else 80
    return bracket(spec.host) if spec.port == default else f"{bracket(spec.host)}:{spec.port}"


def request_headers(spec: TargetSpec) -> dict[str, str]:
    return {
        "Host": host_header(spec),
        "User-Agent": f"meshprobe/{__version__}",
        "Accept": "*/*",
        "Connection": "close",
    }


def _lowered(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in headers}


def _read_capped(chunks: Iterable[bytes]) -> tuple[bytes, str | None]:
    body = b""
    try:
        for chunk in chunks:
            body += chunk
            if len(body) >= BODY_BYTES:
                break
    except Exception as exc:  # classified by the caller's table would lose the status: note it instead
        return body[:BODY_BYTES], f"body cut short: {type(exc).__name__}: {exc}"[:200]
    return body[:BODY_BYTES], None


def exchange(sock: socket.socket, spec: TargetSpec, address: str, extensions: dict[str, Any]) -> Answer:
    """GET ``spec.path`` over ``sock``; raises for network outcomes (the caller classifies them)."""
    scheme = spec.protocol.value.encode()
    connection = httpcore.HTTP11Connection(
        origin=httpcore.Origin(scheme, address.encode(), spec.port), stream=SocketStream(sock)
    )
    url = httpcore.URL(scheme=scheme, host=address.encode(), port=spec.port, target=spec.path.encode())
    headers = [(k.encode(), v.encode()) for k, v in request_headers(spec).items()]
    try:
        response = connection.handle_request(
            httpcore.Request("GET", url, headers=headers, extensions=extensions)
        )
        try:
            body, note = _read_capped(response.iter_stream())
        finally:
            response.close()
    finally:
        connection.close()
    version = response.extensions.get("http_version", b"HTTP/1.1")
    return Answer(response.status, version.decode("ascii", "replace"), _lowered(response.headers), body, note)


def answer_from_httpx(response: httpx.Response) -> Answer:
    """The same `Answer` from httpx's transport (the proxied path); closes the response."""
    try:
        body, note = _read_capped(response.iter_raw())
    finally:
        response.close()
    return Answer(response.status_code, response.http_version, _lowered(response.headers.raw), body, note)
