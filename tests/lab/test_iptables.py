"""lab/iptables.py: the rules equal what istio-iptables emits (goldens transcribed from
istio/istio tools/istio-iptables/pkg/capture/testdata and the prototype's rules file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.iptables import CaptureConfig, internet_firewall, nat_rules, restore_input

TESTDATA = Path(__file__).parent / "testdata"


def test_injector_defaults_equal_istio_iptables_output() -> None:
    assert restore_input(CaptureConfig()) == (TESTDATA / "istio-iptables-default.rules").read_text()


def test_dns_capture_adds_output_dns_chain_and_conntrack_zones() -> None:
    cfg = CaptureConfig(redirect_dns=True, dns_servers=("10.96.0.10",))
    assert restore_input(cfg) == (TESTDATA / "istio-iptables-dns.rules").read_text()


def test_dns_capture_without_nameservers_is_disabled_like_run_go() -> None:
    assert restore_input(CaptureConfig(redirect_dns=True)) == restore_input(CaptureConfig())


def test_capture_all_dns_has_no_destination_match() -> None:
    text = restore_input(CaptureConfig(redirect_dns=True, capture_all_dns=True))
    assert "-A ISTIO_OUTPUT_DNS -p udp --dport 53 -j REDIRECT --to-port 15053" in text
    assert "-A ISTIO_INBOUND -p udp --sport 53 -j CT --zone 1" in text


@pytest.mark.parametrize(
    ("annotations", "expected_tail"),
    [
        (
            {"traffic.sidecar.istio.io/excludeOutboundIPRanges": "10.0.0.0/8,192.168.0.0/16"},
            [
                "-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN",
                "-A ISTIO_OUTPUT -d 10.0.0.0/8 -j RETURN",
                "-A ISTIO_OUTPUT -d 192.168.0.0/16 -j RETURN",
                "-A ISTIO_OUTPUT -j ISTIO_REDIRECT",
            ],
        ),
        (
            {"traffic.sidecar.istio.io/includeOutboundIPRanges": "10.1.0.0/16"},
            [
                "-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN",
                "-A ISTIO_OUTPUT -d 10.1.0.0/16 -j ISTIO_REDIRECT",
                "-A ISTIO_OUTPUT -j RETURN",
            ],
        ),
        (
            {"traffic.sidecar.istio.io/includeOutboundIPRanges": ""},
            [
                "-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN",
                "-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN",
            ],
        ),
        (
            {
                "traffic.sidecar.istio.io/includeOutboundIPRanges": "",
                "traffic.sidecar.istio.io/includeOutboundPorts": "443",
            },
            [
                "-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN",
                "-A ISTIO_OUTPUT -p tcp --dport 443 -j ISTIO_REDIRECT",
            ],
        ),
    ],
)
def test_bypass_annotations_shape_the_output_chain(
    annotations: dict[str, str], expected_tail: list[str]
) -> None:
    rules = [
        r for r in nat_rules(CaptureConfig.from_annotations(annotations)) if r.startswith("-A ISTIO_OUTPUT ")
    ]
    assert rules[-len(expected_tail) :] == expected_tail


def test_excluded_outbound_ports_come_first_for_tcp_and_udp() -> None:
    rules = nat_rules(
        CaptureConfig.from_annotations({"traffic.sidecar.istio.io/excludeOutboundPorts": "22,5432"})
    )
    output = [r for r in rules if r.startswith("-A ISTIO_OUTPUT ")]
    assert output[:4] == [
        "-A ISTIO_OUTPUT -p tcp --dport 22 -j RETURN",
        "-A ISTIO_OUTPUT -p udp --dport 22 -j RETURN",
        "-A ISTIO_OUTPUT -p tcp --dport 5432 -j RETURN",
        "-A ISTIO_OUTPUT -p udp --dport 5432 -j RETURN",
    ]


def test_exclude_inbound_ports_annotation_keeps_the_status_ports() -> None:
    cfg = CaptureConfig.from_annotations({"traffic.sidecar.istio.io/excludeInboundPorts": "8080"})
    assert cfg.exclude_inbound_ports == "15090,15021,15020,8080"


def test_internet_firewall_drops_syns_silently() -> None:
    assert "-A INPUT -d 10.70.1.99/32 -p tcp -j DROP" in internet_firewall(["10.70.1.99"])


@pytest.mark.lab
def test_rules_load_and_read_back_in_a_pod(runtime_lab: object) -> None:
    from lab.netns import nsenter_argv, run

    pod = runtime_lab.pod("dns")  # type: ignore[attr-defined]
    saved = run([*nsenter_argv(pod.net.netns), "iptables-save"])
    assert any("ISTIO_OUTPUT_DNS" in line and "--to-ports 15053" in line for line in saved.splitlines())
    assert f"-A ISTIO_INBOUND -s {pod.net.dns_server}/32 -p udp -m udp --sport 53 -j CT --zone 1" in saved
    assert "-A ISTIO_OUTPUT -j ISTIO_REDIRECT" in saved
