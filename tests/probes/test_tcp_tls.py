"""TCP and TLS probers against real loopback peers: every case asserts signature and evidence."""

from __future__ import annotations

import dataclasses
import datetime
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme

from probes import tcp, tls
from probes.model import Origin, Signature
from probes.options import ProbeContext, ProbeOptions
from probes.targets import parse_target
from tests.probes import servers


@pytest.fixture(scope="module")
def ctx() -> Iterator[ProbeContext]:
    with ProbeContext(
        ProbeOptions(timeout=2.0, read_window=2.0, resolve={"peer.lab.example": "127.0.0.1"})
    ) as c:
        yield c


TCP_CASES: list[tuple[str, Callable[..., None], Signature, dict[str, object]]] = [
    ("banner", servers.banner(b"SSH-2.0-MeshLab\r\n"), Signature.OK, {"banner": "SSH-2.0-MeshLab"}),
    ("accept-then-close", servers.close_now, Signature.TCP_CLOSED_AFTER_CONNECT, {"closed_by_peer": True}),
    ("accept-then-rst", servers.reset_now, Signature.TCP_CLOSED_AFTER_CONNECT, {"closed_by_peer": True}),
    ("silent", servers.stay_silent, Signature.OK, {"silent": True, "banner": None}),
]


@pytest.mark.parametrize(
    ("name", "behaviour", "signature", "evidence"), TCP_CASES, ids=[c[0] for c in TCP_CASES]
)
def test_tcp_peers(
    ctx: ProbeContext,
    name: str,
    behaviour: Callable[..., None],
    signature: Signature,
    evidence: dict[str, object],
) -> None:
    window = 0.3 if name == "silent" else 2.0  # generous for peers that act: a loaded CI box is slow
    options = dataclasses.replace(ctx.options, read_window=window)
    with servers.serve_raw(behaviour) as port, ProbeContext(options) as own:
        result = tcp.probe(parse_target(f"tcp://peer.lab.example:{port}"), own)
    assert result.signature is signature, result.error
    assert result.tcp is not None and result.tcp.address == f"127.0.0.1:{port}"
    for key, value in evidence.items():
        assert getattr(result.tcp, key) == value
    assert result.phases.connect is not None and result.phases.resolve is not None
    assert result.dns is not None and result.dns.bypassed_pod_dns


CAPTURED_CASES: list[tuple[str, Callable[..., None], Signature, dict[str, object]]] = [
    ("silent", servers.stay_silent, Signature.READ_TIMEOUT, {"silent": True, "banner": None}),
    ("closed-after-the-window", servers.close_after(0.8), Signature.TCP_CLOSED_AFTER_CONNECT,
     {"closed_by_peer": True, "silent": False}),
    ("banner", servers.banner(b"220 mail ready\r\n"), Signature.OK, {"banner": "220 mail ready"}),
]


@pytest.mark.parametrize(
    ("name", "behaviour", "signature", "evidence"), CAPTURED_CASES, ids=[c[0] for c in CAPTURED_CASES]
)
def test_a_captured_connect_that_stays_silent_is_never_ok(
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    behaviour: Callable[..., None],
    signature: Signature,
    evidence: dict[str, object],
) -> None:
    """Through a sidecar the kernel's handshake is with Envoy: silence proves nothing about the
    destination, so the probe listens up to --timeout (Envoy closes when its upstream connect
    fails) and reports silence as READ_TIMEOUT, never OK. The peer here stands in for the
    sidecar: ``captured`` is forced, as ``--sidecar auto`` sets it for a non-loopback address."""
    options = ProbeOptions(timeout=1.5, read_window=0.3, resolve={"peer.lab.example": "127.0.0.1"})
    with servers.serve_raw(behaviour) as port, ProbeContext(options) as own:
        monkeypatch.setattr(own, "captured", lambda ip, p: True)
        result = tcp.probe(parse_target(f"tcp://peer.lab.example:{port}"), own)
    assert result.signature is signature, (name, result.error)
    assert result.tcp is not None and result.tcp.captured is True and result.tcp.note
    for key, value in evidence.items():
        assert getattr(result.tcp, key) == value, key
    if name == "silent":
        assert result.elapsed >= 1.2  # listened up to --timeout, not just the read window


