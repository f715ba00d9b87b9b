"""A lab pod behaves like a sidecar-injected pod: capture, bypass, DNS capture, readiness, quit,
stats filtering (docs/lab.md)."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import pytest

pytestmark = pytest.mark.lab

CONNECT = """
import socket, sys
s = socket.socket()
s.settimeout(float(sys.argv[3]))
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("connected")
except ConnectionRefusedError:
    print("refused")
except (TimeoutError, socket.timeout):
    print("timeout")
"""

DNS_QUERY = """
import sys, dns.message, dns.query
q = dns.message.make_query(sys.argv[1], "A")
r = dns.query.udp(q, sys.argv[2], timeout=2)
print(dns.rcode.to_text(r.rcode()), "AA" if r.flags & dns.flags.AA else "-",
      ",".join(a.address for rr in r.answer for a in rr))
"""


def _connect(
    pod: Any, host: str, port: int, *, uid: int = 1000, gid: int = 1000, timeout: float = 2.0
) -> str:
    done = pod.exec([sys.executable, "-c", CONNECT, host, str(port), str(timeout)], uid=uid, gid=gid)
    assert done.returncode == 0, done.stderr
    return str(done.stdout.strip())


def _log_entries(lab: Any, namespace: str, local: str, wait: float = 2.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + wait
    while True:
        found = [e for e in lab.access_log(namespace) if e.get("downstream_local_address") == local]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_app_connect_to_any_ip_port_reaches_envoy(runtime_lab: Any) -> None:
    pod = runtime_lab.pod()
    target = runtime_lab.address_of("pkg.lab.example")
    # nothing listens on :4444 at the origin, yet connect() succeeds: Envoy accepted it
    assert _connect(pod, target, 4444) == "connected"
    entries = _log_entries(runtime_lab, "default", f"{target}:4444")
    assert entries and entries[0]["upstream_cluster"] == "BlackHoleCluster"


@pytest.mark.parametrize(("uid", "gid"), [(1337, 1337), (1000, 1337), (1337, 1000)])
def test_proxy_uid_or_gid_bypasses_capture(runtime_lab: Any, uid: int, gid: int) -> None:
    pod = runtime_lab.pod()
    target = runtime_lab.address_of("other.lab.example")
    port = 4400 + uid % 7 + gid % 5
    assert _connect(pod, target, port, uid=uid, gid=gid) == "refused"
    assert _log_entries(runtime_lab, "default", f"{target}:{port}", wait=0.3) == []


def test_udp_dns_is_not_redirected_without_capture(runtime_lab: Any) -> None:
    pod = runtime_lab.pod()
    done = pod.exec([sys.executable, "-c", DNS_QUERY, "pkg.lab.example", runtime_lab.dns_address])
    addr = runtime_lab.address_of("pkg.lab.example")
    assert done.stdout.split() == ["NOERROR", "AA", addr], done.stderr  # the authoritative server answered


UDP_ECHO = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
s.sendto(b"ping", (sys.argv[1], 7)); print(s.recv(200).decode())
"""


@pytest.mark.parametrize("namespace", ["default", "dns"])
def test_udp_other_than_dns_is_never_redirected(runtime_lab: Any, namespace: str) -> None:
    done = runtime_lab.pod(namespace).exec([sys.executable, "-c", UDP_ECHO, runtime_lab.dns_address])
    assert done.stdout.strip() == f"udp-echo {runtime_lab.dns_address}:7 ping", done.stderr


def test_dns_capture_answers_from_the_table_and_forwards_the_rest(runtime_lab: Any) -> None:
    pod = runtime_lab.pod("dns")
    table = pod.exec([sys.executable, "-c", DNS_QUERY, "vip.lab.example", runtime_lab.dns_address])
    assert table.stdout.split() == ["NOERROR", "-", "240.240.0.7"], table.stderr
    forwarded = pod.exec([sys.executable, "-c", DNS_QUERY, "pkg.lab.example", runtime_lab.dns_address])
    assert forwarded.stdout.split() == ["NOERROR", "AA", runtime_lab.address_of("pkg.lab.example")]
    missing = pod.exec([sys.executable, "-c", DNS_QUERY, "nope.invalid", runtime_lab.dns_address])
    assert missing.stdout.split()[0] == "NXDOMAIN"
    assert {"vip.lab.example", "pkg.lab.example", "nope.invalid"} <= set(pod.dns_agent.queries)


