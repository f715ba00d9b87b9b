"""The gateway-proxy adapters themselves (``gateway_adapters.py``, ``gateway_lab.py``) on fixed
inputs, so a broken translation cannot make the gateway vectors pass or fail for the wrong reason."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from tests.vectors import adapters, gateway_adapters, gateway_lab
from tests.vectors.vector_format import load_file

LOG_LINE = {"downstream_remote_address": "10.0.0.1:30000", "response_flags": "-"}


def test_a_refused_connection_is_no_listener_and_a_silent_close_no_filter_chain() -> None:
    refused = {"local": None, "error": "ConnectionRefusedError: [Errno 111] Connection refused"}
    assert gateway_lab.observe(refused, None, None).error == "no_listener"
    timed_out = {"local": None, "error": "TimeoutError: timed out"}
    assert gateway_lab.observe(timed_out, None, None).error == "connect_failed"
    closed = {"local": "10.0.0.1:30000", "status": None, "error": "ConnectionResetError"}
    assert gateway_lab.observe(closed, None, None).error == "no_filter_chain"
    answered = {"local": "10.0.0.1:30000", "status": 200, "error": None}
    assert gateway_lab.observe(answered, None, None).error == "no_access_log_line"


def test_a_301_without_route_is_a_tls_redirect_and_a_route_redirect_is_not() -> None:
    result = {"local": "10.0.0.1:30000", "status": 301, "error": None}
    redirect = gateway_lab.observe(result, {**LOG_LINE, "response_code": 301}, None)
    assert (redirect.error, redirect.status) == ("tls_redirect", "301")
    routed = gateway_lab.observe(result, {**LOG_LINE, "response_code": 301, "route_name": "r1"}, None)
    assert (routed.error, routed.route) == ("none", "r1")


def test_unknown_clusters_from_the_router_and_the_tcp_proxy() -> None:
    log = (
        '[debug][router] [Tags: "ConnectionId":"3","StreamId":"9"] unknown cluster'
        " 'outbound|80||a.default'\n"
        '[debug][filter] [source/common/tcp_proxy/tcp_proxy.cc:702] [Tags: "ConnectionId":"7"] Cluster not'
        " found outbound|9080||productpage.default and no on demand cluster set.\n"
    )
    assert gateway_lab.unknown_clusters(log) == {
        "3": "outbound|80||a.default",
        "7": "outbound|9080||productpage.default",
    }
    missing = {"local": "10.0.0.1:30000", "status": None, "error": None}
    seen = gateway_lab.observe(
        missing, {**LOG_LINE, "response_flags": "NC"}, "outbound|9080||productpage.default"
    )
    assert seen.cluster == "outbound|9080||productpage.default"


def test_hop_reasons_in_istio_vocabulary() -> None:
    hop = SimpleNamespace(
        listener="0.0.0.0_8080", filter_chain=None, route="http.8080", vhost="h:80", cluster=None,
        reason="no-vhost", verdict="blocked", message="", notes=(),
    )  # fmt: skip
    assert gateway_adapters.observed_from_hop(hop).error == "no_virtual_host"
    routed = SimpleNamespace(**{**vars(hop), "reason": "no-cluster", "cluster": "outbound|80||x"})
    assert (gateway_adapters.observed_from_hop(routed).error, routed.cluster) == ("none", "outbound|80||x")
    odd = SimpleNamespace(**{**vars(hop), "reason": "tls-mismatch"})
    assert gateway_adapters.observed_from_hop(odd).error == "tls-mismatch"  # matches no expected kind


def test_predict_finds_the_listener_through_the_service_target_port() -> None:
    egress = load_file(Path(gateway_adapters.__file__).parent / "meshprobe" / "gateway_egress.yaml")
    case = next(c for c in egress.cases if c.name == "http-gateway-to-external")
    snapshot = adapters.snapshot_for(case)
    gateway = gateway_adapters.workload(snapshot, case)
    assert gateway.ports == {80: 8080, 443: 8443} and gateway.gateways == (
        "Gateway default/istio-egressgateway",
    )
    on_target = gateway_adapters.predict(snapshot, case, case.calls[0])
    assert (on_target.listener, on_target.cluster) == ("0.0.0.0_8080", "outbound|80||edition.cnn.com")
    service_port = next(c for c in case.calls if c.port == 80)
    assert gateway_adapters.predict(snapshot, case, service_port).error == "no_listener"
