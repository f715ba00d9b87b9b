"""Loopback servers for the prober tests: HTTP(S) with Envoy-style replies, odd TLS peers, TCP peers
and a DNS server. Every server binds a random port on 127.0.0.0/8, runs in daemon threads and is
torn down by its context manager (sockets closed, threads joined).
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.server
import random
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset


@dataclasses.dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)


Routes = Mapping[tuple[str, str], Reply]  # (host without port, path) -> reply; host "*" matches any


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    routes: ClassVar[Routes] = {}

    def do_GET(self) -> None:
        host = (
            (self.headers.get("Host") or "").rsplit(":", 1)[0]
            if "]" not in (self.headers.get("Host") or "")
            else (self.headers.get("Host") or "")
        )
        reply = (
            self.routes.get((host, self.path))
            or self.routes.get(("*", self.path))
            or Reply(404, b"not found")
        )
        self.send_response_only(reply.status)
        for name, value in {"server": "envoy", **reply.headers}.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(reply.body)))
        self.send_header("x-served-host", host)
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        del format, args


class _HttpServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that fail the handshake on purpose are expected here: stay quiet."""


@contextlib.contextmanager
def serve_http(
    routes: Routes, *, address: str = "127.0.0.1", tls: ssl.SSLContext | None = None
) -> Iterator[int]:
    """An HTTP/1.1 server (HTTPS when ``tls`` is given); yields its port."""
    handler = type("Handler", (_Handler,), {"routes": routes})
    server_class = (
        type("V6Server", (_HttpServer,), {"address_family": socket.AF_INET6})
        if ":" in address
        else _HttpServer
    )
    server = server_class((address, 0), handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    with _running(lambda: server.serve_forever(0.05), server.shutdown, server.server_close):
        yield server.server_address[1]


@contextlib.contextmanager
def _running(
    target: Callable[[], None], stop: Callable[[], None], close: Callable[[], None]
) -> Iterator[None]:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop()
        thread.join(5)
        close()


@contextlib.contextmanager
def serve_raw(behaviour: Callable[[socket.socket], None], *, address: str = "127.0.0.1") -> Iterator[int]:
    """A TCP server that runs ``behaviour(conn)`` for each accepted connection; yields its port."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((address, 0))
    listener.listen(64)
    listener.settimeout(0.1)
    stopping = threading.Event()
    held: list[socket.socket] = []

    def accept_loop() -> None:
        while not stopping.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            held.append(conn)
            threading.Thread(target=_guarded, args=(behaviour, conn), daemon=True).start()

    def close() -> None:
        listener.close()
        for conn in held:
            with contextlib.suppress(OSError):
                conn.close()

    with _running(accept_loop, stopping.set, close):
        yield listener.getsockname()[1]


def _guarded(behaviour: Callable[[socket.socket], None], conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.settimeout(5)
        behaviour(conn)


def reset(conn: socket.socket) -> None:
    """Close with RST (SO_LINGER 0)."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def banner(text: bytes) -> Callable[[socket.socket], None]:
    def send(conn: socket.socket) -> None:
        conn.sendall(text)
        conn.recv(1)

    return send


def close_now(conn: socket.socket) -> None:
    conn.close()


def reset_now(conn: socket.socket) -> None:
    reset(conn)


def stay_silent(conn: socket.socket) -> None:
    conn.recv(1)


def close_after(seconds: float) -> Callable[[socket.socket], None]:
    """Say nothing, then close (a sidecar whose upstream connect gave up)."""

    def behaviour(conn: socket.socket) -> None:
        time.sleep(seconds)
        conn.close()

    return behaviour


def reset_after_hello(conn: socket.socket) -> None:
    conn.recv(4096)
    reset(conn)


def close_after_hello(conn: socket.socket) -> None:
    conn.recv(4096)
    conn.close()


def plaintext_http(conn: socket.socket) -> None:
    conn.recv(4096)
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
    conn.close()


def garbage_reply(conn: socket.socket) -> None:
    conn.recv(4096)
    conn.sendall(b"220 mail.lab.example ESMTP ready\r\n\r\n")
    conn.close()


def refused_port(address: str = "127.0.0.1") -> int:
    """A port nothing listens on (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def syn_dropping_port(address: str = "127.0.0.1") -> Iterator[int]:
    """A port whose SYNs are dropped: a listener with a full accept queue (backlog 0, one queued
    connection, never accepted) — Linux drops further SYNs, so a connect times out, as behind a
    firewall that drops packets."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind((address, 0))
        listener.listen(0)
        port = int(listener.getsockname()[1])
        filler.connect((address, port))
        yield port
    finally:
        filler.close()
        listener.close()


# --- DNS ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Zone:
    """name (absolute, lower case) -> {"A": [...], "AAAA": [...]}; ``rcodes`` overrides per name."""

    records: Mapping[str, Mapping[str, tuple[str, ...]]]
    rcodes: Mapping[str, str] = dataclasses.field(default_factory=dict)
    unanswered_aaaa: frozenset[str] = frozenset()  # names whose AAAA queries are never answered

    def answer(self, query: dns.message.Message) -> dns.message.Message | None:
        response = dns.message.make_response(query)
        question = query.question[0]
        if question.rdtype == dns.rdatatype.AAAA and question.name.to_text().lower() in self.unanswered_aaaa:
            return None
        name = question.name.to_text().lower()
        if name in self.rcodes:
            response.set_rcode(dns.rcode.from_text(self.rcodes[name]))
            return response
        if name not in self.records:
            response.set_rcode(dns.rcode.NXDOMAIN)
            return response
        kind = dns.rdatatype.to_text(question.rdtype)
        values = self.records[name].get(kind, ())
        if values:
            response.answer.append(dns.rrset.from_text(question.name, 30, "IN", kind, *values))
        return response


def random_loopback() -> str:
    return f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"


@contextlib.contextmanager
def serve_dns(zone: Zone | None, *, port: int = 53) -> Iterator[str]:
    """A UDP DNS server on a random 127.x.y.z (port 53 so resolv.conf can name it); yields its IP.

    ``zone=None`` gives a server that receives queries and never answers (DNS_TIMEOUT).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(20):
        address = random_loopback()
        try:
            sock.bind((address, port))
            break
        except OSError:
            continue
    else:
        sock.close()
        raise RuntimeError("no free loopback address for the DNS server")
    sock.settimeout(0.1)
    stopping = threading.Event()

    def loop() -> None:
        while not stopping.is_set():
            try:
                data, peer = sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            if zone is None:
                continue
            with contextlib.suppress(Exception):
                reply = zone.answer(dns.message.from_wire(data))
                if reply is not None:
                    sock.sendto(reply.to_wire(), peer)

    with _running(loop, stopping.set, sock.close):
        yield address
