"""IPv6 capture rules (lab/iptables.py ``family=6``): equal to what istio-iptables emits for a pod
with an IPv6 address — goldens transcribed from istio/istio
``tools/istio-iptables/pkg/capture/testdata`` (``dns-uid-gid.golden``, both families, and
``ipv6-outbound-ports.golden``, the ip6tables part) — and the rules' behaviour where the goldens
say nothing (a family without DNS servers, CIDR lists of the other family)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.iptables import CaptureConfig, nat_rules, restore_input

TESTDATA = Path(__file__).parent / "testdata"

# run_test.go "dns-uid-gid": RedirectDNS, DNSServersV4 127.0.0.53, DNSServersV6 ::127.0.0.53,
# ProxyGID "1,2", ProxyUID "3,4", EnableIPv6; the test config leaves inbound and outbound
# include lists empty.
DNS_UID_GID = CaptureConfig(
    proxy_uid="3,4",
    proxy_gid="1,2",
    include_inbound_ports="",
    include_outbound_cidrs="",
    redirect_dns=True,
    dns_servers=("127.0.0.53", "::127.0.0.53"),
)


@pytest.mark.parametrize("family", [4, 6])
def test_dns_uid_gid_golden(family: int) -> None:
    want = (TESTDATA / f"istio-iptables-dns-uid-gid-v{family}.rules").read_text()
    assert restore_input(DNS_UID_GID, family) == want


def test_ipv6_outbound_ports_golden() -> None:
    cfg = CaptureConfig(
        include_inbound_ports="", include_outbound_cidrs="", include_outbound_ports="32000,31000"
    )
    assert restore_input(cfg, 6) == (TESTDATA / "istio-iptables-outbound-ports-v6.rules").read_text()


def test_injector_defaults_capture_every_ipv6_destination() -> None:
    rules = nat_rules(CaptureConfig(), 6)
    assert "-A ISTIO_OUTPUT -o lo -s ::6/128 -j RETURN" in rules
    assert "-A ISTIO_OUTPUT -d ::1/128 -j RETURN" in rules
    assert rules[-1] == "-A ISTIO_OUTPUT -j ISTIO_REDIRECT"
    assert not any("127.0.0." in r for r in rules)


def test_ipv4_dns_servers_only_leave_the_ipv6_nat_table_without_dns_redirects() -> None:
    cfg = CaptureConfig(redirect_dns=True, dns_servers=("10.96.0.10",))
    v6 = restore_input(cfg, 6)
    nat, raw = v6.split("*raw")
    assert "ISTIO_OUTPUT_DNS" not in nat  # SetupDNSRedir: no v6 server, no v6 jump
    # the raw owner zones are added for both families (AppendRule)
    assert "-A ISTIO_OUTPUT_DNS -p udp --dport 53 -m owner --uid-owner 1337 -j CT --zone 1" in raw
    assert "10.96.0.10" not in v6 and "PREROUTING" not in raw
    # the owner rules still take the DNS form (REDIRECT_DNS stays on: a v4 server exists)
    assert any("-m multiport ! --dports 53,15008" in r for r in nat_rules(cfg, 6))


def test_cidr_lists_are_split_by_family() -> None:
    cfg = CaptureConfig(
        include_outbound_cidrs="10.1.0.0/16,fd00:1::/64", exclude_outbound_cidrs="2001:db8::/32"
    )
    v4, v6 = nat_rules(cfg, 4), nat_rules(cfg, 6)
    assert "-A ISTIO_OUTPUT -d 10.1.0.0/16 -j ISTIO_REDIRECT" in v4
    assert not any("fd00:1::/64" in r or "2001:db8" in r for r in v4)
    assert "-A ISTIO_OUTPUT -d fd00:1::/64 -j ISTIO_REDIRECT" in v6
    assert "-A ISTIO_OUTPUT -d 2001:db8::/32 -j RETURN" in v6
    assert not any("10.1.0.0" in r for r in v6)


def test_ipv4_only_include_list_captures_no_ipv6() -> None:
    v6 = nat_rules(CaptureConfig(include_outbound_cidrs="10.1.0.0/16"), 6)
    assert not any("ISTIO_REDIRECT" in r for r in v6 if r.startswith("-A ISTIO_OUTPUT"))


def test_unknown_family_is_refused() -> None:
    with pytest.raises(ValueError, match="family"):
        restore_input(CaptureConfig(), 5)
