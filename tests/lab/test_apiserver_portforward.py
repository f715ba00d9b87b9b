"""``pods/portforward`` over the websocket protocol in the stand-in API server, through meshprobe's
``Cluster.port_forward_get`` and the ``kubernetes`` client's own ``stream.portforward``: the reply of
the pod's port, RBAC (``get`` and ``create`` on ``pods/portforward``), and every failure as the
meshprobe error a user sees."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from diag import errors
from diag.apierrors import NotFound
from diag.cluster import Cluster
from diag.portforward import PortForwardFailed, _parse_http
from lab.apiserver import ApiServer
from lab.certs import LabCA

RBAC = "rbac.authorization.k8s.io"
DUMP = b'{"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump"}]}' * 2000


class _Admin(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = DUMP if self.path == "/config_dump" else b"no such admin path\n"
        self.send_response(200 if self.path == "/config_dump" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def admin_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Admin)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def silent() -> Iterator[socket.socket]:
    """A port that accepts and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock
    sock.close()


@pytest.fixture(scope="module")
def api(
    tmp_path_factory: pytest.TempPathFactory, admin_port: int, silent: socket.socket
) -> Iterator[ApiServer]:
    workdir = tmp_path_factory.mktemp("apiserver")
    with ApiServer(workdir, LabCA(workdir)) as server:
        for name, node in (("gw", "lab-node"), ("pending", "")):
            spec: dict[str, Any] = {"containers": [{"name": "istio-proxy", "image": "x"}]}
            if node:
                spec["nodeName"] = node
            server.store.create(
                {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "istio-system"},
                 "spec": spec}
            )  # fmt: skip
        dialled: list[tuple[str, str, int]] = []

        def dial(namespace: str, pod: str, port: int, timeout: float) -> socket.socket:
            dialled.append((namespace, pod, port))
            if port == 15000:
                return socket.create_connection(("127.0.0.1", admin_port), timeout)
            if port == 15001:
                return socket.create_connection(silent.getsockname(), timeout)
            raise OSError(f"failed to connect to localhost:{port}: connection refused")

        server.store.patch_status("pods", "istio-system", "gw", {"phase": "Running"})  # kubectl checks it
        server.set_port_dialer(dial)
        server.dialled = dialled  # type: ignore[attr-defined]
        yield server


def cluster_as(api: ApiServer, user: str, rules: list[dict[str, Any]] | None = None) -> Cluster:
    if user != "admin":
        api.add_user(user)
        if rules is not None:
            api.store.create(
                {
                    "apiVersion": f"{RBAC}/v1",
                    "kind": "Role",
                    "metadata": {"name": user, "namespace": "istio-system"},
                    "rules": rules,
                }
            )
            api.store.create({"apiVersion": f"{RBAC}/v1", "kind": "RoleBinding",
                              "metadata": {"name": user, "namespace": "istio-system"},
                              "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": user},
                              "subjects": [{"kind": "User", "name": user, "apiGroup": RBAC}]})  # fmt: skip
    return Cluster.connect(str(api.kubeconfig(user)))


def test_get_through_the_forwarded_port(api: ApiServer) -> None:
    cluster = cluster_as(api, "admin")
    status, body = cluster.port_forward_get("istio-system", "gw", 15000, "/config_dump", timeout=5)
    assert (status, body) == (200, DUMP)
    assert ("istio-system", "gw", 15000) in api.dialled  # type: ignore[attr-defined]
    status, body = cluster.port_forward_get("istio-system", "gw", 15000, "/nope", timeout=5)
    assert (status, body) == (404, b"no such admin path\n")


