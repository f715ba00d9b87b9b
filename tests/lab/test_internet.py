"""The lab internet: per-SNI certificates, who-answered bodies, banners, redirects, the index
page, the SYN-dropping address and authoritative DNS (docs/lab.md). Clients run as the proxy uid so
they bypass capture and talk to the internet directly."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from lab.internet import SERVER_FIRST_HOST, ServedHost, plan_hosts
from lab.names import RunNames

BYPASS = {"uid": 1337, "gid": 1337}

TLS_PEER = """
import socket, ssl, sys
ctx = ssl.create_default_context()
ctx.check_hostname = False
with socket.create_connection((sys.argv[1], 443), timeout=3) as raw:
    with ctx.wrap_socket(raw, server_hostname=sys.argv[2]) as tls:
        cert = tls.getpeercert()
print(",".join(v for k, v in cert["subjectAltName"]))
"""

CONNECT = """
import socket, sys
s = socket.socket(); s.settimeout(float(sys.argv[3]))
try:
    s.connect((sys.argv[1], int(sys.argv[2]))); print("connected")
except ConnectionRefusedError:
    print("refused")
except (TimeoutError, socket.timeout):
    print("timeout")
"""


def test_plan_gives_each_host_the_standard_ports_and_declared_ones() -> None:
    se = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": "db", "namespace": "default"},
        "spec": {
            "hosts": ["db.lab.example"],
            "addresses": ["10.250.0.16"],
            "resolution": "NONE",
            "ports": [
                {"number": 5432, "name": "tcp", "protocol": "TCP"},
                {"number": 8443, "name": "tls", "protocol": "TLS"},
            ],
        },
    }
    hosts = {h.name: h for h in plan_hosts(RunNames("00ab12"), [se], ["x.lab.example"])}
    assert hosts["db.lab.example"] == ServedHost(
        "db.lab.example", ("10.250.0.16",), {80: "http", 443: "https", 22: "tcp", 5432: "tcp", 8443: "tls"}
    )
    assert hosts["x.lab.example"].addresses[0].startswith(f"10.{RunNames('00ab12').second_octet}.2.")
    assert set(hosts[SERVER_FIRST_HOST].ports.values()) == {"tcp"}


def test_plan_serves_static_endpoint_ips_but_not_endpoint_hostnames() -> None:
    static = {
        "apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
        "metadata": {"name": "st", "namespace": "default"},
        "spec": {"hosts": ["static.lab.example"], "resolution": "STATIC",
                 "ports": [{"number": 443, "name": "tls", "protocol": "TLS"}],
                 "endpoints": [{"address": "10.251.0.7"}, {"address": "unix:///sock"}]},
    }  # fmt: skip
    behind = {
        "apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
        "metadata": {"name": "dns", "namespace": "default"},
        "spec": {"hosts": ["front.lab.example"], "resolution": "DNS",
                 "ports": [{"number": 80, "name": "http", "protocol": "HTTP", "targetPort": 8081},
                           {"number": 9000, "name": "tcp", "protocol": "TCP"}],
                 "endpoints": [{"address": "origin.lab.example", "ports": {"tcp": 9001}}]},
    }  # fmt: skip
    hosts = {h.name: h for h in plan_hosts(RunNames("00ab12"), [static, behind])}
    assert hosts["static.lab.example"].addresses == ("10.251.0.7",)
    # hostname endpoints are not served (scenarios use them for "Envoy cannot resolve"); add them
    # with Lab(internet=[...]) when they should answer
    assert "origin.lab.example" not in hosts


def test_plan_keeps_addresses_across_apply() -> None:
    names = RunNames("00ab12")
    first = {h.name: h.addresses for h in plan_hosts(names, [], ["b.lab.example"])}
    second = {h.name: h.addresses for h in plan_hosts(names, [], ["a.lab.example", "b.lab.example"], first)}
    assert second["b.lab.example"] == first["b.lab.example"]
    assert second["a.lab.example"] != first["b.lab.example"]


@pytest.mark.lab
def test_https_answers_with_the_sni_certificate_and_says_who_answered(runtime_lab: Any) -> None:
    pod = runtime_lab.pod()
    done = pod.exec(["curl", "-sS", "https://pkg.lab.example/hello"], **BYPASS)
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["host"] == "pkg.lab.example" and body["port"] == 443
    assert body["address"] == runtime_lab.address_of("pkg.lab.example")
    assert body["sni"] == "pkg.lab.example" and body["path"] == "/hello"


@pytest.mark.lab
def test_wrong_sni_at_an_address_gets_that_address_own_certificate(runtime_lab: Any) -> None:
    pod = runtime_lab.pod()
    addr = runtime_lab.address_of("pkg.lab.example")
    done = pod.exec([sys.executable, "-c", TLS_PEER, addr, "other.lab.example"], **BYPASS)
    assert done.stdout.strip() == "pkg.lab.example", done.stderr
    verified = pod.exec(
        ["curl", "-sS", "--resolve", f"other.lab.example:443:{addr}", "https://other.lab.example/"], **BYPASS
    )
    assert verified.returncode == 60  # certificate does not match: the client reached the wrong origin


@pytest.mark.lab
def test_http_redirect_index_and_status(runtime_lab: Any) -> None:
    pod = runtime_lab.pod()
    redirect = pod.exec(
        [
            "curl",
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
            "http://pkg.lab.example/redirect?to=https://files.lab.example/x",
        ],
        **BYPASS,
    )
    assert redirect.stdout == "302 https://files.lab.example/x"
    index = pod.exec(["curl", "-sS", "http://pkg.lab.example/simple/"], **BYPASS)
    assert 'href="https://files.lab.example/packages/' in index.stdout
    status = pod.exec(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "http://pkg.lab.example/status/418"],
        **BYPASS,
    )
    assert status.stdout == "418"


@pytest.mark.lab
def test_ssh_banner_names_host_and_address(runtime_lab: Any) -> None:
    pod = runtime_lab.pod()
    addr = runtime_lab.address_of("other.lab.example")
    done = pod.exec(
        [
            sys.executable,
            "-c",
            "import socket,sys;s=socket.create_connection((sys.argv[1],22),3);"
            "print(s.recv(200).decode().strip())",
            addr,
        ],
        **BYPASS,
    )
    assert done.stdout.strip() == f"SSH-2.0-MeshprobeLab other.lab.example {addr}:22"


@pytest.mark.lab
def test_server_first_host_speaks_first_on_port_80(runtime_lab: Any) -> None:
    addr = runtime_lab.address_of(SERVER_FIRST_HOST)
    done = runtime_lab.pod().exec(
        [
            sys.executable,
            "-c",
            "import socket,sys;s=socket.create_connection((sys.argv[1],80),3);"
            "print(s.recv(200).decode().strip())",
            addr,
        ],
        **BYPASS,
    )
    assert done.stdout.startswith("SSH-2.0-MeshprobeLab server-first.lab.example")


@pytest.mark.lab
def test_drop_address_swallows_syns_while_closed_ports_refuse(runtime_lab: Any) -> None:
    pod = runtime_lab.pod()
    dropped = pod.exec([sys.executable, "-c", CONNECT, runtime_lab.drop_address, "443", "0.5"], **BYPASS)
    refused = pod.exec(
        [sys.executable, "-c", CONNECT, runtime_lab.address_of("pkg.lab.example"), "9", "0.5"], **BYPASS
    )
    assert (dropped.stdout.strip(), refused.stdout.strip()) == ("timeout", "refused")


@pytest.mark.lab
def test_dns_nxdomain_for_names_the_lab_does_not_serve(runtime_lab: Any) -> None:
    done = runtime_lab.pod().exec(["curl", "-sS", "http://not-served.lab.example/"], **BYPASS)
    assert done.returncode == 6  # could not resolve host


@pytest.mark.lab
def test_hosts_come_and_go_with_apply_and_keep_their_address(runtime_lab: Any) -> None:
    se = {
        "apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
        "metadata": {"name": "late", "namespace": "default"},
        "spec": {"hosts": ["late.lab.example"], "resolution": "DNS",
                 "ports": [{"number": 8080, "name": "http", "protocol": "HTTP"}]},
    }  # fmt: skip
    try:
        runtime_lab.apply([se])
        first = runtime_lab.address_of("late.lab.example")
        assert (
            runtime_lab.hosts[[h.name for h in runtime_lab.hosts].index("late.lab.example")].ports[8080]
            == "http"
        )
        runtime_lab.apply([])
        with pytest.raises(KeyError):
            runtime_lab.address_of("late.lab.example")
        runtime_lab.apply([se])
        assert runtime_lab.address_of("late.lab.example") == first
        done = runtime_lab.pod().exec(["curl", "-sS", "http://late.lab.example:8080/"], uid=1337, gid=1337)
        assert json.loads(done.stdout)["address"] == first, done.stderr
    finally:
        runtime_lab.apply([])
