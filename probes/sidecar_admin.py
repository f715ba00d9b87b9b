"""The sidecar's loopback HTTP endpoints, bounded: Envoy admin (``:15000``, also ``[::1]`` in
IPv6-only pods), pilot-agent readiness (``:15021``) and status (``:15020``). Every call has a
deadline and a response-size cap (admin responses can be tens of MB in big meshes, review §1.5);
a failure is an :class:`AdminError` with a one-line message.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import httpx

DEFAULT_ADMIN = "127.0.0.1:15000"
DEFAULT_ADMIN_V6 = "[::1]:15000"  # IPv6-only pods (review §1.5)
DEFAULT_AGENT = "127.0.0.1:15021"  # pilot-agent readiness
DEFAULT_STATUS = "127.0.0.1:15020"  # pilot-agent status: /quitquitquit
MAX_RESPONSE_BYTES = 4 * 1024 * 1024


class AdminError(Exception):
    """An admin/agent call failed (unreachable, non-200, oversized, not JSON); one-line message.
    ``refused``: nothing listens there (the connection itself failed)."""

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


def base_url(address: str) -> str:
    """``"127.0.0.1:15000"`` / ``"[::1]:15000"`` / ``"::1:15000"`` → ``"http://HOST:PORT"``."""
    if address.startswith("["):
        return f"http://{address}"
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"admin address must be HOST:PORT, got {address!r}")
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class AdminEndpoint:
    """One loopback HTTP endpoint with a deadline and a response-size cap (proxies ignored)."""

    def __init__(self, address: str, *, timeout: float, max_bytes: int = MAX_RESPONSE_BYTES) -> None:
        self.address = address
        self.base = base_url(address)
        self.deadline = time.monotonic() + timeout
        self.timeout = timeout
        self.max_bytes = max_bytes
        # Plain HTTP on loopback: no TLS, so no CA bundle to load (that alone costs ~0.1 s per client).
        self.client = httpx.Client(trust_env=False, timeout=timeout, verify=False)

    def __enter__(self) -> AdminEndpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def request(
        self, method: str, path: str, params: Mapping[str, str] | None = None, max_bytes: int | None = None
    ) -> tuple[int, bytes]:
        cap = self.max_bytes if max_bytes is None else max_bytes
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise AdminError(f"{path}: out of time ({self.timeout:g}s budget)")
        body = bytearray()
        try:
            with self.client.stream(method, self.base + path, params=params, timeout=left) as resp:
                for chunk in resp.iter_bytes():
                    body += chunk
                    if len(body) > cap:
                        raise AdminError(f"{path}: response larger than {cap} bytes")
                    if time.monotonic() > self.deadline:
                        raise AdminError(f"{path}: out of time ({self.timeout:g}s budget)")
                return resp.status_code, bytes(body)
        except httpx.HTTPError as exc:
            message = f"{path}: {type(exc).__name__}: {exc}".rstrip(": ")
            raise AdminError(message, refused=isinstance(exc, httpx.ConnectError)) from exc

    def get_json(
        self, path: str, params: Mapping[str, str] | None = None, max_bytes: int | None = None
    ) -> Any:
        status, body = self.request("GET", path, params, max_bytes)
        if status != 200:
            raise AdminError(f"{path}: HTTP {status}: {body[:120].decode('utf-8', 'replace').strip()}")
        try:
            return json.loads(body) if body.strip() else {}
        except ValueError as exc:
            raise AdminError(f"{path}: not JSON ({exc})") from exc


def answers(address: str, path: str, timeout: float) -> bool:
    """Any HTTP answer at all (even 503) means something listens there."""
    try:
        with AdminEndpoint(address, timeout=timeout, max_bytes=64 * 1024) as ep:
            ep.request("GET", path)
        return True
    except (AdminError, ValueError):
        return False


def admin_candidates(admin: str) -> list[str]:
    """``admin``, then the same port on ``[::1]`` when ``admin`` is on 127.0.0.1 (IPv6-only pods)."""
    host, _, port = admin.rpartition(":")
    return [admin, f"[::1]:{port}"] if host == "127.0.0.1" else [admin]


def find_admin(admin: str = DEFAULT_ADMIN, timeout: float = 1.0) -> str | None:
    """The admin address that answers: ``admin``, else ``[::1]:PORT`` (see ``admin_candidates``)."""
    return next((a for a in admin_candidates(admin) if answers(a, "/ready", timeout)), None)


def open_admin(
    admin: str, timeout: float, path: str, params: Mapping[str, str] | None = None
) -> tuple[AdminEndpoint, Any]:
    """An endpoint on the first candidate address that answers ``GET path`` with JSON, and that
    JSON. Falls back to ``[::1]`` only when 127.0.0.1 refused (a slow admin is not retried)."""
    last: AdminError | None = None
    for candidate in admin_candidates(admin):
        ep = AdminEndpoint(candidate, timeout=timeout)
        try:
            return ep, ep.get_json(path, params)
        except AdminError as exc:
            ep.client.close()
            last = exc
            if not exc.refused:
                break
    assert last is not None
    raise last
