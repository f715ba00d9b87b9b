"""lab/ipv6.py addressing and the internet's IPv6 host plan (no namespaces needed)."""

from __future__ import annotations

import ipaddress

import dns.message
import dns.rdatatype
import pytest

from lab import dnswire
from lab.internet import plan_hosts
from lab.ipv6 import host_address, link_addresses, lo_commands, run_prefix
from lab.names import RunNames

NAMES = RunNames("a1b2c3")
ENTRY = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "ServiceEntry",
    "metadata": {"name": "pinned", "namespace": "default"},
    "spec": {
        "hosts": ["pinned.example"],
        "addresses": ["2001:db8::7", "2001:db8:1::/48"],
        "resolution": "STATIC",
        "endpoints": [{"address": "2001:db8::7"}],
        "ports": [{"number": 443, "name": "tls", "protocol": "TLS"}],
    },
}


def test_prefix_is_a_unique_local_64_derived_from_the_run_id() -> None:
    prefix = run_prefix(NAMES)
    assert prefix.prefixlen == 64
    assert prefix.subnet_of(ipaddress.IPv6Network("fd00::/8"))
    assert run_prefix(RunNames("a1b2c4")) != prefix
    assert "a1b2" in prefix.exploded.replace(":", "")


def test_pod_links_are_disjoint_126s_inside_the_prefix() -> None:
    seen = set()
    for index in range(63):
        gateway, pod = link_addresses(NAMES, index)
        net = ipaddress.IPv6Network(f"{gateway}/126", strict=False)
        assert ipaddress.ip_address(pod) in net and net.subnet_of(run_prefix(NAMES))
        assert net not in seen
        seen.add(net)
    with pytest.raises(ValueError):
        link_addresses(NAMES, 63)


def test_lo_commands_use_each_familys_host_prefix() -> None:
    assert lo_commands(["10.1.2.3", "fd00::1"]) == [
        "addr add 10.1.2.3/32 dev lo",
        "addr add fd00::1/128 dev lo nodad",
    ]


def test_hosts_get_an_ipv6_address_only_with_ipv6() -> None:
    plain = {h.name: h.addresses for h in plan_hosts(NAMES, [ENTRY], ["a.example"])}
    dual = {h.name: h.addresses for h in plan_hosts(NAMES, [ENTRY], ["a.example"], ipv6=True)}
    assert all(":" not in a for addrs in plain.values() for a in addrs)
    assert plain["a.example"] == (NAMES.host_address(0),)
    assert dual["a.example"] == (NAMES.host_address(0), host_address(NAMES, 0))
    # a ServiceEntry's single IPv6 address pins the host (its CIDR does not)
    assert dual["pinned.example"] == ("2001:db8::7",)
    every = [a for addrs in dual.values() for a in addrs]
    assert len(every) == len(set(every))


def test_aaaa_answers_carry_only_the_ipv6_addresses() -> None:
    records = ("10.1.2.3", "fd6d:a1b2:c300::2:1")
    aaaa = dnswire.make_response(dns.message.make_query("h.example", dns.rdatatype.AAAA), records)
    a = dnswire.make_response(dns.message.make_query("h.example", dns.rdatatype.A), records)
    assert [r.to_text() for r in aaaa.answer[0]] == ["fd6d:a1b2:c300::2:1"]
    assert [r.to_text() for r in a.answer[0]] == ["10.1.2.3"]
