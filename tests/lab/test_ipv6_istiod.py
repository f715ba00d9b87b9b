"""lab.istiod for dual-stack pods (``lab/istiod/dualstack.py``): pilot gives a proxy with IPv4 and
IPv6 addresses ``::`` as a second address on its wildcard listeners (``listener.go``
``buildListenerFromEntry``, ``listener_address.go`` ``wildCards``), and, with ISTIO_DUAL_STACK,
on ``virtualOutbound``/``virtualInbound``; listeners bound to an IP get none."""

from __future__ import annotations

from typing import Any

import pytest

from lab.istiod import PodView, generate
from lab.istiod.dualstack import add_second_wildcard, ip_mode

CONFIG: list[dict[str, Any]] = [
    {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": "cidr", "namespace": "default"},
        "spec": {
            "hosts": ["wide.example"],
            "addresses": ["2001:db8::/32"],
            "ports": [{"number": 9999, "name": "tcp", "protocol": "TCP"}],
        },
    },
    {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": "vip", "namespace": "default"},
        "spec": {
            "hosts": ["vip.example"],
            "addresses": ["240.0.0.5"],
            "ports": [{"number": 5432, "name": "tcp", "protocol": "TCP"}],
        },
    },
]


def _extra(pod_ips: tuple[str, ...]) -> dict[str, list[str]]:
    listeners = generate(CONFIG, PodView(namespace="default", pod_ips=pod_ips)).listeners
    out: dict[str, list[str]] = {}
    for lst in listeners:
        extra = lst.get("additional_addresses", [])
        out[str(lst["name"])] = [a["address"]["socket_address"]["address"] for a in extra]
    return out


def test_dual_stack_pod_gets_ipv6_wildcard_on_wildcard_listeners_only() -> None:
    extra = _extra(("10.0.0.2", "fd6d:7000::2"))
    assert extra["0.0.0.0_9999"] == ["::"]
    assert extra["virtualOutbound"] == ["::"]
    assert extra["virtualInbound"] == ["::"]
    assert extra["240.0.0.5_5432"] == []


@pytest.mark.parametrize("pod_ips", [("10.0.0.2",), (), ("fd6d:7000::2",)])
def test_single_stack_pod_gets_no_additional_address(pod_ips: tuple[str, ...]) -> None:
    assert all(v == [] for v in _extra(pod_ips).values())


def test_ip_mode() -> None:
    assert ip_mode(["10.0.0.1", "fd00::1"]) == "Dual"
    assert ip_mode(["fd00::1"]) == "IPv6"
    assert ip_mode(["10.0.0.1", "not-an-ip"]) == "IPv4"


def test_catch_all_listeners_need_the_dual_stack_flag() -> None:
    listeners: list[dict[str, Any]] = [
        {"name": name, "address": {"socket_address": {"address": "0.0.0.0", "port_value": port}}}
        for name, port in (("virtualOutbound", 15001), ("0.0.0.0_80", 80))
    ]
    add_second_wildcard(listeners, ["10.0.0.2", "fd00::2"], dual_stack_flag=False)
    assert "additional_addresses" not in listeners[0]
    assert listeners[1]["additional_addresses"] == [
        {"address": {"socket_address": {"address": "::", "port_value": 80}}}
    ]
