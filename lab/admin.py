"""Tiny HTTP/1.1 GET/POST client over a socket created inside a pod netns (stdlib only).

Used for Envoy admin (127.0.0.1:15000) and the agent ports from the lab process itself: the socket
is created on the pod's netns thread, so no subprocess is needed. Sockets are root-owned, so
istio-iptables' ``-o lo -m owner ! --uid-owner 1337 -j RETURN`` leaves them alone.
"""

from __future__ import annotations

import http.client
import socket

from lab.netns import NetnsThread


class _PreconnectedHTTP(http.client.HTTPConnection):
    def __init__(self, sock: socket.socket, host: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._pre = sock

    def connect(self) -> None:
        self.sock = self._pre


def request(
    thread: NetnsThread,
    host: str,
    port: int,
    path: str,
    *,
    method: str = "GET",
    timeout: float = 2.0,
    source: str | None = None,
) -> tuple[int, str]:
    """(status, body) of one request from inside the netns; OSError on connection failure."""
    sock = thread.socket()
    try:
        sock.settimeout(timeout)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if source is not None:
            sock.bind((source, 0))
        sock.connect((host, port))
        conn = _PreconnectedHTTP(sock, host, port, timeout)
        conn.request(method, path, headers={"Connection": "close"})
        resp = conn.getresponse()
        body = resp.read().decode("utf-8", errors="replace")
        return resp.status, body
    except http.client.HTTPException as exc:
        raise OSError(str(exc)) from exc
    finally:
        sock.close()
