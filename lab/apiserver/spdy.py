"""``kubectl port-forward``'s protocol: SPDY/3.1 streams (``portforward.k8s.io``), served over a
websocket tunnel (subprotocol ``SPDY/3.1+portforward.k8s.io``: the SPDY bytes ride in binary
messages) or a plain SPDY upgrade (``Upgrade: SPDY/3.1``, kubectl's fallback).

Per forwarded connection the client opens two streams (``SYN_STREAM`` with the headers
``streamtype: error|data``, ``port``, ``requestid``) and waits for each ``SYN_REPLY``; the data
stream carries the bytes both ways, the error stream the kubelet's message when the port cannot be
reached (kubernetes ``pkg/kubelet/cri/streaming/portforward/httpstream.go``). Frames as the SPDY/3
draft defines them: control frames (version 3, type, flags, 24-bit length), data frames (31-bit
stream id, ``FLAG_FIN`` 0x01); header blocks are one zlib stream per direction with the draft's
preset dictionary (``DICTIONARY``; its Adler-32, 0xe3c6a7c2, is the one kubectl's zlib header
names). Flow control (WINDOW_UPDATE, SETTINGS) is read and ignored:
the payloads here are small.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import zlib
from collections.abc import Callable

PROTOCOL = "portforward.k8s.io"
TUNNEL_PROTOCOL = f"SPDY/3.1+{PROTOCOL}"
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01

_WORDS = [
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
]
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
DICTIONARY = b"".join(struct.pack("!I", len(w)) + w.encode() for w in _WORDS) + _TAIL.encode()

Dialer = Callable[[int], socket.socket]  # port → a connected socket (OSError with the reason)


class Session:
    """One SPDY connection: ``read(n)`` gives the client's bytes (b"" at the end), ``write`` sends."""

    def __init__(self, read: Callable[[int], bytes], write: Callable[[bytes], None], dial: Dialer,
                 describe: Callable[[int, str], str]) -> None:  # fmt: skip
        self._read, self._write, self._dial, self._describe = read, write, dial, describe
        self._lock = threading.Lock()
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._deflate = zlib.compressobj(zdict=DICTIONARY)
        self._buffer = b""
        self._pending: dict[str, dict[str, int]] = {}  # requestid → {streamtype: stream id}
        self._conns: dict[int, socket.socket] = {}  # data stream id → the pod's connection

    # ---- bytes and frames ----------------------------------------------------------------------

    def _exact(self, size: int) -> bytes:
        while len(self._buffer) < size:
            data = self._read(65536)
            if not data:
                raise EOFError
            self._buffer += data
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out

    def _send(self, data: bytes) -> None:
        with self._lock, contextlib.suppress(OSError, ValueError):
            self._write(data)

    def _control(self, kind: int, flags: int, payload: bytes) -> None:
        self._send(struct.pack("!HHI", 0x8003, kind, (flags << 24) | len(payload)) + payload)

    def data(self, stream: int, payload: bytes, fin: bool = False) -> None:
        self._send(struct.pack("!II", stream, ((FLAG_FIN if fin else 0) << 24) | len(payload)) + payload)

    def _headers(self, block: bytes) -> dict[str, str]:
        raw = self._inflate.decompress(block)
        count, pos, out = struct.unpack_from("!I", raw)[0], 4, {}
        for _ in range(count):
            size = struct.unpack_from("!I", raw, pos)[0]
            name = raw[pos + 4 : pos + 4 + size].decode()
            pos += 4 + size
            size = struct.unpack_from("!I", raw, pos)[0]
            out[name.lower()] = raw[pos + 4 : pos + 4 + size].decode()
            pos += 4 + size
        return out

    def _reply(self, stream: int, fin: bool = False) -> None:
        with self._lock:
            block = self._deflate.compress(struct.pack("!I", 0)) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
        self._control(SYN_REPLY, FLAG_FIN if fin else 0, struct.pack("!I", stream) + block)

    # ---- the session ---------------------------------------------------------------------------

    def run(self) -> None:
        try:
            while True:
                head = self._exact(8)
                first, second = struct.unpack("!II", head)
                flags, size = second >> 24, second & 0xFFFFFF
                payload = self._exact(size)
                if first & 0x80000000:
                    self._on_control(first & 0xFFFF, flags, payload)
                else:
                    self._on_data(first & 0x7FFFFFFF, flags, payload)
        except (EOFError, OSError, ValueError, struct.error, zlib.error):
            pass
        finally:
            for conn in list(self._conns.values()):
                with contextlib.suppress(OSError):
                    conn.close()

    def _on_control(self, kind: int, flags: int, payload: bytes) -> None:
        if kind == PING:
            self._control(PING, 0, payload)
        elif kind == SYN_STREAM:
            stream = struct.unpack_from("!I", payload)[0] & 0x7FFFFFFF
            headers = self._headers(payload[10:])
            self._open(stream, headers)
        elif kind == RST_STREAM:
            conn = self._conns.pop(struct.unpack_from("!I", payload)[0] & 0x7FFFFFFF, None)
            if conn is not None:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        elif kind == GOAWAY:
            raise EOFError

    def _open(self, stream: int, headers: dict[str, str]) -> None:
        kind, request = headers.get("streamtype", ""), headers.get("requestid", "")
        self._reply(stream)
        pair = self._pending.setdefault(request, {})
        pair[kind] = stream
        if not {"error", "data"} <= set(pair):
            return
        del self._pending[request]
        data, error = pair["data"], pair["error"]
        try:  # before reading on: the client's first bytes follow the reply
            port = int(headers.get("port", ""))
            conn = self._dial(port)
        except (OSError, ValueError) as exc:
            self.data(error, self._describe(int(headers.get("port") or 0), str(exc)).encode())
            self.data(error, b"", fin=True)
            self.data(data, b"", fin=True)
            return
        self._conns[data] = conn
        threading.Thread(target=self._pump, args=(conn, data, error), daemon=True).start()

    def _pump(self, conn: socket.socket, data: int, error: int) -> None:
        with contextlib.suppress(OSError, ValueError):
            while chunk := conn.recv(65536):
                self.data(data, chunk)
        self.data(data, b"", fin=True)
        self.data(error, b"", fin=True)
        self._conns.pop(data, None)
        with contextlib.suppress(OSError):
            conn.close()

    def _on_data(self, stream: int, flags: int, payload: bytes) -> None:
        conn = self._conns.get(stream)
        if conn is None:
            return
        with contextlib.suppress(OSError):
            if payload:
                conn.sendall(payload)
            if flags & FLAG_FIN:
                conn.shutdown(socket.SHUT_WR)
