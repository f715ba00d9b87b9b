"""Calls through the egress gateway and what each side logged for them (tests/lab/test_gateway_*.py).

``call_http``/``call_https``/``call_tcp`` run the client in a lab pod and return what the app saw;
``Logs`` snapshots the two access logs (the pod's sidecar and the gateway) and returns the lines a
call added — the lab's oracle, never product evidence.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from tests.lab.testdata.egress_gateway import HOST, TCP_HOST, TCP_PORT

TCP_CLIENT = """
import json, socket, sys
out = {"banner": "", "echo": "", "error": ""}
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
    s.settimeout(3)
    out["banner"] = s.recv(200).decode("latin-1")
    s.sendall(b"ping-through-gateway\\n")
    out["echo"] = s.recv(200).decode("latin-1")
except OSError as exc:
    out["error"] = type(exc).__name__
print(json.dumps(out))
"""


@dataclass(frozen=True)
class HttpSeen:
    """What curl saw: exit code, status (0 without a response), headers (lower-case), body."""

    exit_code: int
    status: int
    headers: dict[str, str]
    body: str
    stderr: str


def _parse(done: Any) -> HttpSeen:
    status, headers, body = 0, {}, ""
    if done.stdout.startswith("HTTP/"):
        head, _, body = done.stdout.replace("\r\n", "\n").partition("\n\n")
        lines = head.split("\n")
        status = int(lines[0].split()[1])
        for line in lines[1:]:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
    return HttpSeen(done.returncode, status, headers, body, done.stderr)


def call_http(pod: Any, path: str = "/", host: str = HOST) -> HttpSeen:
    return _parse(pod.exec(["curl", "-sS", "-m", "8", "-i", f"http://{host}{path}"]))


def call_https(pod: Any, path: str = "/", host: str = HOST) -> HttpSeen:
    return _parse(pod.exec(["curl", "-sS", "-m", "8", "-i", f"https://{host}{path}"]))


def call_tcp(pod: Any, host: str = TCP_HOST, port: int = TCP_PORT) -> dict[str, str]:
    import sys

    done = pod.exec([sys.executable, "-c", TCP_CLIENT, host, str(port)])
    assert done.returncode == 0, done.stderr
    result: dict[str, str] = json.loads(done.stdout)
    return result


class Logs:
    """Access-log lines the sidecar of ``pod`` and the gateway wrote since the snapshot."""

    def __init__(self, pod: Any, gateway: Any) -> None:
        self.pod, self.gateway = pod, gateway
        self.sidecar_start = len(pod.access_log())
        self.gateway_start = len(gateway.access_log())

    def sidecar(self, want: int = 1, timeout: float = 3.0) -> list[dict[str, Any]]:
        return self._wait(self.pod.access_log, self.sidecar_start, want, timeout)

    def gateway_lines(self, want: int = 1, timeout: float = 3.0) -> list[dict[str, Any]]:
        return self._wait(self.gateway.access_log, self.gateway_start, want, timeout)

    @staticmethod
    def _wait(read: Any, start: int, want: int, timeout: float) -> list[dict[str, Any]]:
        """New lines once there are ``want`` of them (or whatever there is after ``timeout``; with
        ``want=0`` it waits the whole ``timeout`` so a late line is not missed)."""
        deadline = time.monotonic() + timeout
        while True:
            lines: list[dict[str, Any]] = read()[start:]
            if (want and len(lines) >= want) or time.monotonic() >= deadline:
                return lines
            time.sleep(0.05)


def replace_and_settle(
    lab: Any, objects: list[dict[str, Any]], quiet: float = 0.3, timeout: float = 10.0
) -> None:
    """``lab apply`` through the lab's API, then wait until the mesh sync (which also pushes every
    API change in the background, like istiod) has been quiet for ``quiet`` seconds, and push the
    API's objects once more: no push computed from a half-applied set lands after this returns."""
    plane = lab.control_plane
    plane.replace_objects(objects)
    deadline = time.monotonic() + timeout
    last = plane.pushes
    while time.monotonic() < deadline:
        time.sleep(quiet)
        if plane.pushes == last:
            break
        last = plane.pushes
    lab.apply(plane.mesh_objects())