def test_tcp_refused(ctx: ProbeContext) -> None:
    port = servers.refused_port()
    result = tcp.probe(parse_target(f"tcp://127.0.0.1:{port}"), ctx)
    assert result.signature is Signature.TCP_REFUSED
    assert result.error_class is not None and "ConnectionRefusedError" in result.error_class
    assert result.tcp is not None and result.tcp.address == f"127.0.0.1:{port}"


@pytest.mark.parametrize(
    ("present", "excluded", "captured"),
    [
        (True, (), True),
        (True, ("10.0.0.0/8",), False),
        (False, (), False),
        (None, (), None),
    ],
)
def test_capture_verdict(present: bool | None, excluded: tuple[str, ...], captured: bool | None) -> None:
    with ProbeContext(ProbeOptions(sidecar_present=present, capture_excluded_cidrs=excluded)) as c:
        assert c.captured("10.1.2.3", 22) is captured
        assert c.captured("127.0.0.1", 22) in (False, None)  # app-uid loopback is never redirected
        evidence = tcp.tcp_evidence("10.1.2.3", 22, c, "ssh.lab.example")
        assert evidence.captured is captured
        assert (evidence.note is not None) is bool(captured)
        if captured:
            assert "sidecar" in (evidence.note or "") and "ssh.lab.example" in (evidence.note or "")


# --- TLS -----------------------------------------------------------------------------------------


class Pki:
    def __init__(self, tmp: Path) -> None:
        self.ca = trustme.CA()
        self.other_ca = trustme.CA()
        self.ca_file = tmp / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        past = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
        self.leaves = {
            "a.lab.example": self.ca.issue_cert("a.lab.example"),
            "expired.lab.example": self.ca.issue_cert(
                "expired.lab.example", not_before=past, not_after=past + datetime.timedelta(days=1)
            ),
            "untrusted.lab.example": self.other_ca.issue_cert("untrusted.lab.example"),
            "wrong.lab.example": self.ca.issue_cert("other.lab.example"),
        }

    def server_context(self) -> ssl.SSLContext:
        contexts = {}
        for name, leaf in self.leaves.items():
            c = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            leaf.configure_cert(c)
            contexts[name] = c
        default = contexts["a.lab.example"]

        def pick(sock: ssl.SSLObject, name: str | None, _: ssl.SSLContext) -> None:
            sock.context = contexts.get(name or "", default)

        default.sni_callback = pick  # type: ignore[assignment]
        return default


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_port(pki: Pki) -> Iterator[int]:
    with servers.serve_http({("*", "/"): servers.Reply(200, b"ok")}, tls=pki.server_context()) as port:
        yield port


@pytest.fixture(scope="module")
def tls_ctx(pki: Pki) -> Iterator[ProbeContext]:
    names = ("a", "expired", "untrusted", "wrong")
    resolve = {f"{n}.lab.example": "127.0.0.1" for n in names}
    with ProbeContext(ProbeOptions(timeout=2.0, ca_file=str(pki.ca_file), resolve=resolve)) as c:
        yield c


TLS_CASES = [
    ("a", Signature.OK, "CN=a.lab.example", True),
    ("expired", Signature.TLS_CERT_UNTRUSTED, "expired", False),
    ("untrusted", Signature.TLS_CERT_UNTRUSTED, "unable to get local issuer", False),
    ("wrong", Signature.TLS_HOSTNAME_MISMATCH, "Hostname mismatch", False),
]


@pytest.mark.parametrize(
    ("name", "signature", "detail", "verified"), TLS_CASES, ids=[c[0] for c in TLS_CASES]
)
def test_tls_certificates(
    tls_ctx: ProbeContext, tls_port: int, name: str, signature: Signature, detail: str, verified: bool
) -> None:
    host = f"{name}.lab.example"
    result = tls.probe(parse_target(f"tls://{host}:{tls_port}"), tls_ctx)
    assert result.signature is signature, result.error
    evidence = result.tls
    assert evidence is not None and evidence.sni == host and evidence.verified is verified
    assert evidence.version == "TLSv1.3" and evidence.cipher
    assert evidence.peer_not_after and evidence.peer_issuer
    expected_san = "other.lab.example" if name == "wrong" else host
    assert evidence.peer_sans == (f"DNS:{expected_san}",)
    if verified:
        assert detail in (evidence.peer_subject or "") or evidence.peer_sans
        assert result.origin is Origin.END_TO_END_TLS and result.phases.tls is not None
    else:
        assert detail in (evidence.verify_error or ""), evidence.verify_error
        assert evidence.openssl_reason == "CERTIFICATE_VERIFY_FAILED"
    if name == "expired":
        assert (evidence.peer_not_after or "").startswith("2020-01-02")


