"""``/metrics``, ``/healthz`` and ``/readyz`` on one port (docs/watch.md, Endpoints).

``/healthz`` is 200 while cycles keep ending (a stuck loop fails it, so the kubelet restarts the
pod); ``/readyz`` is 200 once the mesh was read and the first cycle ended.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

from prometheus_client.exposition import CONTENT_TYPE_LATEST


class Watched(Protocol):
    ready: threading.Event

    def healthy(self) -> bool: ...


class _Metrics(Protocol):
    def scrape(self) -> bytes: ...


def serve(address: tuple[str, int], watcher: Watched, metrics: _Metrics) -> ThreadingHTTPServer:
    """Start serving in a daemon thread; the caller shuts the server down."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, metrics.scrape(), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                ok = watcher.healthy()
                self._send(200 if ok else 503, b"ok\n" if ok else b"no probe cycle ended recently\n")
            elif path == "/readyz":
                ok = watcher.ready.is_set()
                self._send(200 if ok else 503, b"ok\n" if ok else b"first probe cycle not done\n")
            else:
                self._send(404, b"not found: try /metrics, /healthz, /readyz\n")

        def _send(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return  # scrapes are not news

    server = ThreadingHTTPServer(address, Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="watch http", daemon=True).start()
    return server
