"""How the Kubernetes API's answers become meshprobe errors: one table, ``api_error``, used by
every request ``diag.cluster`` sends (no ``kubernetes`` import here: the client's exceptions are
recognised by name, so this module stays importable without it).

| API answer                                   | meshprobe error (exit code)                         |
|----------------------------------------------|-----------------------------------------------------|
| no answer, TLS failure, timeout              | ClusterUnreachable (4)                              |
| 401                                          | PermissionDenied: credentials refused (4)           |
| 403 from the authorizer (``User "u" cannot``) | PermissionDenied naming verb and resource (4)       |
| 403/400/422 from admission                   | AdmissionDenied quoting the controller (4)          |
| 404                                          | NotFound (callers decide: bad input, or Istio absent)|
| 409                                          | Conflict (4)                                        |
| 410 (watch too old)                          | WatchExpired (the caller re-lists)                  |
| 5xx, anything else                           | InfraError with the server's message (4)            |
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

from diag import errors

_AUTHORIZER = re.compile(
    r'User "(?P<user>[^"]*)" cannot (?P<verb>\S+) resource "(?P<resource>[^"]+)" '
    r'in API group "(?P<group>[^"]*)"'
    r'(?: in the namespace "(?P<ns>[^"]*)"| at the cluster scope)?'
)


class NotFound(errors.InfraError):
    """The API answered 404 (callers turn it into a usage error or a note)."""


class Conflict(errors.InfraError):
    """The API answered 409."""


class WatchExpired(errors.InfraError):
    """A watch's resourceVersion is too old (410): list again."""


@dataclass(frozen=True)
class Status:
    code: int
    reason: str
    message: str


def api_error(status: Status, what: str) -> errors.MeshprobeError:
    """The meshprobe error for an API failure (the table in the module docstring). ``what`` says
    what was being done (``create job shop/meshprobe-x``) for messages that need it."""
    message = " ".join(status.message.split()) or status.reason
    if status.code == 0:
        return errors.ClusterUnreachable(f"cannot reach the Kubernetes API ({what}): {message}")
    if status.code == 401:
        return errors.PermissionDenied(
            f"the API server refused the credentials ({what}): 401 Unauthorized",
            hint="check the kubeconfig's user (token expired? run your cloud's login command)",
        )
    if status.code == 403:
        denied = _AUTHORIZER.search(message)
        if denied is not None:
            group = f"{denied['group']}/" if denied["group"] else ""
            where = (
                f" in namespace {denied['ns']}"
                if denied["ns"]
                else (" at cluster scope" if "cluster scope" in message else "")
            )
            return errors.PermissionDenied(
                f"permission denied: {denied['user']} cannot {denied['verb']} "
                f"{group}{denied['resource']}{where}"
            )
        return errors.AdmissionDenied(f"rejected at admission: {message}")
    if status.code in (400, 422) and ("admission webhook" in message or "forbidden" in message):
        return errors.AdmissionDenied(f"rejected at admission: {message}")
    if status.code == 404:
        return NotFound(f"not found ({what}): {message}")
    if status.code == 409:
        return Conflict(f"conflict ({what}): {message}")
    if status.code == 410:
        return WatchExpired(message)
    if status.code in (400, 422):
        return errors.AdmissionDenied(f"the API server rejected {what}: {message}")
    return errors.InfraError(f"the API server failed ({what}): {status.code} {message}")


def status_of(code: int, reason: str, body: bytes) -> Status:
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        data = {}
    if isinstance(data, dict) and data.get("kind") == "Status":
        return Status(code, str(data.get("reason") or reason), str(data.get("message") or reason))
    text = body.decode("utf-8", "replace").strip()[:300] if body else reason
    return Status(code, reason, text or reason)


def is_connection_error(exc: BaseException) -> bool:
    names = {type(e).__name__ for e in _chain(exc)}
    return bool(
        names
        & {
            "MaxRetryError",
            "NewConnectionError",
            "ProtocolError",
            "ReadTimeoutError",
            "ConnectTimeoutError",
            "ConnectionError",
            "ConnectionRefusedError",
            "ConnectionResetError",
            "TimeoutError",
            "SSLError",
            "IncompleteRead",
            "RemoteDisconnected",
            "SocketTimeout",
            "timeout",
        }
    )


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        reason = getattr(current, "reason", None)
        current = reason if isinstance(reason, BaseException) else (current.__cause__ or current.__context__)


def short_reason(text: str) -> str:
    """urllib3's messages repeat the pool and object reprs: keep what a person needs."""
    match = re.search(
        r"\[Errno -?\d+\] [^')\"]+|timed out|Connection refused|certificate verify failed[^')\"]*", text
    )
    return match.group(0) if match else text[:200]