def test_the_kubernetes_clients_own_portforward(api: ApiServer) -> None:
    from kubernetes import client, config
    from kubernetes.stream import portforward

    core = client.CoreV1Api(config.new_client_from_config(config_file=str(api.kubeconfig())))
    forward = portforward(core.connect_get_namespaced_pod_portforward, "gw", "istio-system", ports="15000")
    sock = forward.socket(15000)
    sock.setblocking(True)
    sock.sendall(b"GET /config_dump HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    sock.close()
    assert data.startswith(b"HTTP/1.1 200 ")
    assert data.endswith(DUMP)
    assert forward.error(15000) is None


def test_rbac_needs_get_and_create_on_pods_portforward(api: ApiServer) -> None:
    admin = cluster_as(api, "admin")
    both = cluster_as(api, "pf-both", [{"apiGroups": [""], "resources": ["pods/portforward"],
                                         "verbs": ["get", "create"]}])  # fmt: skip
    assert both.can_i("create", "pods", "istio-system", subresource="portforward")
    assert both.port_forward_get("istio-system", "gw", 15000, "/config_dump", timeout=5)[0] == 200
    get_only = cluster_as(
        api, "pf-get", [{"apiGroups": [""], "resources": ["pods/portforward"], "verbs": ["get"]}]
    )
    assert not get_only.can_i("create", "pods", "istio-system", subresource="portforward")
    with pytest.raises(errors.PermissionDenied) as denied:
        get_only.port_forward_get("istio-system", "gw", 15000, "/config_dump", timeout=5)
    assert (
        str(denied.value)
        == "permission denied: pf-get cannot create pods/portforward in namespace istio-system"
    )
    nothing = cluster_as(api, "pf-none", None)
    with pytest.raises(errors.PermissionDenied) as denied:
        nothing.port_forward_get("istio-system", "gw", 15000, "/config_dump", timeout=5)
    assert "pf-none cannot get pods/portforward in namespace istio-system" in str(denied.value)
    assert admin.can_i("create", "pods", "istio-system", subresource="portforward")


def test_missing_and_unscheduled_pods(api: ApiServer) -> None:
    cluster = cluster_as(api, "admin")
    with pytest.raises(NotFound, match='pods "ghost" not found'):
        cluster.port_forward_get("istio-system", "ghost", 15000, "/config_dump", timeout=5)
    with pytest.raises(errors.AdmissionDenied, match="pod pending does not have a host assigned"):
        cluster.port_forward_get("istio-system", "pending", 15000, "/config_dump", timeout=5)


def test_a_refused_port_comes_back_on_the_error_channel(api: ApiServer) -> None:
    cluster = cluster_as(api, "admin")
    with pytest.raises(PortForwardFailed) as failed:
        cluster.port_forward_get("istio-system", "gw", 15999, "/config_dump", timeout=5)
    message = str(failed.value)
    assert "error forwarding port 15999 to pod gw, uid " in message
    assert "connection refused" in message


def test_a_silent_port_times_out_within_the_bound(api: ApiServer) -> None:
    cluster = cluster_as(api, "admin")
    started = time.monotonic()
    with pytest.raises(errors.ClusterUnreachable, match="no reply from the forwarded port in time"):
        cluster.port_forward_get("istio-system", "gw", 15001, "/config_dump", timeout=1.0)
    assert time.monotonic() - started < 2.5


def test_an_unreachable_api_server(api: ApiServer, tmp_path: Path) -> None:
    cluster = cluster_as(api, "admin")
    api.pause()
    try:
        with pytest.raises(errors.ClusterUnreachable, match="port-forward to istio-system/gw:15000"):
            cluster.port_forward_get("istio-system", "gw", 15000, "/config_dump", timeout=2)
    finally:
        api.resume()


def test_spdy_is_not_served(api: ApiServer) -> None:
    cluster = cluster_as(api, "admin")
    with pytest.raises(errors.AdmissionDenied, match="Upgrade request required"):
        cluster.request(
            "POST", "/api/v1/namespaces/istio-system/pods/gw/portforward", query={"ports": "15000"}
        )


def test_reply_parsing() -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    assert _parse_http(chunked, "x").body == b"hello world"
    sized = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 3\r\n\r\nabcdef"
    assert (_parse_http(sized, "x").status, _parse_http(sized, "x").body) == (503, b"abc")
    with pytest.raises(PortForwardFailed, match="did not answer HTTP"):
        _parse_http(b"SSH-2.0-OpenSSH\r\n", "x")
    with pytest.raises(PortForwardFailed, match="did not answer HTTP"):
        _parse_http(b"", "x")


# ---- kubectl port-forward (SPDY/3.1 in a websocket, or a plain SPDY upgrade) ----------------------


def _kubectl_forward(api: ApiServer, remote: int, websockets: bool) -> tuple[subprocess.Popen[str], int]:
    assert shutil.which("kubectl"), "kubectl is needed for the fidelity tests"
    env = {**os.environ, "KUBECTL_PORT_FORWARD_WEBSOCKETS": "true" if websockets else "false"}
    proc = subprocess.Popen(
        ["kubectl", "--kubeconfig", str(api.kubeconfig()), "-n", "istio-system", "port-forward",
         "--address", "127.0.0.1", "pod/gw", f":{remote}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "Forwarding from 127.0.0.1:PORT -> REMOTE"
    found = re.match(rf"Forwarding from 127\.0\.0\.1:(\d+) -> {remote}", line)
    if found is None:
        proc.kill()
        raise AssertionError(f"kubectl port-forward did not start: {line!r} {proc.communicate()[1]!r}")
    return proc, int(found.group(1))


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    try:
        return proc.communicate(timeout=10)[1]
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()[1]


@pytest.mark.parametrize("websockets", [True, False], ids=["websocket-tunnel", "spdy-upgrade"])
def test_kubectl_port_forward(api: ApiServer, websockets: bool) -> None:
    proc, local = _kubectl_forward(api, 15000, websockets)
    try:
        for _ in range(2):  # one forward, two connections (two stream pairs)
            with urllib.request.urlopen(f"http://127.0.0.1:{local}/config_dump", timeout=10) as reply:
                assert reply.status == 200
                assert reply.read() == DUMP
    finally:
        _stop(proc)


def test_kubectl_sees_the_error_stream(api: ApiServer) -> None:
    proc, local = _kubectl_forward(api, 15999, True)
    try:
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{local}/", timeout=10).read()
    finally:
        err = _stop(proc)
    assert "error forwarding port 15999 to pod gw, uid " in err, err
    assert "connection refused" in err, err
