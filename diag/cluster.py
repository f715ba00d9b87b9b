"""The one door to the cluster: the only module that imports ``kubernetes`` (lazily, inside
functions, so ``meshprobe --help`` never pays for it).

``Cluster.connect(kubeconfig, context, namespace)`` resolves the config as kubectl does:
``--kubeconfig`` > ``KUBECONFIG`` (several files joined by ``:``, merged, first wins) >
``~/.kube/config``; with none of those inside a pod (a CronJob), the in-cluster service account.
The namespace is ``-n``, else the context's namespace, else ``default`` (in-cluster: the pod's).

Every request goes through ``Cluster.request`` — the real client's configuration, auth and TLS,
objects as plain dicts — and every failure through one table, ``api_error`` (``diag.apierrors``).

Only a few modules of the client are used: its ``Configuration``, ``ApiClient`` (and through it
``rest``), and the kubeconfig/in-cluster loaders. ``_kubernetes()`` imports just those, without
running the ``__init__`` of the ``kubernetes``, ``kubernetes.config`` and ``kubernetes.utils``
packages (which import every other part of the client: dynamic, watch, stream, informers, leader
election, YAML creation): each package is registered as a bare module object
(``importlib.util.module_from_spec``), its submodules are imported normally, and the first lookup
of a name the bare package does not hold runs its ``__init__`` then (a module ``__getattr__``),
so code that imports the whole client later in the same process sees the usual package. If the
client's layout differs, the usual ``from kubernetes import client, config`` is the fallback.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from diag import errors
from diag.apierrors import (
    Conflict,
    NotFound,
    Status,
    WatchExpired,
    api_error,
    is_connection_error,
    short_reason,
    status_of,
)

__all__ = [
    "Cluster",
    "Conflict",
    "NotFound",
    "Status",
    "Target",
    "WatchExpired",
    "api_error",
    "resource_path",
]

IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


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
        k8s = _kubernetes()
        path = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        files = [p for p in path.split(os.pathsep) if p]
        have_file = any(Path(os.path.expanduser(p)).exists() for p in files)
        if kubeconfig is not None and not Path(os.path.expanduser(kubeconfig)).exists():
            raise errors.UsageError(f"--kubeconfig {kubeconfig}: no such file")
        configuration = k8s.Configuration()
        try:
            if not have_file and os.environ.get("KUBERNETES_SERVICE_HOST"):
                k8s.incluster_config.load_incluster_config(client_configuration=configuration)
                ns = namespace or _read(IN_CLUSTER_NAMESPACE) or "default"
                target = Target("in-cluster", ns, configuration.host)
            else:
                contexts, active = k8s.kube_config.list_kube_config_contexts(config_file=path)
                chosen = _pick_context(contexts, active, context)
                k8s.kube_config.load_kube_config(
                    config_file=path, context=chosen["name"], client_configuration=configuration
                )
                ns = namespace or (chosen.get("context") or {}).get("namespace") or "default"
                target = Target(chosen["name"], ns, configuration.host)
        except k8s.ConfigException as exc:
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
                status_of(response.status, response.reason or "", data), what or f"{method} {path}"
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
            raise api_error(status_of(response.status, response.reason or "", data), what or f"GET {path}")
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
            if is_connection_error(exc):
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
            if status not in (None, 0) and not is_connection_error(exc):
                raise
            reason = " ".join(str(getattr(exc, "reason", None) or exc).split())
            raise api_error(Status(0, "unreachable", short_reason(reason)), f"{method} {path}") from None

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

    def port_forward_get(
        self, namespace: str, pod: str, port: int, path: str, *, timeout: float = 5.0
    ) -> tuple[int, bytes]:
        """GET ``path`` on ``pod``'s ``port`` through ``pods/portforward`` (``diag.portforward``):
        (HTTP status, body). One connection, bounded by ``timeout``; errors per ``api_error``, or
        ``PortForwardFailed`` when the pod's port cannot be reached."""
        from diag import portforward

        api_path = resource_path("", "v1", "pods", namespace, pod, "portforward")
        what = f"port-forward to {namespace}/{pod}:{port}"
        client = self._client
        try:
            _, url, headers, _, _ = client.param_serialize(
                method="GET",
                resource_path=api_path,
                query_params=[("ports", str(port))],
                header_params={},
                auth_settings=["BearerToken"],
            )
        except Exception as exc:  # an exec credential plugin failing, say
            raise api_error(Status(0, "unreachable", short_reason(str(exc))), what) from None
        scheme, sep, rest = str(url).partition("://")
        url = ("wss" if scheme == "https" else "ws") + sep + rest
        reply = portforward.http_get(
            url,
            {k: str(v) for k, v in headers.items() if k.lower() == "authorization"},
            _websocket_ssl(client.configuration),
            port,
            path,
            timeout=timeout,
            what=what,
        )
        return reply.status, reply.body


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


