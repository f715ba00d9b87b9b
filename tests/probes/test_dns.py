"""The DNS prober against a loopback dnspython server, through a pod-like resolv.conf
(ndots:5, Kubernetes search list): answers, NXDOMAIN, SERVFAIL, empty answers, a server that never
answers, search-domain expansion order, mesh VIPs, the --resolver / --resolve bypasses, and the
hosts file read first (localhost, hostAliases)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from probes import dns as dns_probe
from probes.model import Signature
from probes.options import ProbeContext, ProbeOptions
from probes.targets import parse_target
from tests.probes import servers

SEARCH = "ns1.svc.cluster.local svc.cluster.local cluster.local"
ZONE = servers.Zone(
    records={
        "good.lab.example.": {"A": ("127.0.0.1",), "AAAA": ("::1",)},
        "v4only.lab.example.": {"A": ("127.0.0.2",)},
        "v6only.lab.example.": {"AAAA": ("::1",)},
        "empty.lab.example.": {},
        "vip.lab.example.": {"A": ("240.240.0.7",)},
        "db.ns1.svc.cluster.local.": {"A": ("127.0.0.9",)},
        "db.": {"A": ("127.0.0.8",)},
        "a.b.c.d.e.lab.": {"A": ("127.0.0.10",)},
        "a.b.c.d.e.lab.cluster.local.": {"A": ("127.0.0.11",)},
    },
    rcodes={"broken.lab.example.": "SERVFAIL"},
    unanswered_aaaa=frozenset({"v4only.lab.example."}),
)


@pytest.fixture(scope="module")
def resolv_conf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    with servers.serve_dns(ZONE) as address:
        path = tmp_path_factory.mktemp("dns") / "resolv.conf"
        path.write_text(f"nameserver {address}\nsearch {SEARCH}\noptions ndots:5\n")
        yield path, address


@pytest.fixture(scope="module")
def ctx(resolv_conf: tuple[Path, str]) -> Iterator[ProbeContext]:
    # timeout 0.6: v4only's AAAA is never answered; beside a good A that costs at most the budget
    with ProbeContext(ProbeOptions(timeout=0.6, resolv_conf=str(resolv_conf[0]))) as c:
        yield c


def _expanded(name: str) -> list[str]:
    return [f"{name}.{s}." for s in SEARCH.split()]


CASES = [
    # host, signature, a, aaaa, rcode, names tried
    (
        "good.lab.example",
        Signature.OK,
        ("127.0.0.1",),
        ("::1",),
        "NOERROR",
        [*_expanded("good.lab.example"), "good.lab.example."],
    ),
    (
        "v4only.lab.example",
        Signature.OK,
        ("127.0.0.2",),
        (),
        "NOERROR",
        [*_expanded("v4only.lab.example"), "v4only.lab.example."],
    ),
    ("v6only.lab.example.", Signature.OK, (), ("::1",), "NOERROR", ["v6only.lab.example."]),
    (
        "missing.lab.example",
        Signature.DNS_NXDOMAIN,
        (),
        (),
        "NXDOMAIN",
        [*_expanded("missing.lab.example"), "missing.lab.example."],
    ),
    ("broken.lab.example.", Signature.DNS_SERVFAIL, (), (), "SERVFAIL", ["broken.lab.example."]),
    ("empty.lab.example.", Signature.DNS_NO_ANSWER, (), (), "NOERROR", ["empty.lab.example."]),
    ("db", Signature.OK, ("127.0.0.9",), (), "NOERROR", ["db.ns1.svc.cluster.local."]),
    (
        "a.b.c.d.e.lab",
        Signature.OK,
        ("127.0.0.10",),
        (),
        "NOERROR",
        ["a.b.c.d.e.lab."],
    ),  # 5 dots: as-is first
]


@pytest.mark.parametrize(
    ("host", "signature", "a", "aaaa", "rcode", "tried"), CASES, ids=[c[0] for c in CASES]
)
def test_resolution_through_resolv_conf(
    ctx: ProbeContext,
    resolv_conf: tuple[Path, str],
    host: str,
    signature: Signature,
    a: tuple[str, ...],
    aaaa: tuple[str, ...],
    rcode: str,
    tried: list[str],
) -> None:
    result = dns_probe.probe(parse_target(host), ctx)
    assert result.signature is signature, result.error
    evidence = result.dns
    assert evidence is not None
    assert (evidence.a, evidence.aaaa, evidence.rcode) == (a, aaaa, rcode)
    assert list(evidence.names_tried) == tried
    assert evidence.source == "resolv.conf" and not evidence.bypassed_pod_dns
    assert evidence.resolver == f"{resolv_conf[1]}:53"
    assert result.phases.resolve is not None
    if signature is Signature.OK:
        assert evidence.answered_name == tried[-1]


def test_unanswered_aaaa_beside_a_good_a_is_ok_and_bounded(ctx: ProbeContext) -> None:
    result = dns_probe.probe(parse_target("v4only.lab.example."), ctx)
    assert result.signature is Signature.OK and result.dns is not None
    assert result.dns.a == ("127.0.0.2",) and result.dns.aaaa == ()
    assert result.elapsed < 1.5


def test_mesh_vip_is_flagged(ctx: ProbeContext) -> None:
    result = dns_probe.probe(parse_target("vip.lab.example."), ctx)
    assert result.signature is Signature.OK and result.dns is not None and result.dns.mesh_vip


def test_silent_server_is_dns_timeout(tmp_path: Path) -> None:
    with servers.serve_dns(None) as address:
        conf = tmp_path / "resolv.conf"
        conf.write_text(f"nameserver {address}\noptions ndots:5\nsearch {SEARCH}\n")
        with ProbeContext(ProbeOptions(timeout=0.4, resolv_conf=str(conf))) as c:
            result = dns_probe.probe(parse_target("good.lab.example"), c)
    assert result.signature is Signature.DNS_TIMEOUT
    assert result.dns is not None and result.dns.names_tried == ("good.lab.example.ns1.svc.cluster.local.",)
    assert result.elapsed < 2.0


def test_resolver_flag_bypasses_pod_dns(resolv_conf: tuple[Path, str], tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.1\noptions ndots:1\n")  # a server that is not there
    with ProbeContext(ProbeOptions(timeout=2.0, resolv_conf=str(conf), resolver=f"{resolv_conf[1]}:53")) as c:
        result = dns_probe.probe(parse_target("good.lab.example"), c)
    assert result.signature is Signature.OK
    assert result.dns is not None and result.dns.bypassed_pod_dns and result.dns.source == "resolver-flag"
    assert result.dns.names_tried == ("good.lab.example.",)


def test_resolve_flag_skips_dns(tmp_path: Path) -> None:
    options = ProbeOptions(resolv_conf=str(tmp_path / "absent"), resolve={"x.lab.example": "240.240.1.1"})
    with ProbeContext(options) as c:
        result = dns_probe.probe(parse_target("X.lab.example"), c)
        missing = dns_probe.probe(parse_target("y.lab.example"), c)
    assert result.signature is Signature.OK and result.dns is not None
    assert result.dns.source == "resolve-flag" and result.dns.bypassed_pod_dns and result.dns.mesh_vip
    assert missing.signature is Signature.PROBE_ERROR  # no resolv.conf: the probe cannot resolve
    assert missing.error


def test_ip_literal_needs_no_dns(ctx: ProbeContext) -> None:
    result = dns_probe.probe(parse_target("[::1]:8080"), ctx)
    assert result.signature is Signature.OK and result.dns is not None
    assert result.dns.aaaa == ("::1",) and result.dns.source == "ip-literal" and result.dns.names_tried == ()


@pytest.mark.parametrize(
    ("host", "ndots", "expected"),
    [
        ("a", 5, ["a.s1.", "a.s2.", "a."]),
        ("a.b.c", 2, ["a.b.c.", "a.b.c.s1.", "a.b.c.s2."]),
        ("a.", 5, ["a."]),
    ],
)
def test_candidate_names(host: str, ndots: int, expected: list[str]) -> None:
    assert dns_probe.candidate_names(host, ["s1.", "s2"], ndots) == expected


@pytest.mark.parametrize("raw", ["missing.lab.example:5432", "tls://missing.lab.example:8443",
                                 "http://missing.lab.example/", "https://missing.lab.example/"])
def test_dns_failure_keeps_the_target_and_its_warnings(ctx: ProbeContext, raw: str) -> None:
    from probes.runner import PROBERS

    spec = parse_target(raw)
    result = PROBERS[spec.protocol](spec, ctx)
    assert result.signature is Signature.DNS_NXDOMAIN
    assert result.dns is not None and result.dns.rcode == "NXDOMAIN"
    assert result.phases.resolve is not None and result.phases.connect is None
    assert result.notes == spec.warnings
    if raw.endswith(":5432"):
        assert spec.warnings, "a bare HOST:PORT on an unknown port warns about server-first protocols"


HOSTS = """\
# Kubernetes-managed hosts file.
127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
10.244.0.7\tprobe-pod

