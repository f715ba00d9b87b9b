"""``pods/NAME/portforward?ports=P[,P…]`` over a websocket: what the API server proxies to the
kubelet, served here directly.

The websocket protocol (kubernetes ``pkg/kubelet/cri/streaming/portforward/websocket.go`` and
``staging/src/k8s.io/apiserver/pkg/util/wsstream``): subprotocol ``v4.channel.k8s.io`` (or none,
the legacy channel protocol with the same framing); port ``i`` of ``ports`` gets the data channel
``2i`` and the error channel ``2i+1``; every binary message starts with its channel byte; the first
message on each channel is the port as 2 bytes, little-endian. Client bytes on a data channel go
to the pod's ``localhost:PORT``; the pod's bytes come back on it; a failure to forward is written
on the error channel as ``error forwarding port P to pod NAME, uid UID: …``. When every port's
connection has ended the websocket is closed.

A request without a websocket upgrade (kubectl's SPDY) is answered ``400 Upgrade request
required``: SPDY is not served. Authorization: the handler checks the request's own verb (``get``
for the websocket GET, ``create`` for a POST) and, for a websocket GET, ``create`` as well — what
the API server's ``AuthorizePodWebsocketUpgradeCreatePermission`` gate does for exec, attach and
portforward, so a ``get``-only role cannot open a port.

``ApiServer.port_dialer(namespace, pod, port, timeout)`` returns a socket connected to the pod's
port (the lab's control plane connects inside the pod's network namespace); it raises ``OSError``
with the reason when it cannot.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any, BinaryIO

from lab.apiserver import spdy
from lab.apiserver.errors import ApiError, BadRequest, NotFound
from lab.apiserver.requestinfo import RequestInfo
from lab.apiserver.store import Store

PortDialer = Callable[[str, str, int, float], socket.socket]
PROTOCOLS = ("v4.channel.k8s.io", "")
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
DIAL_TIMEOUT = 5.0


def no_dialer(namespace: str, pod: str, port: int, timeout: float) -> socket.socket:
    """The dialer until one is set: no pod network behind this API server."""
    raise OSError(f"failed to connect to localhost:{port}: no pod network")


def is_websocket(headers: Any) -> bool:
    return "websocket" in str(headers.get("Upgrade", "")).lower()


def parse_ports(info: RequestInfo) -> list[int]:
    raw = [p.strip() for p in info.query.get("ports", "").split(",") if p.strip()]
    if not raw:
        raise BadRequest('query parameter "port" is required')
    ports = []
    for item in raw:
        if not item.isdigit() or not 0 < int(item) < 65536:
            raise BadRequest(f'unable to parse "{item}" as a port: must be between 1 and 65535')
        ports.append(int(item))
    return ports


def check_pod(store: Store, info: RequestInfo) -> dict[str, Any]:
    pod = store.get("pods", info.namespace, info.name)
    if pod is None:
        raise NotFound("pods", info.name)
    if not (pod.get("spec") or {}).get("nodeName"):
        raise BadRequest(f"pod {info.name} does not have a host assigned")
    return pod


class Channels:
    """The websocket side of one port-forward: framing, one writer lock."""

    def __init__(self, rfile: BinaryIO, wfile: BinaryIO) -> None:
        self.rfile, self.wfile = rfile, wfile
        self._lock = threading.Lock()
        self.closed = threading.Event()

    def send(self, opcode: int, payload: bytes) -> None:
        size = len(payload)
        if size < 126:
            head = struct.pack("!BB", 0x80 | opcode, size)
        elif size < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 126, size)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 127, size)
        with self._lock:
            if self.closed.is_set() and opcode != 0x8:
                return
            self.wfile.write(head + payload)
            self.wfile.flush()

    def data(self, channel: int, payload: bytes) -> None:
        self.send(0x2, bytes((channel,)) + payload)

    def close(self) -> None:
        if not self.closed.is_set():
            with contextlib.suppress(OSError, ValueError):
                self.send(0x8, struct.pack("!H", 1000))
            self.closed.set()

    def frames(self) -> Any:
        """Yield (opcode, payload) of whole messages from the client until it closes."""
        buffer, first = b"", 0
        while True:
            head = self.rfile.read(2)
            if len(head) < 2:
                return
            fin, opcode = head[0] & 0x80, head[0] & 0x0F
            size = head[1] & 0x7F
            if size == 126:
                size = struct.unpack("!H", self.rfile.read(2))[0]
            elif size == 127:
                size = struct.unpack("!Q", self.rfile.read(8))[0]
            mask = self.rfile.read(4) if head[1] & 0x80 else b""
            payload = self.rfile.read(size)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode >= 0x8:  # control frames are never fragmented
                yield opcode, payload
                continue
            buffer, first = buffer + payload, first or opcode
            if fin:
                yield first, buffer
                buffer, first = b"", 0


def serve(handler: Any, store: Store, dialer: PortDialer, info: RequestInfo) -> None:
    """Answer one port-forward request on ``handler`` (an ``ApiHandler``)."""
    headers = handler.headers
    offered = [p.strip() for p in str(headers.get("Sec-WebSocket-Protocol", "")).split(",") if p.strip()]
    if spdy.TUNNEL_PROTOCOL in offered or "spdy/3.1" in str(headers.get("Upgrade", "")).lower():
        serve_spdy(handler, store, dialer, info)
        return
    if not is_websocket(headers):
        raise ApiError(400, "Upgrade request required", "BadRequest")
    pod = check_pod(store, info)
    ports = parse_ports(info)
    chosen = next((p for p in PROTOCOLS if p in offered), None) if offered else ""
    key = str(headers.get("Sec-WebSocket-Key", ""))
    if chosen is None or not key:
        raise BadRequest("unable to upgrade: unsupported websocket protocol or missing key")
    _switch_to_websocket(handler, key, chosen)
    channels = Channels(handler.rfile, handler.wfile)
    uid = str((pod.get("metadata") or {}).get("uid", ""))
    try:
        _forward(channels, dialer, info, uid, ports)
    except (OSError, ValueError, struct.error):
        pass
    finally:
        channels.close()


def _switch_to_websocket(handler: Any, key: str, protocol: str) -> None:
    accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    handler.send_response(101, "Switching Protocols")
    handler.send_header("Upgrade", "websocket")
    handler.send_header("Connection", "Upgrade")
    handler.send_header("Sec-WebSocket-Accept", accept)
    if protocol:
        handler.send_header("Sec-WebSocket-Protocol", protocol)
    handler.end_headers()
    handler.wfile.flush()
    handler.close_connection = True


def serve_spdy(handler: Any, store: Store, dialer: PortDialer, info: RequestInfo) -> None:
    """kubectl's SPDY port-forward (``lab.apiserver.spdy``), tunnelled in a websocket or upgraded."""
    pod = check_pod(store, info)
    uid = str((pod.get("metadata") or {}).get("uid", ""))
    headers = handler.headers
    read: Callable[[int], bytes]
    write: Callable[[bytes], None]
    if is_websocket(headers):
        key = str(headers.get("Sec-WebSocket-Key", ""))
        if not key:
            raise BadRequest("unable to upgrade: missing websocket key")
        _switch_to_websocket(handler, key, spdy.TUNNEL_PROTOCOL)
        channels = Channels(handler.rfile, handler.wfile)
        messages = channels.frames()

        def read(size: int) -> bytes:
            for opcode, payload in messages:
                if opcode == 0x8:
                    return b""
                if opcode == 0x9:
                    channels.send(0xA, payload)
                elif opcode == 0x2 and payload:
                    return bytes(payload)
            return b""

        def write(data: bytes) -> None:
            channels.send(0x2, data)

    else:
        handler.send_response(101, "Switching Protocols")
        handler.send_header("Connection", "Upgrade")
        handler.send_header("Upgrade", "SPDY/3.1")
        handler.send_header("X-Stream-Protocol-Version", spdy.PROTOCOL)
        handler.end_headers()
        handler.wfile.flush()
        handler.close_connection = True
        channels = None
        read = handler.rfile.read1

        def write(data: bytes) -> None:
            handler.wfile.write(data)
            handler.wfile.flush()

    def describe(port: int, reason: str) -> str:
        return f"error forwarding port {port} to pod {info.name}, uid {uid}: {reason}"

    session = spdy.Session(
        read, write, lambda port: dialer(info.namespace, info.name, port, DIAL_TIMEOUT), describe
    )
    session.run()
    if channels is not None:
        channels.close()


