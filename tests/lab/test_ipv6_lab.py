"""Dual-stack pods in the real lab (``Lab(ipv6=True)``, ``PodSpec(ipv6=True)``; ``lab/ipv6.py``):
addresses from the run's own /64, ip6tables capture as istio-iptables installs it, Envoy taking
IPv6 destinations on pilot's ``::`` wildcard, the lab DNS answering AAAA; IPv4-only pods are
left as they were."""

from __future__ import annotations

import ipaddress
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import require_lab

HOST = "v6.lab.example"
ENTRY = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "ServiceEntry",
    "metadata": {"name": "v6", "namespace": "default"},
    "spec": {
        "hosts": [HOST],
        "location": "MESH_EXTERNAL",
        "resolution": "DNS",
        "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}],
    },
}
# A client that resolves AAAA through the pod's resolv.conf, then calls two IPv6 destinations.
CLIENT = r"""
import http.client, json, socket, sys
out = {"aaaa": sorted({a[4][0] for a in socket.getaddrinfo(sys.argv[1], 80, socket.AF_INET6)})}
for key, address, host in (("known", sys.argv[2], sys.argv[1]), ("unknown", sys.argv[3], "x.example")):
    conn = http.client.HTTPConnection(address, 80, timeout=5)
    conn.request("GET", "/", headers={"Host": host})
    out[key] = conn.getresponse().status
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def v6_lab() -> Iterator[Any]:
    require_lab()
    from lab.pod import PodSpec
    from lab.runtime import Lab

    pods = [PodSpec(ipv6=True), PodSpec(namespace="plain")]
    with Lab([ENTRY], ipv6=True, access_log=True, mode="REGISTRY_ONLY", drain_seconds=0.1, pods=pods) as lab:
        yield lab


@pytest.mark.lab
def test_pod_addresses_come_from_the_runs_own_prefix(v6_lab: Any) -> None:
    from lab.ipv6 import run_prefix

    pod = v6_lab.pod()
    assert len(pod.addresses) == 2
    v6 = ipaddress.ip_address(pod.addresses[1])
    assert v6.version == 6 and v6 in run_prefix(v6_lab.names)
    assert run_prefix(v6_lab.names).subnet_of(ipaddress.IPv6Network("fc00::/7"))


@pytest.mark.lab
def test_ip6tables_rules_are_loaded_in_the_pod(v6_lab: Any) -> None:
    from lab.netns import nsenter_argv, run

    saved = run([*nsenter_argv(v6_lab.pod().net.netns), "ip6tables-save", "-t", "nat"])
    assert "-A ISTIO_OUTPUT -s ::6/128 -o lo -j RETURN" in saved
    assert "-A ISTIO_OUTPUT -d ::1/128 -j RETURN" in saved
    assert "-A ISTIO_OUTPUT -j ISTIO_REDIRECT" in saved


@pytest.mark.lab
def test_ipv6_destination_is_captured_and_aaaa_is_answered(v6_lab: Any) -> None:
    import json

    pod = v6_lab.pod()
    host = next(h for h in v6_lab._internet.hosts if h.name == HOST)
    v6_host = next(a for a in host.addresses if ":" in a)
    unknown = str(next(iter(ipaddress.ip_network("2001:db8::/64").hosts())))
    done = pod.exec([sys.executable, "-c", CLIENT, HOST, v6_host, unknown], timeout=30)
    assert done.returncode == 0, done.stderr[-800:]
    out = json.loads(done.stdout)
    assert out["aaaa"] == [v6_host]
    # the known host's entry routes it; an unknown IPv6 address is blocked by REGISTRY_ONLY (502
    # from block_all) — both only through the sidecar, which the access log confirms
    assert (out["known"], out["unknown"]) == (200, 502)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        seen = {str(e.get("downstream_local_address")): e for e in pod.access_log()}
        if f"[{unknown}]:80" in seen and f"[{v6_host}]:80" in seen:
            break
        time.sleep(0.05)
    assert seen[f"[{v6_host}]:80"].get("upstream_cluster") == f"outbound|80||{HOST}"
    assert seen[f"[{unknown}]:80"].get("route_name") == "block_all"


@pytest.mark.lab
def test_pod_without_ipv6_stays_ipv4_only(v6_lab: Any) -> None:
    from lab.netns import nsenter_argv, run

    pod = v6_lab.pod("plain")
    assert pod.addresses == (pod.address,)
    assert "ISTIO_OUTPUT" not in run([*nsenter_argv(pod.net.netns), "ip6tables-save"])
    assert "inet6" not in run(["ip", "-n", pod.net.netns, "-6", "addr", "show", "scope", "global"])
    # pilot's IPv6 wildcard only in the dual-stack pod's generated listeners
    assert '"::"' not in (pod.xds.directory / "lds.json").read_text()
    assert '"::"' in (v6_lab.pod().xds.directory / "lds.json").read_text()


@pytest.mark.lab
def test_a_host_added_by_apply_gets_an_ipv6_address_and_aaaa(v6_lab: Any) -> None:
    import json

    spec = dict(ENTRY["spec"])  # type: ignore[arg-type]
    spec["hosts"] = ["later.lab.example"]
    added = {**ENTRY, "metadata": {"name": "later", "namespace": "default"}, "spec": spec}
    v6_lab.apply([ENTRY, added])
    try:
        host = next(h for h in v6_lab._internet.hosts if h.name == "later.lab.example")
        v6_host = next(a for a in host.addresses if ":" in a)
        code = (
            "import json, socket, sys; print(json.dumps(sorted("
            "{a[4][0] for a in socket.getaddrinfo(sys.argv[1], 80, socket.AF_INET6)})))"
        )
        done = v6_lab.pod().exec([sys.executable, "-c", code, "later.lab.example"], timeout=30)
        assert done.returncode == 0, done.stderr[-800:]
        assert json.loads(done.stdout) == [v6_host]
    finally:
        v6_lab.apply([ENTRY])
