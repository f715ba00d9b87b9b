"""The target parser (docs/targets.md): table of accepted and rejected targets, plus a fuzz test."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from probes.model import Protocol, TargetSpec
from probes.targets import NO_SNI_WARNING, TargetError, parse_target

ACCEPTED = [
    # raw, protocol, host, port, path, sni, ip_literal, url
    ("example.com", "https", "example.com", 443, "/", "example.com", False, "https://example.com:443/"),
    ("Example.COM", "https", "example.com", 443, "/", "example.com", False, "https://example.com:443/"),
    ("example.com.", "https", "example.com.", 443, "/", "example.com", False, "https://example.com.:443/"),
    ("example.com:80", "http", "example.com", 80, "/", None, False, "http://example.com:80/"),
    ("example.com:443", "https", "example.com", 443, "/", "example.com", False, "https://example.com:443/"),
    ("example.com:22", "tcp", "example.com", 22, "/", None, False, "tcp://example.com:22"),
    (
        "http://a.lab.example/x/y?q=1",
        "http",
        "a.lab.example",
        80,
        "/x/y?q=1",
        None,
        False,
        "http://a.lab.example:80/x/y?q=1",
    ),
    (
        "HTTPS://A.Lab.Example:8443",
        "https",
        "a.lab.example",
        8443,
        "/",
        "a.lab.example",
        False,
        "https://a.lab.example:8443/",
    ),
    (
        "https://a.lab.example?x=1",
        "https",
        "a.lab.example",
        443,
        "/?x=1",
        "a.lab.example",
        False,
        "https://a.lab.example:443/?x=1",
    ),
    (
        "tls://db.lab.example:5432",
        "tls",
        "db.lab.example",
        5432,
        "/",
        "db.lab.example",
        False,
        "tls://db.lab.example:5432",
    ),
    (
        "tls://db.lab.example",
        "tls",
        "db.lab.example",
        443,
        "/",
        "db.lab.example",
        False,
        "tls://db.lab.example:443",
    ),
    ("tcp://ssh.lab.example:22", "tcp", "ssh.lab.example", 22, "/", None, False, "tcp://ssh.lab.example:22"),
    ("10.0.0.1", "https", "10.0.0.1", 443, "/", None, True, "https://10.0.0.1:443/"),
    ("10.0.0.1:80", "http", "10.0.0.1", 80, "/", None, True, "http://10.0.0.1:80/"),
    ("::1", "https", "::1", 443, "/", None, True, "https://[::1]:443/"),
    ("[2001:DB8::1]:8080", "tcp", "2001:db8::1", 8080, "/", None, True, "tcp://[2001:db8::1]:8080"),
    ("http://[::1]:8080/p", "http", "::1", 8080, "/p", None, True, "http://[::1]:8080/p"),
    (
        "_srv.lab.example",
        "https",
        "_srv.lab.example",
        443,
        "/",
        "_srv.lab.example",
        False,
        "https://_srv.lab.example:443/",
    ),
]


@pytest.mark.parametrize(("raw", "protocol", "host", "port", "path", "sni", "ip", "url"), ACCEPTED)
def test_accepted_targets(
    raw: str, protocol: str, host: str, port: int, path: str, sni: str | None, ip: bool, url: str
) -> None:
    spec = parse_target(raw)
    assert (spec.protocol.value, spec.host, spec.port, spec.path, spec.sni, spec.ip_literal, spec.url) == (
        protocol,
        host,
        port,
        path,
        sni,
        ip,
        url,
    )
    assert spec.raw == raw


def test_unknown_port_warns_about_server_first() -> None:
    spec = parse_target("example.com:5432")
    assert spec.protocol is Protocol.TCP
    assert any("server-first" in w for w in spec.warnings)


@pytest.mark.parametrize(
    ("hint", "protocol"),
    [
        ("HTTP", "http"),
        ("HTTPS", "https"),
        ("TLS", "tls"),
        ("GRPC", "http"),
        ("MONGO", "tcp"),
        (Protocol.TLS, "tls"),
    ],
)
def test_port_protocol_hints(hint: str | Protocol, protocol: str) -> None:
    spec = parse_target("svc.lab.example:8443", {8443: hint})
    assert spec.protocol.value == protocol
    assert spec.warnings == ()


def test_hint_can_override_well_known_port() -> None:
    assert parse_target("x.lab.example:443", {443: "HTTP"}).protocol is Protocol.HTTP


@pytest.mark.parametrize("raw", ["1.2.3.4", "https://[::1]/", "tls://10.1.1.1:853"])
def test_ip_literal_tls_says_no_sni(raw: str) -> None:
    spec = parse_target(raw)
    assert spec.sni is None and NO_SNI_WARNING in spec.warnings


REJECTED = [
    ("", "empty"),
    (" example.com", "whitespace"),
    ("exa mple.com", "whitespace"),
    ("example.com\x00", "control"),
    ("example.com\x7f", "control"),
    ("exämple.com", "non-ASCII"),
    ("example.com:0", "out of range"),
    ("example.com:65536", "out of range"),
    ("example.com:http", "bad port"),
    ("example.com:", "bad port"),
    ("example.com:-1", "bad port"),
    ("ftp://example.com", "unsupported scheme"),
    ("://example.com", "unsupported scheme"),
    ("tcp://example.com", "port is required"),
    ("tcp://example.com:22/path", "no path"),
    ("https://user:pw@example.com/", "credentials"),
    ("example.com/path", "needs a scheme"),
    ("a..b", "empty label"),
    (".example.com", "empty label"),
    ("example.com..", "empty label"),
    (".", "empty host name"),
    ("https:///x", "empty host"),
    ("-a.example.com", "bad host name label"),
    ("a-.example.com", "bad host name label"),
    ("a!b.example", "bad host name label"),
    ("*.example.com", "wildcard"),
    ("a" * 64 + ".example", "label longer"),
    (".".join(["a" * 50] * 5) + ".example", "longer than 253"),
    ("1.2.3", "bad IPv4"),
    ("256.1.1.1", "bad IPv4"),
    ("[::1", "unclosed"),
    ("[::g]:80", "bad IPv6"),
    ("[::1]x", "unexpected text"),
    ("fe80::1%eth0", "zone"),
    ("x" * 3000, "longer than 2048"),
]


@pytest.mark.parametrize(("raw", "why"), REJECTED)
def test_rejected_targets_name_the_target(raw: str, why: str) -> None:
    with pytest.raises(TargetError) as info:
        parse_target(raw)
    message = str(info.value)
    assert why in message
    assert message.startswith("invalid target ")
    assert "\n" not in message
    assert repr(raw[:20])[1:-1][:10] in message or len(raw) == 0


URLISH = r"\A(https?|tls|tcp|ftp|)(://)?[a-zA-Z0-9\.\-\[\]:_*]{0,40}(:[0-9]{0,6})?(/[ -~]{0,10})?\Z"


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.text(max_size=80),
        st.from_regex(URLISH),
    )
)
def test_fuzz_gives_a_spec_or_a_target_error(raw: str) -> None:
    try:
        spec = parse_target(raw, {8080: "HTTP"})
    except TargetError as exc:
        assert "invalid target" in str(exc)
        return
    assert isinstance(spec, TargetSpec)
    assert 1 <= spec.port <= 65535
    assert spec.host == spec.host.lower() and spec.host


def test_trailing_dot_keeps_host_but_not_sni() -> None:
    spec = parse_target("tls://A.lab.example.:8443")
    assert (spec.host, spec.sni) == ("a.lab.example.", "a.lab.example")
    assert any("trailing dot" in w for w in spec.warnings)