def _forward(channels: Channels, dialer: PortDialer, info: RequestInfo, uid: str, ports: list[int]) -> None:
    for index, port in enumerate(ports):
        channels.data(2 * index, struct.pack("<H", port))
        channels.data(2 * index + 1, struct.pack("<H", port))
    conns: dict[int, socket.socket] = {}
    pumps: list[threading.Thread] = []
    for index, port in enumerate(ports):
        try:
            conn = dialer(info.namespace, info.name, port, DIAL_TIMEOUT)
        except OSError as exc:
            message = f"error forwarding port {port} to pod {info.name}, uid {uid}: {exc}"
            channels.data(2 * index + 1, message.encode())
            continue
        conn.settimeout(None)
        conns[index] = conn
        pump = threading.Thread(target=_pump, args=(conn, channels, 2 * index), daemon=True)
        pump.start()
        pumps.append(pump)
    if not conns:
        return
    reader = threading.Thread(target=_read_client, args=(channels, conns), daemon=True)
    reader.start()
    for pump in pumps:
        pump.join()
    for conn in conns.values():
        with contextlib.suppress(OSError):
            conn.close()


def _pump(conn: socket.socket, channels: Channels, channel: int) -> None:
    """The pod's bytes to the client until the pod's side ends."""
    with contextlib.suppress(OSError, ValueError):
        while True:
            data = conn.recv(65536)
            if not data:
                break
            channels.data(channel, data)


def _read_client(channels: Channels, conns: dict[int, socket.socket]) -> None:
    """The client's data-channel bytes to the pod; a close from the client ends every port."""
    try:
        for opcode, payload in channels.frames():
            if opcode == 0x8:
                break
            if opcode == 0x9:
                channels.send(0xA, payload)
                continue
            if opcode != 0x2 or not payload or payload[0] % 2:
                continue
            conn = conns.get(payload[0] // 2)
            if conn is not None and len(payload) > 1:
                conn.sendall(payload[1:])
    except (OSError, ValueError, struct.error):
        pass
    finally:
        for conn in conns.values():
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
