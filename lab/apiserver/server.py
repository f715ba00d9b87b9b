"""``ApiServer``: the stand-in API server's lifecycle — HTTPS on 127.0.0.1 (an ephemeral port, a
certificate from the lab CA) and on any further listeners (``serve_also``: an address inside the
lab's network, for pods), users and tokens, kubeconfigs, hooks, faults, pause/resume, and the
controllers started beside it.
"""

from __future__ import annotations

import base64
import contextlib
import re
import secrets
import socket
import ssl
import threading
from collections.abc import Callable, Sequence
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from lab.apiserver.admission import AdmissionChain, MutatingHook, ValidatingHook
from lab.apiserver.controllers import Controllers
from lab.apiserver.faults import Fault, Faults
from lab.apiserver.handler import ApiHandler
from lab.apiserver.portforward import PortDialer, no_dialer
from lab.apiserver.rbac import Authorizer, bootstrap_objects
from lab.apiserver.resources import Registry
from lab.apiserver.store import Store
from lab.apiserver.streams import LogSource, no_logs
from lab.certs import LabCA

BOOT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease", "istio-system")


class LabHTTPServer(ThreadingHTTPServer):
    """One listening socket; its connections are tracked so that close/pause can cut them."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(
        self, port: int, api: ApiServer, ssl_context: ssl.SSLContext, sock: socket.socket | None = None
    ) -> None:
        self.api = api
        self.ssl_context = ssl_context
        self._conns: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        self.handler_threads: list[threading.Thread] = []
        if sock is None:
            super().__init__(("127.0.0.1", port), ApiHandler)
            return
        # A socket bound elsewhere (e.g. inside a network namespace): serve it as it is.
        super().__init__(sock.getsockname(), ApiHandler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.server_address = sock.getsockname()
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])
        sock.listen(self.request_queue_size)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name="apiserver-conn",
            daemon=True,
        )
        with self._conn_lock:
            self.handler_threads = [t for t in self.handler_threads if t.is_alive()]
            self.handler_threads.append(thread)
        thread.start()

    def track(self, conn: socket.socket) -> None:
        with self._conn_lock:
            self._conns.add(conn)

    def untrack(self, conn: socket.socket) -> None:
        with self._conn_lock:
            self._conns.discard(conn)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # TLS handshakes cut short and clients that hang up are normal here

    def cut_connections(self) -> None:
        with self._conn_lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class ApiServer:
    """The stand-in Kubernetes API server (see the package docstring)."""

    def __init__(self, workdir: Path, ca: LabCA, *, istio_crds: bool = True) -> None:
        self.workdir = Path(workdir)
        self.ca = ca
        self.registry = Registry.default(istio_crds)
        self.admission = AdmissionChain()
        self.store = Store(self.registry, self.admission)
        self.authorizer = Authorizer(self.store)
        self.faults = Faults()
        self.log_source: LogSource = no_logs
        self.port_dialer: PortDialer = no_dialer
        self.stopping = threading.Event()
        self.port = 0
        self._users: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._lock = threading.Lock()
        self._http: LabHTTPServer | None = None
        self._serve: threading.Thread | None = None
        self._ssl: ssl.SSLContext | None = None
        self._also: list[tuple[Callable[[], socket.socket], ssl.SSLContext]] = []
        self._also_http: list[LabHTTPServer] = []
        self.controllers = Controllers(self.store, ca_pem=Path(ca.ca_file).read_text())
        self._admin_token = self.add_user("admin", ["system:masters"])
        for obj in bootstrap_objects():
            self.store.create(obj)
        for name in BOOT_NAMESPACES:
            self.store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    # ---- lifecycle -------------------------------------------------------------------------------

    def start(self) -> ApiServer:
        with self._lock:
            if self._http is not None:
                return self
            self._ssl = self.ca.context_for("127.0.0.1")
            self.stopping.clear()
            self._listen(self.port)
            self.controllers.start()
        return self

    def _listen(self, port: int) -> None:
        assert self._ssl is not None
        self._http = LabHTTPServer(port, self, self._ssl)
        self.port = self._http.server_address[1]
        self._serve = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.1}, name="apiserver", daemon=True
        )
        self._serve.start()
        for make_socket, context in self._also:
            self._serve_socket(make_socket(), context)

    def _serve_socket(self, sock: socket.socket, context: ssl.SSLContext) -> None:
        http = LabHTTPServer(0, self, context, sock)
        self._also_http.append(http)
        threading.Thread(
            target=http.serve_forever, kwargs={"poll_interval": 0.1}, name="apiserver-also", daemon=True
        ).start()

    def serve_also(self, make_socket: Callable[[], socket.socket], context: ssl.SSLContext) -> None:
        """Serve the API on one more listener as well: ``make_socket`` returns a bound TCP socket
        (called again after ``resume``), ``context`` presents that listener's certificate."""
        with self._lock:
            self._also.append((make_socket, context))
            if self._http is not None:
                self._serve_socket(make_socket(), context)

    def _stop_listening(self, timeout: float = 5.0) -> None:
        http, serve = self._http, self._serve
        self._http = self._serve = None
        if http is None:
            return
        servers, self._also_http = [http, *self._also_http], []
        for server in servers:
            with contextlib.suppress(Exception):
                server.shutdown()
            with contextlib.suppress(Exception):
                server.server_close()
        self.stopping.set()
        self.store.drop_watches()
        for server in servers:
            server.cut_connections()
        for thread in [*(t for s in servers for t in s.handler_threads), serve]:
            if thread is not None:
                thread.join(timeout)

    def close(self) -> None:
        """Stop serving, cut every connection, stop the controllers; idempotent, never raises."""
        with self._lock:
            with contextlib.suppress(Exception):
                self._stop_listening()
            with contextlib.suppress(Exception):
                self.controllers.close()
            with contextlib.suppress(Exception):
                self.store.close()

    def pause(self) -> None:
        """Stop answering: the port refuses connections until ``resume``."""
        with self._lock:
            self._stop_listening()

    def resume(self) -> None:
        with self._lock:
            if self._http is None and self._ssl is not None:
                self.stopping.clear()
                self._listen(self.port)

    @property
    def paused(self) -> bool:
        return self._http is None

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    # ---- users and kubeconfigs ---------------------------------------------------------------------

    def add_user(self, name: str, groups: Sequence[str] = (), token: str | None = None) -> str:
        token = token or secrets.token_hex(16)
        all_groups = tuple(dict.fromkeys([*groups, "system:authenticated"]))
        with self._lock:
            self._users = {t: u for t, u in self._users.items() if u[0] != name}
            self._users[token] = (name, all_groups)
        return token

    def user_for_token(self, token: str) -> tuple[str, tuple[str, ...]] | None:
        with self._lock:
            return self._users.get(token)

    def token_of(self, user: str) -> str:
        with self._lock:
            for token, (name, _) in self._users.items():
                if name == user:
                    return token
        raise KeyError(f"no such user: {user}")

    def kubeconfig(self, user: str = "admin", path: Path | None = None, namespace: str | None = None) -> Path:
        """Write a kubeconfig for ``user`` (context ``lab``, trusting the lab CA) and return its path."""
        safe = re.sub(r"[^A-Za-z0-9_.-]", "-", user)  # a ':' would split a KUBECONFIG path list
        path = path or self.workdir / ("kubeconfig" if user == "admin" else f"kubeconfig-{safe}")
        ca_data = base64.b64encode(Path(self.ca.ca_file).read_bytes()).decode()
        context: dict[str, Any] = {"cluster": "lab", "user": user}
        if namespace:
            context["namespace"] = namespace
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "clusters": [
                {"name": "lab", "cluster": {"server": self.url, "certificate-authority-data": ca_data}}
            ],
            "users": [{"name": user, "user": {"token": self.token_of(user)}}],
            "contexts": [{"name": "lab", "context": context}],
            "current-context": "lab",
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)
        return path

    # ---- hooks and faults -------------------------------------------------------------------------

    def add_mutating(self, fn: MutatingHook) -> None:
        self.admission.add_mutating(fn)

    def add_validating(self, fn: ValidatingHook) -> None:
        self.admission.add_validating(fn)

    def set_log_source(self, fn: LogSource) -> None:
        self.log_source = fn

    def set_port_dialer(self, fn: PortDialer) -> None:
        """``fn(namespace, pod, port, timeout)``: a socket connected to the pod's port, for
        ``pods/portforward`` (OSError with the reason when it cannot)."""
        self.port_dialer = fn

    def inject_fault(
        self,
        verb: str,
        resource: str,
        *,
        status: int = 500,
        message: str = "Internal error occurred: injected fault",
        times: int = 1,
        namespace: str | None = None,
    ) -> None:
        self.faults.add(Fault(verb, resource, status, message, times, namespace))

    def drop_watches(self) -> int:
        """Close every open watch stream now; returns how many were open."""
        return self.store.drop_watches()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until subscribers and controllers have seen every change so far (tests)."""
        return self.store.dispatcher.wait_idle(timeout) and self.controllers.wait_idle(timeout)
