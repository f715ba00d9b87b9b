"""The one door to the cluster: the only module that imports ``kubernetes`` (lazily, inside
functions, so ``meshprobe --help`` never pays for it).

``Cluster.connect(kubeconfig, context, namespace)`` resolves the config as kubectl does:
``--kubeconfig`` > ``KUBECONFIG`` (several files joined by ``:``, merged, first wins) >
``~/.kube/config``; with none of those inside a pod (a CronJob), the in-cluster service account.
The namespace is ``-n``, else the context's namespace, else ``default`` (in-cluster: the pod's).

Every request goes through ``Cluster.request`` — the real client's configuration, auth and TLS,
objects as plain dicts — and every failure through one table, ``api_error``:

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
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from diag import errors

IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
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


def _status_of(code: int, reason: str, body: bytes) -> Status:
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        data = {}
    if isinstance(data, dict) and data.get("kind") == "Status":
        return Status(code, str(data.get("reason") or reason), str(data.get("message") or reason))
    text = body.decode("utf-8", "replace").strip()[:300] if body else reason
    return Status(code, reason, text or reason)


@dataclass(frozen=True)
class Target:
    """Which cluster and namespace a run talks to."""

    context: str
    namespace: str
    server: str


class Cluster:
    """A connection to one cluster context (see the module docstring)."""

    def __init__(self, client: Any, target: Target, *, timeout: float = 10.0) -> None:
        self._client = client
        self.target = target
        self.timeout = timeout

    @property
    def namespace(self) -> str:
        return self.target.namespace

    @property
    def context(self) -> str:
        return self.target.context

    # ---- connecting ----------------------------------------------------------------------------

    @classmethod
    def connect(
        cls, kubeconfig: str | None = None, context: str | None = None, namespace: str | None = None
    ) -> Cluster:
        from kubernetes import client as k8s
        from kubernetes import config as k8s_config
        from kubernetes.config.config_exception import ConfigException

        path = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        files = [p for p in path.split(os.pathsep) if p]
        have_file = any(Path(os.path.expanduser(p)).exists() for p in files)
        if kubeconfig is not None and not Path(os.path.expanduser(kubeconfig)).exists():
            raise errors.UsageError(f"--kubeconfig {kubeconfig}: no such file")
        configuration = k8s.Configuration()
        try:
            if not have_file and os.environ.get("KUBERNETES_SERVICE_HOST"):
                k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
                ns = namespace or _read(IN_CLUSTER_NAMESPACE) or "default"
                target = Target("in-cluster", ns, configuration.host)
            else:
                contexts, active = k8s_config.list_kube_config_contexts(config_file=path)  # type: ignore[no-untyped-call]
                chosen = _pick_context(contexts, active, context)
                k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                    config_file=path, context=chosen["name"], client_configuration=configuration
                )
                ns = namespace or (chosen.get("context") or {}).get("namespace") or "default"
                target = Target(chosen["name"], ns, configuration.host)
        except ConfigException as exc:
            raise errors.ClusterUnreachable(f"no usable kubeconfig: {' '.join(str(exc).split())}") from None
        except (OSError, ValueError) as exc:
            raise errors.ClusterUnreachable(f"cannot read the kubeconfig {path}: {exc}") from None
        # Idempotent requests are retried when a kept-alive connection turns out closed (urllib3
        # counts that as a read error); a POST or PATCH is never sent twice.
        from urllib3.util.retry import Retry

        configuration.retries = Retry(total=3, connect=2, read=2, status=0, other=0, redirect=0)
        return cls(k8s.ApiClient(configuration), target)

    def close(self) -> None:
        close = getattr(self._client, "close", None)
        if close is not None:
            close()

    # ---- requests ------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        what: str = "",
        timeout: float | None = None,
        raw: bool = False,
    ) -> Any:
        """One API call; the decoded JSON body (or bytes with ``raw``); errors per ``api_error``."""
        response = self._send(method, path, query, body, content_type, timeout, stream=False)
        data: bytes = response.read() or b""
        if not 200 <= response.status < 300:
            raise api_error(
                _status_of(response.status, response.reason or "", data), what or f"{method} {path}"
            )
        if raw:
            return data
        return json.loads(data) if data else {}

    def stream(
        self,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        what: str = "",
        timeout: float | None = None,
    ) -> Iterator[bytes]:
        """GET ``path`` and yield the body's lines as they arrive (watches, followed logs)."""
        response = self._send("GET", path, query, None, "application/json", timeout, stream=True)
        raw = response.response
        if not 200 <= response.status < 300:
            data = raw.read() or b""
            raise api_error(_status_of(response.status, response.reason or "", data), what or f"GET {path}")
        buffer = b""
        try:
            for chunk in raw.stream(8192, decode_content=True):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield line
            if buffer.strip():
                yield buffer
        except Exception as exc:
            if _is_connection_error(exc):
                return  # the server closed the stream: the caller watches again
            raise
        finally:
            raw.close()  # a stream's connection is not reused: the server may have ended it

    def _send(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None,
        body: Any,
        content_type: str,
        timeout: float | None,
        *,
        stream: bool,
    ) -> Any:
        client = self._client
        headers = {"Accept": "application/json", "Content-Type": content_type}
        payload = body  # the client serializes JSON bodies itself
        try:
            method_, url, headers, payload, post = client.param_serialize(
                method=method,
                resource_path=path,
                query_params=list((query or {}).items()),
                header_params=headers,
                body=payload,
                auth_settings=["BearerToken"],
            )
            read_timeout = None if stream and timeout is None else (timeout or self.timeout)
            return client.call_api(method_, url, headers, payload, post, _request_timeout=(5.0, read_timeout))
        except Exception as exc:
            status = getattr(exc, "status", None)
            if status not in (None, 0) and not _is_connection_error(exc):
                raise
            reason = " ".join(str(getattr(exc, "reason", None) or exc).split())
            raise api_error(Status(0, "unreachable", _short(reason)), f"{method} {path}") from None

    # ---- typed conveniences --------------------------------------------------------------------

    def get(self, path: str, what: str = "") -> dict[str, Any]:
        out: dict[str, Any] = self.request("GET", path, what=what)
        return out

    def list(self, path: str, *, label_selector: str | None = None, what: str = "") -> list[dict[str, Any]]:
        query = {"labelSelector": label_selector} if label_selector else None
        data = self.request("GET", path, query=query, what=what)
        return list(data.get("items") or [])

    def server_version(self) -> tuple[int, int]:
        """(major, minor) of the API server; (0, 0) when it does not say."""
        data = self.request("GET", "/version", what="read the server version")
        try:
            return int(str(data.get("major", "0")).strip("+")), int(str(data.get("minor", "0")).strip("+"))
        except ValueError:
            return 0, 0

    def can_i(
        self, verb: str, resource: str, namespace: str | None, *, group: str = "", subresource: str = ""
    ) -> bool:
        """SelfSubjectAccessReview (what ``kubectl auth can-i`` asks)."""
        attrs = {"verb": verb, "resource": resource, "group": group, "subresource": subresource}
        if namespace:
            attrs["namespace"] = namespace
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attrs},
        }
        data = self.request(
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            body=review,
            what=f"ask whether we may {verb} {resource}",
        )
        return bool((data.get("status") or {}).get("allowed"))