# Entries added by HostAliases.
10.1.2.3\tlegacy.internal Legacy-API
10.1.2.4\tgood.lab.example
"""


@pytest.fixture
def pod_etc(resolv_conf: tuple[Path, str], tmp_path: Path) -> Iterator[ProbeContext]:
    """A pod's /etc: its resolv.conf (the test DNS server) and a hosts file beside it."""
    (tmp_path / "resolv.conf").write_text(resolv_conf[0].read_text())
    (tmp_path / "hosts").write_text(HOSTS)
    with ProbeContext(ProbeOptions(timeout=0.6, resolv_conf=str(tmp_path / "resolv.conf"))) as c:
        yield c


@pytest.mark.parametrize(
    ("host", "a", "aaaa"),
    [
        ("localhost", ("127.0.0.1",), ("::1",)),
        ("legacy.internal", ("10.1.2.3",), ()),
        ("legacy-api", ("10.1.2.3",), ()),  # letter case does not matter
        ("good.lab.example", ("10.1.2.4",), ()),  # the hosts file wins over DNS (127.0.0.1 there)
    ],
)
def test_the_hosts_file_comes_first(
    pod_etc: ProbeContext, host: str, a: tuple[str, ...], aaaa: tuple[str, ...]
) -> None:
    result = dns_probe.probe(parse_target(host), pod_etc)
    assert result.signature is Signature.OK, result.error
    assert result.dns is not None
    assert (result.dns.a, result.dns.aaaa, result.dns.source) == (a, aaaa, "hosts-file")
    assert result.dns.names_tried == (host,) and not result.dns.bypassed_pod_dns


