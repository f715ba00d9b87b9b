"""pilot-agent's status server for a lab pod on ``:15020`` (``/healthz/ready``, ``/quitquitquit``);
``:15021/healthz/ready`` is Envoy's bootstrap listener routing to it (``lab.bootstrap``).

From istio/istio ``pilot/cmd/pilot-agent/status/server.go`` and ``pkg/istio-agent/agent.go``:

- readiness is 200 only when Envoy is LIVE (the lab asks admin ``/ready``; pilot-agent reads
  ``server.state`` and ``listener_manager.workers_started``) and, with DNS capture, once the DNS
  name table has arrived (``agent.go`` waits for it); otherwise 503;
- ``/quitquitquit`` answers 405 to anything but POST and 403 to a non-loopback peer
  (``isRequestFromLocalhost``); on success it answers 200, and the agent exits: Envoy's inbound
  listeners are drained (``drain_listeners?inboundonly&graceful``), Envoy is stopped after the
  termination drain duration (``terminationDrainDuration``, 5 s by default; shorter in tests),
  and the agent's ports close.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import Callable

from lab.netns import NetnsThread

READY_PORT = 15021
STATUS_PORT = 15020


async def http_request(
    thread: NetnsThread, port: int, path: str, *, method: str = "GET", timeout: float = 1.0
) -> tuple[int, str]:
    """Async request to 127.0.0.1:port from a socket in the pod netns (status 0 on failure)."""
    loop = asyncio.get_running_loop()
    sock = thread.socket()
    sock.setblocking(False)
    try:
        await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", port)), timeout)
        req = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        await loop.sock_sendall(sock, req.encode())
        chunks = []
        while chunk := await asyncio.wait_for(loop.sock_recv(sock, 65536), timeout):
            chunks.append(chunk)
    except (OSError, TimeoutError):
        return 0, ""
    finally:
        sock.close()
    raw = b"".join(chunks).decode("latin-1")
    head, _, body = raw.partition("\r\n\r\n")
    try:
        status = int(head.split(" ", 2)[1])
    except (IndexError, ValueError):
        return 0, ""
    if "transfer-encoding: chunked" in head.lower():
        body = _dechunk(body)
    return status, body


def _dechunk(body: str) -> str:
    out, rest = [], body
    while rest:
        size_line, _, rest = rest.partition("\r\n")
        try:
            size = int(size_line.split(";")[0], 16)
        except ValueError:
            break
        if size == 0:
            break
        out.append(rest[:size])
        rest = rest[size + 2 :]
    return "".join(out)


class PilotAgent:
    """The agent's HTTP endpoints; ``on_quit`` stops Envoy (run in a worker thread)."""

    def __init__(
        self,
        thread: NetnsThread,
        *,
        dns_ready: Callable[[], bool] | None,
        on_quit: Callable[[], None],
        drain_seconds: float = 5.0,
    ) -> None:
        self.thread = thread
        self.dns_ready = dns_ready
        self.on_quit = on_quit
        self.drain_seconds = drain_seconds
        self.quitting = False
        self._servers: list[asyncio.AbstractServer] = []
        self._quit_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        for port in (STATUS_PORT,):
            sock = self.thread.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("0.0.0.0", port))
            sock.listen(64)
            sock.setblocking(False)
            self._servers.append(await asyncio.start_server(self._serve, sock=sock))

    async def restart(self) -> None:
        """Bring the endpoints back after a quit (the kubelet restarting the container)."""
        await self.stop()
        self.quitting = False
        self._quit_task = None
        await self.start()

    async def ready(self) -> bool:
        if self.quitting:
            return False
        if self.dns_ready is not None and not self.dns_ready():
            return False
        status, body = await http_request(self.thread, 15000, "/ready")
        return status == 200 and body.strip() == "LIVE"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            method, path, _ = head.decode("latin-1").split("\r\n", 1)[0].split(" ", 2)
            peer = writer.get_extra_info("peername")[0]
            status, body = await self._route(method, path.split("?", 1)[0], peer)
            writer.write(
                f"HTTP/1.1 {status} Lab\r\ncontent-length: {len(body)}\r\nconnection: close\r\n"
                f"content-type: text/plain\r\n\r\n{body}".encode()
            )
            await writer.drain()
        except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass
        finally:
            writer.close()

    async def _route(self, method: str, path: str, peer: str) -> tuple[int, str]:
        if path == "/healthz/ready":
            return (200, "") if await self.ready() else (503, "not ready")
        if path == "/quitquitquit":
            if method != "POST":
                return 405, "method not allowed"
            if not ipaddress.ip_address(peer.split("%")[0]).is_loopback:
                return 403, "forbidden"
            if not self.quitting:
                self.quitting = True
                self._quit_task = asyncio.get_running_loop().create_task(self._quit())
            return 200, "OK"
        return 404, "not found"

    async def _quit(self) -> None:
        await http_request(self.thread, 15000, "/drain_listeners?inboundonly&graceful", method="POST")
        await asyncio.sleep(self.drain_seconds)
        await asyncio.get_running_loop().run_in_executor(None, self.on_quit)
        await self.stop()

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        self._servers.clear()
        if self._quit_task is not None and self._quit_task is not asyncio.current_task():
            self._quit_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._quit_task