def _websocket_ssl(configuration: Any) -> dict[str, Any]:
    """websocket-client's TLS options from the client's configuration (as kubectl would verify)."""
    import ssl

    opts: dict[str, Any] = {"cert_reqs": ssl.CERT_NONE}
    if getattr(configuration, "verify_ssl", True):
        opts = {"cert_reqs": ssl.CERT_REQUIRED}
        if configuration.ssl_ca_cert:
            opts["ca_certs"] = configuration.ssl_ca_cert
        if configuration.assert_hostname is not None:
            opts["check_hostname"] = configuration.assert_hostname
    if configuration.cert_file:
        opts["certfile"] = configuration.cert_file
    if configuration.key_file:
        opts["keyfile"] = configuration.key_file
    if getattr(configuration, "tls_server_name", None):
        opts["server_hostname"] = configuration.tls_server_name
    return opts


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


# ---- the client's modules (see the module docstring) ---------------------------------------------

_BARE_PACKAGES = ("kubernetes", "kubernetes.config", "kubernetes.utils")
_MODULES = (
    "kubernetes.client.configuration",
    "kubernetes.client.api_client",
    "kubernetes.config.config_exception",
    "kubernetes.config.kube_config",
    "kubernetes.config.incluster_config",
)
_load_lock = threading.Lock()
_loaded: list[_Kubernetes] = []


@dataclass(frozen=True)
class _Kubernetes:
    """The parts of the ``kubernetes`` client that ``connect`` uses."""

    Configuration: Any
    ApiClient: Any
    kube_config: Any
    incluster_config: Any
    ConfigException: type[Exception]
    bare: bool  # loaded without running the packages' __init__


def _kubernetes() -> _Kubernetes:
    with _load_lock:
        if not _loaded:
            try:
                _loaded.append(_load_bare())
            except (ImportError, AttributeError):
                _loaded.append(_load_whole())
        return _loaded[0]


def _load_bare() -> _Kubernetes:
    before = set(sys.modules)
    try:
        for name in _BARE_PACKAGES:
            if name not in sys.modules:
                _register_bare(name)
        configuration, api_client, config_exception, kube_config, incluster = map(
            importlib.import_module, _MODULES
        )
        return _Kubernetes(
            configuration.Configuration,
            api_client.ApiClient,
            kube_config,
            incluster,
            config_exception.ConfigException,
            bare=True,
        )
    except (ImportError, AttributeError):  # another layout: forget what this attempt imported
        for name in set(sys.modules) - before:
            if name == "kubernetes" or name.startswith("kubernetes."):
                del sys.modules[name]
        raise


def _load_whole() -> _Kubernetes:
    from kubernetes import client, config
    from kubernetes.config import config_exception, incluster_config, kube_config

    del config  # imported for its side effect: the package as the client documents it
    return _Kubernetes(
        client.Configuration,
        client.ApiClient,
        kube_config,
        incluster_config,
        config_exception.ConfigException,
        bare=False,
    )


def _register_bare(name: str) -> None:
    """Put package ``name`` in ``sys.modules`` without running its ``__init__``; the first lookup
    of a name it does not hold runs it (PEP 562 ``__getattr__``), as a plain import would have."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        raise ImportError(f"{name} is not a package")
    module = importlib.util.module_from_spec(spec)
    loader = spec.loader
    lock = threading.Lock()

    def complete(attr: str) -> Any:
        with lock:
            if module.__dict__.get("__getattr__") is complete:
                del module.__dict__["__getattr__"]
                loader.exec_module(module)
        return getattr(module, attr)

    module.__dict__["__getattr__"] = complete
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)