def test_names_not_in_the_hosts_file_go_to_dns(pod_etc: ProbeContext) -> None:
    result = dns_probe.probe(parse_target("v4only.lab.example"), pod_etc)
    assert result.dns is not None and result.dns.source == "resolv.conf"
    assert result.dns.a == ("127.0.0.2",)
    dotted = dns_probe.probe(parse_target("legacy.internal."), pod_etc)  # a trailing dot never matches
    assert dotted.signature is Signature.DNS_NXDOMAIN and dotted.dns is not None
    assert dotted.dns.source == "resolv.conf"


def test_resolver_flag_skips_the_hosts_file(resolv_conf: tuple[Path, str], tmp_path: Path) -> None:
    (tmp_path / "hosts").write_text(HOSTS)
    resolv = tmp_path / "resolv.conf"
    options = ProbeOptions(timeout=0.6, resolv_conf=str(resolv), resolver=resolv_conf[1])
    with ProbeContext(options) as c:
        result = dns_probe.probe(parse_target("good.lab.example"), c)
    assert result.dns is not None and result.dns.source == "resolver-flag"
    assert result.dns.a == ("127.0.0.1",)


def test_localhost_resolves_with_the_machines_own_hosts_file() -> None:
    with ProbeContext(ProbeOptions(timeout=1.0)) as c:  # /etc/resolv.conf, so /etc/hosts
        result = dns_probe.probe(parse_target("localhost"), c)
    assert result.signature is Signature.OK, result.error
    assert result.dns is not None and result.dns.source == "hosts-file"
    assert "127.0.0.1" in result.dns.a or "::1" in result.dns.aaaa