def test_dns_capture_does_not_capture_the_proxy_uid(runtime_lab: Any) -> None:
    pod = runtime_lab.pod("dns")
    done = pod.exec(
        [sys.executable, "-c", DNS_QUERY, "vip.lab.example", runtime_lab.dns_address], uid=1337, gid=1337
    )
    assert done.stdout.split()[0] == "NXDOMAIN"  # went straight to the upstream, which does not know VIPs


def test_readiness_needs_envoy_live_and_the_dns_table(runtime_lab: Any) -> None:
    pod = runtime_lab.pod("dns")
    assert pod.http(15021, "/healthz/ready")[0] == 200
    saved = pod.dns_agent.table
    pod.dns_agent.table = None
    try:
        assert pod.http(15021, "/healthz/ready")[0] == 503
    finally:
        pod.dns_agent.table = saved
    assert pod.http(15021, "/healthz/ready")[0] == 200


def test_readiness_false_while_envoy_is_down_and_back_after_apply(runtime_lab: Any) -> None:
    pod = runtime_lab.pod("ready")
    assert pod.http(15021, "/healthz/ready")[0] == 200
    pod.envoy.stop()
    with pytest.raises(ConnectionRefusedError):  # :15021 is Envoy's own listener, as in Istio
        pod.http(15021, "/healthz/ready")
    assert pod.http(15020, "/healthz/ready")[0] == 503  # pilot-agent's answer behind it
    runtime_lab.apply()
    assert pod.http(15021, "/healthz/ready")[0] == 200


def test_quitquitquit_is_post_only_localhost_only_and_stops_envoy(runtime_lab: Any) -> None:
    pod = runtime_lab.pod("quit")
    assert pod.http(15021, "/healthz/ready")[0] == 200
    assert pod.http(15020, "/quitquitquit")[0] == 405
    assert pod.http(15020, "/quitquitquit", method="POST", source=pod.address)[0] == 403
    assert pod.envoy.running()
    assert pod.http(15020, "/quitquitquit", method="POST")[0] == 200
    assert pod.http(15021, "/healthz/ready")[0] == 503  # draining: Envoy up, agent says not ready
    deadline = time.monotonic() + 5
    while pod.envoy.running() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not pod.envoy.running()
    time.sleep(0.1)
    with pytest.raises(OSError):  # the agent exited: its ports are closed
        pod.http(15021, "/healthz/ready")
    runtime_lab.apply()  # like a container restart: agent and Envoy come back
    assert pod.http(15021, "/healthz/ready")[0] == 200


def test_blackhole_stats_hidden_without_opt_in_and_present_with_it(runtime_lab: Any) -> None:
    for namespace in ("default", "stats"):
        _connect(runtime_lab.pod(namespace), runtime_lab.address_of("pkg.lab.example"), 4455)
    stock = runtime_lab.pod().admin_get("/stats?filter=BlackHoleCluster")
    opted = runtime_lab.pod("stats").admin_get("/stats?filter=BlackHoleCluster")
    assert "BlackHoleCluster" not in stock
    assert "cluster.BlackHoleCluster.upstream_cx_none_healthy" in opted
    assert "tcp.BlackHoleCluster.downstream_cx_total" in opted
    for body in (runtime_lab.pod().admin_get("/stats?filter=^cluster_manager"),):
        assert "cluster_manager.active_clusters" in body