@pytest.mark.parametrize(
    ("behaviour", "signature", "reason"),
    [
        (servers.reset_after_hello, Signature.RESET_BEFORE_RESPONSE, None),
        (servers.close_after_hello, Signature.RESET_BEFORE_RESPONSE, "UNEXPECTED_EOF_WHILE_READING"),
        (servers.plaintext_http, Signature.TLS_WRONG_VERSION, "WRONG_VERSION_NUMBER"),
    ],
    ids=["rst-after-hello", "eof-after-hello", "plaintext-on-tls-port"],
)
def test_tls_odd_peers(
    ctx: ProbeContext, behaviour: Callable[..., None], signature: Signature, reason: str | None
) -> None:
    with servers.serve_raw(behaviour) as port:
        result = tls.probe(parse_target(f"tls://peer.lab.example:{port}"), ctx)
    assert result.signature is signature, (result.error, result.error_class)
    assert result.tls is not None and result.tls.openssl_reason == reason
    assert result.tls.verified is None and result.tls.peer_subject is None
    assert result.phases.tls is not None and result.error


def test_tls_ip_literal_sends_no_sni(pki: Pki, tls_port: int) -> None:
    with ProbeContext(ProbeOptions(timeout=2.0, ca_file=str(pki.ca_file))) as c:
        result = tls.probe(parse_target(f"tls://127.0.0.1:{tls_port}"), c)
    # no SNI: the server falls back to its default cert, which does not name 127.0.0.1
    assert result.signature is Signature.TLS_HOSTNAME_MISMATCH
    assert result.tls is not None and result.tls.sni is None
    assert any("no SNI" in n for n in result.notes)


def test_tls_silent_peer_is_read_timeout(ctx: ProbeContext) -> None:
    with (
        ProbeContext(ProbeOptions(timeout=0.3, resolve={"peer.lab.example": "127.0.0.1"})) as quick,
        servers.serve_raw(servers.stay_silent) as port,
    ):
        result = tls.probe(parse_target(f"tls://peer.lab.example:{port}"), quick)
    assert result.signature is Signature.READ_TIMEOUT
    assert result.phases.connect is not None


def test_trailing_dot_verifies_against_the_name_without_it(tls_ctx: ProbeContext, tls_port: int) -> None:
    result = tls.probe(parse_target(f"tls://a.lab.example.:{tls_port}"), tls_ctx)
    assert result.signature is Signature.OK, result.error
    assert result.tls is not None and result.tls.sni == "a.lab.example"
    assert any("trailing dot" in n for n in result.notes)


def test_tcp_dropped_syn_is_tcp_timeout() -> None:
    with ProbeContext(ProbeOptions(timeout=0.3)) as quick, servers.syn_dropping_port() as port:
        result = tcp.probe(parse_target(f"tcp://127.0.0.1:{port}"), quick)
    assert result.signature is Signature.TCP_TIMEOUT, result.error
    assert result.phases.connect is not None and result.phases.connect >= 0.25
    assert result.tcp is not None and result.tcp.banner is None and not result.tcp.closed_by_peer


def test_no_shared_cipher_is_tls_alert(pki: Pki) -> None:
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    pki.leaves["a.lab.example"].configure_cert(server)
    server.maximum_version = ssl.TLSVersion.TLSv1_2
    server.set_ciphers("ECDHE-ECDSA-NULL-SHA:@SECLEVEL=0")  # nothing a default client offers
    with servers.serve_http({}, tls=server) as port, ProbeContext(ProbeOptions(timeout=2.0)) as c:
        result = tls.probe(parse_target(f"tls://127.0.0.1:{port}"), c)
    assert result.signature is Signature.TLS_ALERT, result.error
    assert result.tls is not None and result.tls.openssl_reason == "SSLV3_ALERT_HANDSHAKE_FAILURE"
