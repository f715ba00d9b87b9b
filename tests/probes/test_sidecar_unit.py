"""probes.sidecar without Envoy: addresses, the names/regexes it asks admin for, refusing to quit,
and what a missing sidecar looks like."""

from __future__ import annotations

import dataclasses
import http.server
import json
import re
import socket
import threading
import time
from typing import Any

import pytest

from probes import sidecar, sidecar_admin, sidecar_names, sidecar_stats
from probes.model import (
    DnsEvidence,
    ProbeResult,
    Protocol,
    SidecarEvidence,
    Signature,
    TargetSpec,
    TcpEvidence,
)


def _target(host: str, port: int, protocol: Protocol = Protocol.HTTPS) -> TargetSpec:
    return TargetSpec(raw=f"{host}:{port}", protocol=protocol, host=host, port=port)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("address", "url"),
    [
        ("127.0.0.1:15000", "http://127.0.0.1:15000"),
        ("[::1]:15000", "http://[::1]:15000"),
        ("::1:15000", "http://[::1]:15000"),
        ("localhost:9", "http://localhost:9"),
    ],
)
def test_base_url(address: str, url: str) -> None:
    assert sidecar_admin.base_url(address) == url


@pytest.mark.parametrize("bad", ["15000", "host:", "host:port", ":15000"])
def test_base_url_rejects_bad_addresses(bad: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        sidecar_admin.base_url(bad)


@pytest.mark.parametrize(
    "name", ["outbound|443||api.lab.example", "*.lab.example", "a+b(c)[d]{e}^$?\\", "80"]
)
def test_regex_literal_matches_only_itself(name: str) -> None:
    pattern = re.compile("^" + sidecar_names.regex_literal(name) + "$")
    assert pattern.match(name)
    assert not pattern.match(name + "x")
    assert not pattern.match("x" + name)


LISTENER_CASES = [
    ("virtualOutbound", True),
    ("0.0.0.0_443", True),
    ("10.0.0.7_443", True),
    ("240.240.0.5_80", True),
    ("0.0.0.0_4443", False),
    ("0.0.0.0_8080", False),
    ("virtualInbound", False),
]


@pytest.mark.parametrize(("name", "wanted"), LISTENER_CASES)
def test_listener_regex_takes_virtual_outbound_and_every_listener_on_target_ports(
    name: str, wanted: bool
) -> None:
    regex = sidecar_names.listener_name_regex([_target("a.lab.example", 443), _target("b.lab.example", 80)])
    assert bool(re.fullmatch(regex, name)) is wanted


COUNTER_CASES = [
    ("cluster.BlackHoleCluster;.upstream_cx_total", True),
    ("cluster.BlackHoleCluster.upstream_cx_total", True),
    ("tcp.PassthroughCluster.downstream_cx_total", True),
    ("cluster.outbound|443||api.lab.example;.upstream_cx_total", True),
    ("cluster.outbound|443|v1|api.lab.example;.upstream_rq_total", True),
    ("cluster.outbound|443||api.lab.examplex;.upstream_cx_total", False),
    ("cluster.outbound|443||xapi.lab.example;.upstream_cx_total", False),
    ("cluster.outbound|80||api.lab.example;.upstream_cx_total", False),
    ("cluster.xds-grpc.upstream_cx_total", False),
    ("listener_manager.lds.update_rejected", False),
]


@pytest.mark.parametrize(("name", "wanted"), COUNTER_CASES)
def test_counter_filter(name: str, wanted: bool) -> None:
    regex = sidecar_names.counter_filter([_target("api.lab.example", 443)])
    assert bool(re.match(regex, name)) is wanted


def test_listener_references_keep_only_chains_and_vhosts_that_can_match_the_target() -> None:
    def tcp(cluster: str) -> dict[str, object]:
        return {"name": "envoy.filters.network.tcp_proxy", "typed_config": {"cluster": cluster}}

    def sni(name: str, cluster: str) -> dict[str, object]:
        return {"filter_chain_match": {"server_names": [name]}, "filters": [tcp(cluster)]}

    def vhost(domain: str, action: dict[str, object]) -> dict[str, object]:
        return {"domains": [domain], "routes": [{"route": action}]}

    listeners: list[dict[str, Any]] = [
        {
            "name": "0.0.0.0_443",
            "filter_chains": [
                sni("api.lab.example", "outbound|443||api"),
                sni("other.lab.example", "other"),
                sni("*.lab.example", "wild"),
            ],
            "default_filter_chain": {"filters": [tcp("PassthroughCluster")]},
        },
        {
            "name": "0.0.0.0_80",
            "filter_chains": [
                {
                    "filters": [
                        {"typed_config": {"rds": {"route_config_name": "80"}}},
                        {
                            "typed_config": {
                                "route_config": {
                                    "virtual_hosts": [
                                        vhost("api.lab.example", {"cluster": "inl"}),
                                        vhost("nope.example", {"cluster": "no"}),
                                        vhost("*", {"weighted_clusters": {"clusters": [{"name": "w1"}]}}),
                                    ]
                                }
                            }
                        },
                    ]
                }
            ],
        },
    ]
    routes, clusters = sidecar_names.listener_references(listeners, [_target("api.lab.example", 443)])
    assert routes == ["80"]
    assert clusters == ["outbound|443||api", "wild", "PassthroughCluster", "inl", "w1"]


def test_counter_deltas_keep_only_what_moved() -> None:
    before = {"a": 1, "b": 5, "c": 0}
    after = {"a": 1, "b": 7, "c": 0, "d": 2}
    assert sidecar_stats.counter_deltas(before, after) == {"b": 2, "d": 2}


@pytest.mark.parametrize(
    ("native", "reason"),
    [(True, "native sidecar"), (None, "cannot tell")],
)
def test_quit_is_refused_without_sending_for_native_or_unknown(native: bool | None, reason: str) -> None:
    with socket.socket() as listener:  # would accept a POST if one were sent
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(0.2)
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        sent, why = sidecar.request_quit(native, status=address)
        assert sent is False
        assert why is not None and reason in why
        with pytest.raises(TimeoutError):
            listener.accept()


def test_quit_to_nothing_reports_failure() -> None:
    sent, why = sidecar.request_quit(False, status=f"127.0.0.1:{_closed_port()}", timeout=1.0)
    assert sent is False
    assert why is not None and why.startswith("quitquitquit failed")


def test_record_quit() -> None:
    ev = sidecar.record_quit(SidecarEvidence(present=True), (False, "refused: native sidecar"))
    assert (ev.quit_requested, ev.quit_refused_reason) == (False, "refused: native sidecar")


def test_no_sidecar_is_detected_quickly_and_collect_says_not_present() -> None:
    admin, agent = f"127.0.0.1:{_closed_port()}", f"127.0.0.1:{_closed_port()}"
    start = time.monotonic()
    assert sidecar.detect(admin, 1.0, agent=agent) is False
    ev = sidecar.collect([], ran_alone=True, admin=admin, timeout=1.0)
    snap = sidecar.snapshot_counters([], admin=admin, timeout=1.0)
    assert time.monotonic() - start < 0.5
    assert ev.present is False and ev.notes and admin in ev.notes[0]
    assert snap.opted_in is False and snap.error


def test_wait_ready_is_bounded_when_nothing_answers() -> None:
    start = time.monotonic()
    assert sidecar.wait_ready(0.3, agent=f"127.0.0.1:{_closed_port()}", interval=0.05) is None
    assert 0.25 <= time.monotonic() - start < 0.8


def test_a_hanging_admin_costs_at_most_the_budget() -> None:
    with socket.socket() as silent:  # accepts (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        admin = f"127.0.0.1:{silent.getsockname()[1]}"
        start = time.monotonic()
        evidence = sidecar.collect([], ran_alone=True, admin=admin, timeout=0.4)
        snap = sidecar.snapshot_counters([], admin=admin, timeout=0.3)
        elapsed = time.monotonic() - start
    assert evidence.present is False and "Timeout" in evidence.notes[0]
    assert snap.error is not None
    assert elapsed < 1.2


class _V6Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6


class _StubAdmin(http.server.BaseHTTPRequestHandler):
    """Just enough of Envoy admin for collect(): server_info, empty dumps, one counter."""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        answers: dict[str, dict[str, Any]] = {
            "/server_info": {"version": "stub/1.40.0", "state": "LIVE", "node": {"metadata": {}}},
            "/stats": {"stats": [{"name": "cluster.BlackHoleCluster;.upstream_cx_total", "value": 3}]},
        }
        body = answers.get(path, {})
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_admin_on_ipv6_loopback_only_is_found_from_the_ipv4_address() -> None:
    server = _V6Server(("::1", 0), _StubAdmin)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        admin = f"127.0.0.1:{port}"  # nothing there: an IPv6-only pod
        assert sidecar_admin.admin_candidates(admin) == [admin, f"[::1]:{port}"]
        assert sidecar_admin.find_admin(admin, 1.0) == f"[::1]:{port}"
        snap = sidecar.snapshot_counters([], admin=admin, timeout=1.0)
        evidence = sidecar.collect([], ran_alone=True, before=snap, admin=admin, timeout=2.0)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(2)
    assert snap.opted_in is True and snap.counters == {"cluster.BlackHoleCluster;.upstream_cx_total": 3}
    assert evidence.present is True and evidence.admin == f"[::1]:{port}"
    assert evidence.proxy_version == "stub/1.40.0"
    assert evidence.counter_deltas == {}


def test_dialed_addresses_and_the_exact_listener_names() -> None:
    api = _target("api.lab.example", 443)
    literal = TargetSpec(raw="10.0.0.9:443", protocol=Protocol.TLS, host="10.0.0.9", port=443)
    literal = dataclasses.replace(literal, ip_literal=True)
    http_target = _target("x.lab.example", 80, Protocol.HTTP)
    results = [
        ProbeResult(target=api, signature=Signature.OK, dns=DnsEvidence(query="api", a=("240.240.0.5",))),
        ProbeResult(target=literal, signature=Signature.OK, tcp=TcpEvidence(address="10.0.0.9:443")),
        ProbeResult(target=http_target, signature=Signature.OK, tcp=TcpEvidence(address="[2001:db8::1]:80")),
    ]
    addresses = sidecar_names.dialed_addresses(results)
    assert addresses == {443: {"240.240.0.5", "10.0.0.9"}, 80: {"2001:db8::1"}}
    regex = sidecar_names.exact_listener_regex(addresses)
    wanted = ("virtualOutbound", "0.0.0.0_443", "240.240.0.5_443", "10.0.0.9_443", "::_80", "2001:db8::1_80")
    for name in wanted:
        assert re.fullmatch(regex, name), name
    for name in ("10.0.0.9_80", "240.240.0.6_443", "0.0.0.0_4443", "virtualInbound"):
        assert not re.fullmatch(regex, name), name