def test_apply_is_an_xds_push_without_restart_and_a_nack_keeps_the_old_config(runtime_lab: Any) -> None:
    from lab.handwritten import blackhole_config

    pod = runtime_lab.pod("push")
    pid = pod.envoy.pid
    listeners, clusters = blackhole_config("ALLOW_ANY")
    ok = pod.push(listeners, clusters)
    assert ok.accepted and pod.envoy.pid == pid
    assert _catchall_cluster(pod) == "PassthroughCluster"
    broken = [{**listeners[0], "address": {"socket_address": {"address": "not-an-ip", "port_value": 1}}}]
    nack = pod.push(broken, blackhole_config("REGISTRY_ONLY")[1])
    assert (nack.cds, nack.lds) == ("accepted", "rejected")
    assert pod.update_counters()["listener_manager.lds.update_rejected"] >= 1
    assert _catchall_cluster(pod) == "PassthroughCluster"  # the NACKed listeners never replaced it


def test_push_delay_models_istiod_propagation(runtime_lab: Any) -> None:
    pod = runtime_lab.pod("push")
    before = _catchall_cluster(pod)
    target = "PassthroughCluster" if before == "BlackHoleCluster" else "BlackHoleCluster"
    runtime_lab.apply(mode="ALLOW_ANY" if target == "PassthroughCluster" else "REGISTRY_ONLY", push_delay=0.4)
    assert _catchall_cluster(pod) == before  # not pushed yet
    deadline = time.monotonic() + 5
    while _catchall_cluster(pod) != target and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _catchall_cluster(pod) == target and runtime_lab.push_errors == []
    runtime_lab.apply(mode="REGISTRY_ONLY")


def _catchall_cluster(pod: Any) -> str:
    dump = json.loads(pod.admin_get("/config_dump?resource=dynamic_listeners"))
    [entry] = [c for c in dump["configs"] if c.get("name") == "virtualOutbound"]
    chain = entry["active_state"]["listener"]["filter_chains"][-1]
    return str(chain["filters"][0]["typed_config"]["cluster"])


def test_exec_runs_as_app_uid_with_lab_ca(runtime_lab: Any) -> None:
    done = runtime_lab.pod().exec(["sh", "-c", 'id -u; id -g; echo "$SSL_CERT_FILE"; cat /etc/resolv.conf'])
    uid, gid, ca, resolv = done.stdout.split("\n", 3)
    assert (uid, gid, ca) == ("1000", "1000", str(runtime_lab.ca_file))
    assert f"nameserver {runtime_lab.dns_address}" in resolv


@pytest.mark.parametrize(
    ("annotations", "port", "expected"),
    [
        ({"traffic.sidecar.istio.io/excludeOutboundPorts": "4461"}, 4461, "refused"),
        ({"traffic.sidecar.istio.io/excludeOutboundPorts": "4461"}, 4462, "connected"),
        ({"traffic.sidecar.istio.io/includeOutboundIPRanges": ""}, 4463, "refused"),
        ({"sidecar.istio.io/interceptionMode": "NONE"}, 4464, "refused"),
    ],
)
def test_bypass_annotations_change_capture(
    runtime_lab: Any, annotations: dict[str, str], port: int, expected: str
) -> None:
    pod = runtime_lab.pod("bypass", f"port-{port}", annotations=annotations)
    assert _connect(pod, runtime_lab.address_of("other.lab.example"), port) == expected


def test_dns_capture_from_proxy_config_annotation(runtime_lab: Any) -> None:
    ann = {"proxy.istio.io/config": 'proxyMetadata:\n  ISTIO_META_DNS_CAPTURE: "true"\n'}
    pod = runtime_lab.pod("dnsann", annotations=ann)
    assert pod.dns_agent is not None
    done = pod.exec([sys.executable, "-c", DNS_QUERY, "vip.lab.example", runtime_lab.dns_address])
    assert done.stdout.split() == ["NOERROR", "-", "240.240.0.7"], done.stderr


def test_non_default_proxy_uid_moves_the_bypass(runtime_lab: Any) -> None:
    pod = runtime_lab.pod("openshift", proxy_uid=1000710000, proxy_gid=1000710000)
    target = runtime_lab.address_of("other.lab.example")
    assert pod.http(15021, "/healthz/ready")[0] == 200
    assert _connect(pod, target, 4471, uid=1337, gid=1337) == "connected"  # 1337 is an app uid here
    assert _connect(pod, target, 4472, uid=1000710000, gid=1000710000) == "refused"  # the proxy's bypass
