"""One HTTP GET to a pod's port through the API server's ``pods/portforward`` (what
``kubectl port-forward`` opens), over a websocket with the ``v4.channel.k8s.io`` subprotocol.

The protocol (kubernetes ``pkg/kubelet/cri/streaming/portforward/websocket.go``): for each port in
``?ports=`` two channels, data ``2i`` and error ``2i+1``; every binary message starts with its
channel byte, and the first message of each channel carries the port as 2 bytes, little-endian.
What the client writes on the data channel reaches the pod's ``localhost:PORT``; text on the error
channel means the kubelet could not forward. The server closes the websocket once the pod's side
of the connection ends, so a request sent with ``Connection: close`` ends it.

Everything is bounded by one deadline (connect, upgrade, reply). Failures become meshprobe errors:
an HTTP status on the upgrade through ``api_error``; a refused or timed-out connection as an
unreachable cluster; text on the error channel as ``PortForwardFailed``.

Only ``websocket`` (websocket-client, which the ``kubernetes`` client depends on) is used, imported
inside the function; ``diag.cluster`` supplies the URL, the credentials and the TLS settings.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from diag import errors
from diag.apierrors import Status, api_error, status_of

PROTOCOL = "v4.channel.k8s.io"
MAX_BODY = 64 * 1024 * 1024  # a large mesh's config_dump is tens of MB; never more than this


class PortForwardFailed(errors.InfraError):
    """The API server accepted the port-forward but the pod's port could not be reached."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes


def http_get(
    url: str,
    headers: Mapping[str, str],
    sslopt: Mapping[str, Any],
    port: int,
    path: str,
    *,
    timeout: float,
    what: str,
) -> Reply:
    """GET ``path`` on the forwarded ``port`` (``url`` is the ``wss://…/portforward?ports=PORT``)."""
    import websocket

    deadline = time.monotonic() + timeout
    ws = websocket.WebSocket(sslopt=dict(sslopt), skip_utf8_validation=True)
    header = [f"{k}: {v}" for k, v in headers.items()]
    try:
        ws.connect(url, header=header, subprotocols=[PROTOCOL], timeout=timeout)  # type: ignore[no-untyped-call]
    except websocket.WebSocketBadStatusException as exc:
        body = exc.resp_body if isinstance(exc.resp_body, bytes) else b""
        raise api_error(status_of(exc.status_code, exc.status_message or "", body), what) from None
    except (OSError, ssl.SSLError, websocket.WebSocketException) as exc:
        raise api_error(Status(0, "unreachable", _short(exc)), what) from None
    try:
        request = f"GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n"
        ws.send_binary(b"\x00" + request.encode())
        data, error = _collect(ws, port, deadline, what)
    finally:
        ws.close(timeout=0.5)
    if error:
        raise PortForwardFailed(f"port-forward failed ({what}): {' '.join(error.split())}")
    return _parse_http(data, what)


def _collect(ws: Any, port: int, deadline: float, what: str) -> tuple[bytes, str]:
    """(data channel bytes, error channel text) until the server closes the websocket."""
    import websocket

    data, error = bytearray(), ""
    seen = [False, False]
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise api_error(Status(0, "timeout", "no reply from the forwarded port in time"), what)
        ws.settimeout(left)
        try:
            opcode, frame = ws.recv_data_frame(True)
        except websocket.WebSocketConnectionClosedException:
            break
        except (TimeoutError, websocket.WebSocketTimeoutException):
            raise api_error(Status(0, "timeout", "no reply from the forwarded port in time"), what) from None
        except (OSError, websocket.WebSocketException) as exc:
            raise api_error(Status(0, "unreachable", _short(exc)), what) from None
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            break
        if opcode != websocket.ABNF.OPCODE_BINARY or not frame.data:
            continue
        channel, payload = frame.data[0], bytes(frame.data[1:])
        if channel > 1:
            raise PortForwardFailed(f"port-forward failed ({what}): unexpected channel {channel}")
        if not seen[channel]:
            seen[channel] = True
            if len(payload) != 2 or int.from_bytes(payload, "little") != port:
                raise PortForwardFailed(f"port-forward failed ({what}): the server named another port")
            continue
        if channel == 1:
            error += payload.decode("utf-8", "replace")
        else:
            data += payload
            if len(data) > MAX_BODY:
                raise PortForwardFailed(f"port-forward failed ({what}): the reply exceeds {MAX_BODY} bytes")
    return bytes(data), error


def _parse_http(data: bytes, what: str) -> Reply:
    head, sep, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2) if sep else []
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise PortForwardFailed(f"port-forward failed ({what}): the forwarded port did not answer HTTP")
    fields = {}
    for line in lines[1:]:
        key, _, value = line.partition(b":")
        fields[key.strip().lower()] = value.strip()
    if fields.get(b"transfer-encoding", b"").lower() == b"chunked":
        body = _dechunk(body)
    elif b"content-length" in fields and fields[b"content-length"].isdigit():
        body = body[: int(fields[b"content-length"])]
    return Reply(int(parts[1]), body)


def _dechunk(data: bytes) -> bytes:
    out, rest = bytearray(), data
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
        except ValueError:
            break
        if size == 0:
            break
        out += rest[:size]
        rest = rest[size + 2 :]
    return bytes(out)


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__
