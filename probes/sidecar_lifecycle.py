"""Is there a sidecar, is it ready, and asking it to quit (docs/probe-pod.md): ``detect``,
``wait_ready``, ``request_quit`` and ``record_quit``.
"""

from __future__ import annotations

import dataclasses
import time

from probes.model import SidecarEvidence
from probes.sidecar_admin import (
    DEFAULT_ADMIN,
    DEFAULT_AGENT,
    DEFAULT_STATUS,
    AdminEndpoint,
    AdminError,
    answers,
    find_admin,
)


def detect(admin: str = DEFAULT_ADMIN, timeout: float = 1.0, *, agent: str = DEFAULT_AGENT) -> bool:
    """True when Envoy admin (``GET /ready``; also ``[::1]:15000`` for the default) or the agent's
    readiness port answers. A refused connection fails fast, so "no sidecar" costs milliseconds."""
    return find_admin(admin, timeout) is not None or answers(agent, "/healthz/ready", timeout)


def wait_ready(timeout: float, *, agent: str = DEFAULT_AGENT, interval: float = 0.1) -> float | None:
    """Poll ``GET /healthz/ready`` on the agent until 200; seconds waited, ``None`` after ``timeout``."""
    start = time.monotonic()
    while True:
        left = timeout - (time.monotonic() - start)
        if left <= 0:
            return None
        try:
            with AdminEndpoint(agent, timeout=min(left, 1.0), max_bytes=64 * 1024) as ep:
                status, _ = ep.request("GET", "/healthz/ready")
            if status == 200:
                return time.monotonic() - start
        except AdminError:
            pass
        time.sleep(max(0.0, min(interval, timeout - (time.monotonic() - start))))


def request_quit(
    native: bool | None, *, status: str = DEFAULT_STATUS, timeout: float = 2.0
) -> tuple[bool, str | None]:
    """POST ``/quitquitquit`` to pilot-agent so a pod with a regular sidecar can complete.

    Refused (nothing is sent) for a native sidecar — the kubelet stops it after the app exits and
    would restart it if quit early (review §1.2) — and when nativeness is unknown (``None``): only
    the CLI, which created the pod and read its spec, can say it is a regular container. Never
    call this in ``--from`` mode (the CLI enforces it). Returns (quit requested, refusal/failure).
    """
    if native is None:
        return False, "refused: cannot tell whether the sidecar is native (the CLI must say it is not)"
    if native:
        return False, "refused: native sidecar (the kubelet stops it when the probe exits)"
    try:
        with AdminEndpoint(status, timeout=timeout, max_bytes=64 * 1024) as ep:
            code, body = ep.request("POST", "/quitquitquit")
    except (AdminError, ValueError) as exc:
        return False, f"quitquitquit failed: {exc}"
    if code != 200:
        return False, f"quitquitquit answered HTTP {code}: {body[:80].decode('utf-8', 'replace').strip()}"
    return True, None


def record_quit(evidence: SidecarEvidence, outcome: tuple[bool, str | None]) -> SidecarEvidence:
    """``evidence`` with ``quit_requested`` / ``quit_refused_reason`` set from ``request_quit``."""
    requested, reason = outcome
    return dataclasses.replace(evidence, quit_requested=requested, quit_refused_reason=reason)
