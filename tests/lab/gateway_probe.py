"""Run inside a private network namespace (``unshare -n``): start an HTTP upstream on
127.0.0.1:9080, then for each case start Envoy on the case's bootstrap and send its requests.

Usage: ``python -m tests.lab.gateway_probe ENVOY CASES.json`` where CASES.json is
``[{"bootstrap": path, "port": n, "requests": [[method, host], ...]}, ...]``; prints one JSON list
of ``[[status, body], ...]`` per case on stdout.
"""

from __future__ import annotations

import http.client
import http.server
import json
import socket
import subprocess
import sys
import threading
import time
from typing import Any


class Upstream(http.server.BaseHTTPRequestHandler):
    def _answer(self) -> None:
        body = f"upstream {self.command} {self.headers.get('Host')}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = _answer
    do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        return


def wait_port(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"port {port} never opened")


def request(port: int, method: str, host: str) -> list[Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request(method, "/status", body=b"" if method == "POST" else None, headers={"Host": host})
    resp = conn.getresponse()
    out = [resp.status, resp.read().decode(errors="replace")]
    conn.close()
    return out


def main() -> None:
    envoy, cases_path = sys.argv[1], sys.argv[2]
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 9080), Upstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    results = []
    with open(cases_path) as fh:
        cases = json.load(fh)
    for case in cases:
        proc = subprocess.Popen([envoy, "-c", case["bootstrap"], "-l", "error", "--disable-hot-restart"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(case["port"], time.monotonic() + 20)
            results.append([request(case["port"], m, h) for m, h in case["requests"]])
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    server.shutdown()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