def resource_path(
    group: str,
    version: str,
    resource: str,
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
) -> str:
    """``/api/v1/...`` or ``/apis/GROUP/VERSION/...`` for a resource (name quoted)."""
    base = f"/api/{version}" if not group else f"/apis/{group}/{version}"
    if namespace:
        base += f"/namespaces/{quote(namespace, safe='')}"
    base += f"/{resource}"
    if name:
        base += f"/{quote(name, safe='')}"
    if subresource:
        base += f"/{subresource}"
    return base


def _pick_context(
    contexts: Sequence[Mapping[str, Any]], active: Mapping[str, Any] | None, wanted: str | None
) -> Mapping[str, Any]:
    if wanted is None:
        if active is None:
            raise errors.ClusterUnreachable("the kubeconfig has no current-context; pass --context")
        return active
    for ctx in contexts or []:
        if ctx.get("name") == wanted:
            return ctx
    names = ", ".join(str(c.get("name")) for c in contexts or []) or "none"
    raise errors.UsageError(f"--context {wanted}: no such context in the kubeconfig (have: {names})")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def _is_connection_error(exc: BaseException) -> bool:
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


def _short(text: str) -> str:
    """urllib3's messages repeat the pool and object reprs: keep what a person needs."""
    match = re.search(
        r"\[Errno -?\d+\] [^')\"]+|timed out|Connection refused|certificate verify failed[^')\"]*", text
    )
    return match.group(0) if match else text[:200]
