"""What the lab internet's origins say: a small HTTP/1.x server, a server-first banner, echo.

Every HTTP answer is JSON naming the host, address and port that answered (and the SNI and the
request headers it received), so a test or the probe can tell *who* answered. Paths:
``/redirect?to=URL[&code=N]`` (a redirect to another host), ``/status/N`` (that status),
``/simple/`` (an HTML index linking to the separate file host ``files.<parent domain>``), anything
else 200.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

SERVER_HEADER = "meshprobe-lab-origin/1"
MAX_HEADER_BYTES = 32 * 1024


@dataclass(frozen=True)
class Origin:
    """One listening origin: the host(s) at ``address`` and what ``port`` speaks."""

    hosts: tuple[str, ...]
    address: str
    port: int
    protocol: str  # "http" | "https" | "tls" | "tcp"

    @property
    def host(self) -> str:
        return self.hosts[0]


def files_host(host: str) -> str:
    """``pkg.lab.example`` → ``files.lab.example`` (the index's separate file host)."""
    parts = host.split(".", 1)
    return f"files.{parts[1]}" if len(parts) == 2 else f"files.{host}"


def _answer(
    origin: Origin, method: str, target: str, headers: dict[str, str], sni: str | None, scheme: str
) -> tuple[int, dict[str, str], bytes]:
    url = urlsplit(target)
    info = {
        "host": origin.host,
        "address": origin.address,
        "port": origin.port,
        "scheme": scheme,
        "sni": sni,
        "method": method,
        "path": target,
        "headers": headers,
    }
    if url.path == "/redirect":
        query = parse_qs(url.query)
        code = int(query.get("code", ["302"])[0])
        location = query.get("to", ["/"])[0]
        return code, {"location": location, "content-type": "application/json"}, json.dumps(info).encode()
    if url.path.startswith("/status/") and url.path[8:].isdigit():
        code = int(url.path[8:])
        return code, {"content-type": "application/json"}, json.dumps(info).encode()
    if url.path.startswith("/simple"):
        link = f"https://{files_host(origin.host)}/packages/{origin.host}/lab-1.0.tar.gz"
        html = f'<!DOCTYPE html><html><body><a href="{link}">lab-1.0.tar.gz</a></body></html>\n'
        return 200, {"content-type": "text/html"}, html.encode()
    return 200, {"content-type": "application/json"}, json.dumps(info).encode()


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, str, dict[str, str], bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    body = await reader.readexactly(length) if length else b""
    return parts[0], parts[1], parts[2], headers, body


async def serve_http(origin: Origin, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """HTTP/1.0 and 1.1 with keep-alive (Envoy reuses upstream connections)."""
    sslobj = writer.get_extra_info("ssl_object")
    sni = getattr(sslobj, "lab_sni", None) if sslobj is not None else None
    scheme = "https" if sslobj is not None else "http"
    try:
        while True:
            request = await _read_request(reader)
            if request is None:
                break
            method, target, version, headers, _ = request
            status, extra, body = _answer(origin, method, target, headers, sni, scheme)
            keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
            reason = "OK" if status == 200 else "Lab"
            out = [
                f"{version if version.startswith('HTTP/1') else 'HTTP/1.1'} {status} {reason}",
                f"server: {SERVER_HEADER}",
                f"content-length: {len(body)}",
                f"connection: {'keep-alive' if keep else 'close'}",
                *(f"{k}: {v}" for k, v in extra.items()),
            ]
            writer.write(
                ("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + (b"" if method == "HEAD" else body)
            )
            await writer.drain()
            if not keep:
                break
    except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
        pass
    finally:
        await _close(writer)


async def serve_banner(origin: Origin, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Server-first: an SSH-style banner naming host, address and port, then echo."""
    try:
        writer.write(f"SSH-2.0-MeshprobeLab {origin.host} {origin.address}:{origin.port}\r\n".encode())
        await writer.drain()
        while data := await reader.read(4096):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        await _close(writer)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer.wait_closed(), 1.0)
