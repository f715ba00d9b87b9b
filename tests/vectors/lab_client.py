"""Make vector calls from inside a lab pod, one after another, and report each call's client port.

Run behind the pod's sidecar (``pod.exec([sys.executable, "-c", this source, JSON, FIRST_PORT])``);
stdlib only. JSON is a list of ``{name, address, port, protocol, tls, host, sni, alpn, path,
method, headers}``, and for the mesh's mutual TLS ``mtls`` with ``cert``/``key`` (the client's
workload certificate files: an HTTP request is then sent inside the TLS session); the output
(stdout) is a JSON list of ``{name, local, status, error}`` where ``local`` is the client's
``ip:port`` — the key that finds the call's line (``downstream_remote_address``) in Envoy's
access log, the oracle for which route and cluster Envoy chose.

Each call binds its own source port, counting up from FIRST_PORT (ports in use are skipped), and
the caller never hands out a port twice in one pod. Left to the kernel, two calls to different
destinations may share a source port; after iptables' REDIRECT both would map to the same tuple
towards Envoy, so conntrack rewrites the second one's port and its log line no longer carries the
client's port. What the server answers does not matter: every call ends after a short read.
"""

from __future__ import annotations

import json
import socket
import ssl
import sys
from typing import Any

READ_TIMEOUT_S = 0.5
CONNECT_TIMEOUT_S = 2.0


def _request(call: dict[str, Any]) -> bytes:
    host = call.get("host") or call["address"]
    extra = "".join(f"{name}: {value}\r\n" for name, value in (call.get("headers") or {}).items())
    return (
        f"{call.get('method') or 'GET'} {call.get('path') or '/'} HTTP/1.1\r\nHost: {host}\r\n"
        f"User-Agent: meshprobe-vectors\r\n{extra}Connection: close\r\n\r\n"
    ).encode()


def _read_some(sock: socket.socket) -> bytes:
    sock.settimeout(READ_TIMEOUT_S)
    try:
        return sock.recv(4096)
    except (TimeoutError, OSError):
        return b""


def _tls_wrap(sock: socket.socket, call: dict[str, Any]) -> socket.socket:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if call.get("alpn"):
        context.set_alpn_protocols([call["alpn"]])
    if call.get("cert"):
        context.load_cert_chain(call["cert"], call["key"])
    sock.settimeout(READ_TIMEOUT_S)
    return context.wrap_socket(sock, server_hostname=call.get("sni") or None)


def _bound_socket(family: int, port: int) -> tuple[socket.socket, int]:
    """A socket bound to the first free source port from ``port`` on."""
    while True:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
        except OSError:
            sock.close()
            port += 1
            continue
        return sock, port


def make_call(call: dict[str, Any], port: int) -> tuple[dict[str, Any], int]:
    """One connection from source port ``port`` or the next free one; never raises. Returns the
    result and the port used."""
    family = socket.AF_INET6 if ":" in call["address"] else socket.AF_INET
    result: dict[str, Any] = {"name": call["name"], "local": None, "status": None, "error": None}
    sock, port = _bound_socket(family, port)
    try:
        sock.settimeout(CONNECT_TIMEOUT_S)
        sock.connect((call["address"], int(call["port"])))
        local = sock.getsockname()
        shown = f"[{local[0]}]" if family == socket.AF_INET6 else local[0]  # as Envoy logs it
        result["local"] = f"{shown}:{local[1]}"
        if call.get("tls"):
            sock = _tls_wrap(sock, call)
            if call.get("mtls") and call["protocol"] != "tcp":
                sock.sendall(_request(call))
        elif call["protocol"] != "tcp":
            sock.sendall(_request(call))
        else:
            sock.sendall(b"meshprobe-vectors\n")
        head = _read_some(sock)
        if head.startswith(b"HTTP/"):
            result["status"] = int(head.split(b" ", 2)[1])
    except (OSError, ssl.SSLError, ValueError) as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        sock.close()
    return result, port


def main(argv: list[str]) -> int:
    calls = json.loads(argv[1])
    port = int(argv[2])
    results = []
    for call in calls:
        result, used = make_call(call, port)
        results.append(result)
        port = used + 1
    print(json.dumps({"results": results, "next_port": port}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
