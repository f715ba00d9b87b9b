"""The harness adapters themselves, on real inputs (so a broken adapter cannot make every vector
pass or fail for the wrong reason)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.vectors import adapters, lab_runner
from tests.vectors.outcome import Observed, mismatches, restrict, route_table_mismatches
from tests.vectors.vector_format import Expect, RouteTable, VectorCall

FQDN = "known.default.svc.cluster.local"
CLUSTER = f"outbound|80||{FQDN}"
KNOWN = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "known", "namespace": "default"},
    "spec": {"clusterIP": "2.0.0.0", "ports": [{"port": 80, "name": "http"}]},
}


def _generated() -> Any:
    from lab.istiod import PodView, generate

    return generate([KNOWN], PodView(namespace="default"))


def test_route_tables_of_generated_config() -> None:
    tables = adapters.route_tables_of(_generated())
    assert tables["80"]["known.default.svc.cluster.local"] == (
        "outbound|80||known.default.svc.cluster.local",
    )
    ok = RouteTable(
        "80", {"known.default.svc.cluster.local": ("outbound|80||known.default.svc.cluster.local",)}
    )
    assert route_table_mismatches(ok, tables) == []
    absent = RouteTable("80", {"other.example.com": None, "known.default.svc.cluster.local": None})
    assert route_table_mismatches(absent, tables) == [
        "80 known.default.svc.cluster.local: want None, got ('outbound|80||known.default.svc.cluster.local',)"
    ]
    assert route_table_mismatches(RouteTable("8080", {}), tables)[0].startswith(
        "route config '8080' not found"
    )


def test_listener_ports_of_generated_config() -> None:
    ports = adapters.listener_ports(_generated())
    assert ports[80] == ["0.0.0.0_80"]
    assert ports[15001] == ["virtualOutbound"]


@pytest.mark.parametrize(
    ("protocol", "tls", "want"),
    [
        ("http", False, "http"),
        ("http2", False, "http"),
        ("tcp", False, "tcp"),
        ("http", True, "https"),
        ("http2", True, "https"),
        ("tcp", True, "tls"),
    ],
)
def test_predict_protocol(protocol: str, tls: bool, want: str) -> None:
    call = VectorCall("c", "1.2.3.4", 80, protocol, tls, Expect(), sni="x" if tls else None)
    assert adapters.predict_protocol(call) == want


def test_live_call_keeps_host_and_tls_hello_as_written() -> None:
    plain = adapters.live_call(VectorCall("c", "1.2.3.4", 81, "http", False, Expect(), host="foo"))
    assert (plain.transport, plain.host, plain.http_version) == ("raw_buffer", "foo", "1.1")
    hello = adapters.live_call(VectorCall("c", "1.2.3.4", 443, "http2", True, Expect(), sni="a", alpn="h2"))
    assert (hello.transport, hello.sni, hello.alpn, hello.http_version) == ("tls", "a", ("h2",), None)


def test_restrict_and_mismatches() -> None:
    expect = Expect(route="route1", cluster="C", filter_chain="F")
    assert restrict(expect, lab_runner.OBSERVABLE) == {"route": "route1", "cluster": "C", "error": "none"}
    expect = Expect(route="route1", cluster="C")
    assert restrict(expect, adapters.OBSERVABLE["generated"]) == {
        "route": "route1",
        "cluster": "C",
        "error": "none",
    }
    assert mismatches({"cluster": "C", "error": "none"}, Observed(cluster="C")) == []
    assert mismatches({"cluster": "C", "error": "none"}, Observed(cluster="D", error="no_route")) == [
        "cluster: want 'C', got 'D'",
        "error: want 'none', got 'no_route'",
    ]


def test_lab_client_binds_fresh_source_ports_and_reads_the_status() -> None:
    import socket
    import threading

    from tests.vectors import lab_client

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]

    def answer() -> None:
        for _ in range(2):
            conn, _ = server.accept()
            conn.recv(1024)
            conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
            conn.close()

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    call = {
        "name": "c",
        "address": "127.0.0.1",
        "port": port,
        "protocol": "http",
        "tls": False,
        "host": "foo",
    }
    first, used = lab_client.make_call(call, 41000)
    second, used_next = lab_client.make_call(call, used + 1)
    server.close()
    thread.join(timeout=5)
    assert first["status"] == 502 and first["error"] is None
    assert used >= 41000 and used_next > used
    assert first["local"] == f"127.0.0.1:{used}" and second["local"] == f"127.0.0.1:{used_next}"
