"""The HTTP(S) prober against loopback servers: statuses, redirect chains across hosts, loops, and
each of Envoy's local replies beside the same status relayed with x-envoy-upstream-service-time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from probes import http
from probes.model import Origin, Signature
from probes.options import ProbeContext, ProbeOptions
from probes.targets import parse_target
from tests.probes import servers
from tests.probes.servers import Reply

UST = {"x-envoy-upstream-service-time": "3"}
UPSTREAM_RESET = b"upstream connect error or disconnect/reset before headers. "
ENVOY_ROUTES = {
    ("*", "/ok"): Reply(200, b"hello", {"content-type": "text/plain"}),
    ("*", "/missing"): Reply(404, b"no such page", UST),
    ("*", "/blackhole"): Reply(502),
    ("*", "/nr"): Reply(404),
    ("*", "/rbac"): Reply(403, b"RBAC: access denied"),
    ("*", "/uh"): Reply(503, b"no healthy upstream"),
    ("*", "/uf"): Reply(
        503, UPSTREAM_RESET + b"retried and the latest reset reason: remote connection failure"
    ),
    ("*", "/uc"): Reply(503, UPSTREAM_RESET + b"reset reason: connection termination"),
    ("*", "/uo"): Reply(503, UPSTREAM_RESET + b"reset reason: overflow"),
    ("*", "/tlsfail"): Reply(
        503,
        UPSTREAM_RESET + b"retried and the latest reset reason: remote connection "
        b"failure, transport failure reason: TLS_error:|268435581:SSL routines:"
        b"OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:TLS_error_end",
    ),
    ("*", "/nc"): Reply(503),
    ("*", "/ut"): Reply(504, b"upstream request timeout"),
    ("*", "/http10"): Reply(426),
    ("*", "/ratelimit"): Reply(429, b"local_rate_limited"),
    ("*", "/fault"): Reply(503, b"fault filter abort"),
    ("*", "/relayed-502"): Reply(502, b"", UST),
    ("*", "/relayed-uh"): Reply(503, b"no healthy upstream", UST),
    ("*", "/relayed-nr"): Reply(404, b"", UST),
    ("*", "/relayed-rbac"): Reply(403, b"RBAC: access denied", UST),
}


@pytest.fixture(scope="module")
def envoy_port() -> Iterator[int]:
    with servers.serve_http(ENVOY_ROUTES) as port:
        yield port


@pytest.fixture(scope="module")
def ctx() -> Iterator[ProbeContext]:
    with ProbeContext(ProbeOptions(timeout=2.0, resolve={"svc.lab.example": "127.0.0.1"})) as c:
        yield c


LOCAL_REPLIES = [
    ("/ok", 200, Signature.OK, None, None),
    ("/missing", 404, Signature.HTTP_STATUS, Origin.VIA_ROUTE, None),
    ("/blackhole", 502, Signature.ENVOY_BLACKHOLE_502, Origin.LOCAL_SIDECAR, "block_all"),
    ("/nr", 404, Signature.ENVOY_404_NR, Origin.LOCAL_SIDECAR, "no route"),
    ("/rbac", 403, Signature.ENVOY_403_RBAC, Origin.LOCAL_SIDECAR, "RBAC: access denied"),
    ("/uh", 503, Signature.ENVOY_503_UPSTREAM, Origin.LOCAL_SIDECAR, "no healthy upstream"),
    ("/uf", 503, Signature.ENVOY_503_UPSTREAM, Origin.LOCAL_SIDECAR, "remote connection failure"),
    ("/uc", 503, Signature.ENVOY_503_UPSTREAM, Origin.LOCAL_SIDECAR, "connection termination"),
    ("/uo", 503, Signature.ENVOY_503_UPSTREAM, Origin.LOCAL_SIDECAR, "overflow"),
    (
        "/tlsfail",
        503,
        Signature.ENVOY_503_UPSTREAM,
        Origin.LOCAL_SIDECAR,
        "remote connection failure (TLS transport failure: TLS_error:|268435581:SSL routines:"
        "OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:TLS_error_end)",
    ),
    ("/nc", 503, Signature.ENVOY_503_NO_CLUSTER, Origin.LOCAL_SIDECAR, "no cluster"),
    ("/ut", 504, Signature.ENVOY_504_TIMEOUT, Origin.LOCAL_SIDECAR, "upstream request timeout"),
    ("/http10", 426, Signature.ENVOY_426_HTTP10, Origin.LOCAL_SIDECAR, "HTTP/1.0 not accepted"),
    ("/ratelimit", 429, Signature.ENVOY_LOCAL_OTHER, Origin.LOCAL_SIDECAR, "local_rate_limited"),
    ("/fault", 503, Signature.ENVOY_LOCAL_OTHER, Origin.LOCAL_SIDECAR, "fault filter abort"),
    ("/relayed-502", 502, Signature.HTTP_STATUS, Origin.VIA_ROUTE, None),
    ("/relayed-uh", 503, Signature.HTTP_STATUS, Origin.VIA_ROUTE, None),
    ("/relayed-nr", 404, Signature.HTTP_STATUS, Origin.VIA_ROUTE, None),
    ("/relayed-rbac", 403, Signature.HTTP_STATUS, Origin.VIA_ROUTE, None),
]


@pytest.mark.parametrize(
    ("path", "status", "signature", "origin", "reason"), LOCAL_REPLIES, ids=[c[0] for c in LOCAL_REPLIES]
)
def test_plaintext_replies(
    ctx: ProbeContext,
    envoy_port: int,
    path: str,
    status: int,
    signature: Signature,
    origin: Origin | None,
    reason: str | None,
) -> None:
    result = http.probe(parse_target(f"http://svc.lab.example:{envoy_port}{path}"), ctx)
    assert result.signature is signature
    assert result.origin is origin
    assert result.http is not None and result.http.status == status
    assert result.http.envoy_reason == reason
    assert result.http.headers["server"] == "envoy"  # present in every case: it decides nothing
    relayed = path == "/missing" or path.startswith("/relayed")
    assert (result.http.upstream_service_time == "3") is relayed
    assert result.phases.connect is not None and result.phases.first_byte is not None
    assert result.tls is None and result.tcp is not None and result.tcp.address == f"127.0.0.1:{envoy_port}"


def test_no_envoy_signature_without_a_sidecar_on_the_path(envoy_port: int) -> None:
    options = ProbeOptions(timeout=2.0, sidecar_present=True, resolve={"svc.lab.example": "127.0.0.1"})
    with ProbeContext(options) as c:  # loopback is never captured, so the empty 502 is the server's own
        result = http.probe(parse_target(f"http://svc.lab.example:{envoy_port}/blackhole"), c)
    assert result.signature is Signature.HTTP_STATUS and result.origin is Origin.DIRECT
    assert result.tcp is not None and result.tcp.captured is False


def test_host_header_and_body_excerpt(ctx: ProbeContext) -> None:
    routes = {("svc.lab.example", "/"): Reply(200, b"for svc"), ("*", "/"): Reply(500, b"wrong host")}
    with servers.serve_http(routes) as port:
        result = http.probe(parse_target(f"http://SVC.lab.example:{port}/"), ctx)
    assert result.signature is Signature.OK
    assert (
        result.http is not None and result.http.body_excerpt == "for svc" and result.http.content_length == 7
    )


def test_redirect_chain_across_hosts(tmp_path: Path) -> None:
    with (
        servers.serve_http({("*", "/final"): Reply(200, b"done")}, address="127.0.0.3") as port_c,
        servers.serve_http(
            {("*", "/hop"): Reply(301, headers={"location": f"http://c.lab.example:{port_c}/final"})},
            address="127.0.0.2",
        ) as port_b,
        servers.serve_http(
            {("*", "/"): Reply(302, headers={"location": f"http://b.lab.example:{port_b}/hop"})}
        ) as port_a,
    ):
        resolve = {"a.lab.example": "127.0.0.1", "b.lab.example": "127.0.0.2", "c.lab.example": "127.0.0.3"}
        with ProbeContext(ProbeOptions(timeout=2.0, resolve=resolve)) as c:
            result = http.probe(parse_target(f"http://a.lab.example:{port_a}/"), c)
    assert result.signature is Signature.OK
    assert [(h.url, h.status) for h in result.redirects] == [
        (f"http://a.lab.example:{port_a}/", 302),
        (f"http://b.lab.example:{port_b}/hop", 301),
    ]
    assert result.redirects[1].location == f"http://c.lab.example:{port_c}/final"
    assert result.target.host == "a.lab.example"  # the result stays the target the user asked for
    assert result.dns is not None and result.dns.a == ("127.0.0.3",)  # evidence of the last hop
    assert result.http is not None and result.http.body_excerpt == "done"
    assert any("last hop" in n for n in result.notes)


def test_redirect_to_a_blocked_host_reports_the_blocked_hop(ctx: ProbeContext, envoy_port: int) -> None:
    routes = {("*", "/"): Reply(302, headers={"location": f"http://svc.lab.example:{envoy_port}/blackhole"})}
    with servers.serve_http(routes) as port:
        result = http.probe(parse_target(f"http://svc.lab.example:{port}/"), ctx)
    assert result.signature is Signature.ENVOY_BLACKHOLE_502
    assert [h.signature for h in result.redirects] == [Signature.OK]


@pytest.mark.parametrize(
    ("routes", "error"),
    [
        (
            {
                ("*", "/a"): Reply(302, headers={"location": "/b"}),
                ("*", "/b"): Reply(302, headers={"location": "/a"}),
            },
            "redirect loop",
        ),
        (
            {("*", f"/{i}"): Reply(302, headers={"location": f"/{i + 1}"}) for i in range(20)},
            "more than 3 redirects",
        ),
    ],
    ids=["loop", "too-many"],
)
def test_redirect_loops_and_limits(routes: dict[tuple[str, str], Reply], error: str) -> None:
    start = "/a" if "/a" in {p for _, p in routes} else "/0"
    with (
        servers.serve_http(routes) as port,
        ProbeContext(
            ProbeOptions(timeout=2.0, max_redirects=3, resolve={"svc.lab.example": "127.0.0.1"})
        ) as c,
    ):
        result = http.probe(parse_target(f"http://svc.lab.example:{port}{start}"), c)
    assert result.signature is Signature.HTTP_STATUS
    assert result.error is not None and error in result.error
    assert 2 <= len(result.redirects) <= 3


@pytest.fixture(scope="module")
def https_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ProbeContext, int]]:
    ca = trustme.CA()
    ca_file = tmp_path_factory.mktemp("https") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    import ssl

    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("secure.lab.example").configure_cert(server_ctx)
    with (
        servers.serve_http(ENVOY_ROUTES, tls=server_ctx) as port,
        ProbeContext(
            ProbeOptions(
                timeout=2.0,
                ca_file=str(ca_file),
                resolve={"secure.lab.example": "127.0.0.1", "bad.lab.example": "127.0.0.1"},
            )
        ) as c,
    ):
        yield c, port


@pytest.mark.parametrize(
    ("path", "signature"),
    [("/ok", Signature.OK), ("/uh", Signature.HTTP_STATUS), ("/blackhole", Signature.HTTP_STATUS)],
)
def test_https_never_gets_envoy_signatures(
    https_setup: tuple[ProbeContext, int], path: str, signature: Signature
) -> None:
    c, port = https_setup
    result = http.probe(parse_target(f"https://secure.lab.example:{port}{path}"), c)
    assert result.signature is signature and result.origin is Origin.END_TO_END_TLS
    assert result.http is not None and result.http.envoy_reason is None
    assert result.tls is not None and result.tls.verified and result.tls.sni == "secure.lab.example"
    assert result.tls.peer_sans == ("DNS:secure.lab.example",) and result.tls.alpn_offered == ("http/1.1",)
    assert result.phases.tls is not None and result.phases.tls > 0


def test_https_hostname_mismatch_shows_the_certificate(https_setup: tuple[ProbeContext, int]) -> None:
    c, port = https_setup
    result = http.probe(parse_target(f"https://bad.lab.example:{port}/ok"), c)
    assert result.signature is Signature.TLS_HOSTNAME_MISMATCH
    assert result.tls is not None and result.tls.peer_sans == ("DNS:secure.lab.example",)
    assert (
        result.http is None
        and result.error_class is not None
        and "SSLCertVerificationError" in result.error_class
    )


@pytest.mark.parametrize(
    ("behaviour", "scheme", "signature"),
    [
        (servers.reset_after_hello, "https", Signature.RESET_BEFORE_RESPONSE),
        (servers.close_after_hello, "https", Signature.RESET_BEFORE_RESPONSE),
        (servers.plaintext_http, "https", Signature.TLS_WRONG_VERSION),
        (servers.reset_after_hello, "http", Signature.RESET_BEFORE_RESPONSE),
        (servers.close_after_hello, "http", Signature.RESET_BEFORE_RESPONSE),
        (servers.garbage_reply, "http", Signature.PROTOCOL_ERROR),
    ],
    ids=["https-rst", "https-eof", "https-plaintext", "http-rst", "http-empty-reply", "http-not-http"],
)
def test_failures_before_the_first_byte(
    ctx: ProbeContext, behaviour: object, scheme: str, signature: Signature
) -> None:
    with servers.serve_raw(behaviour) as port:  # type: ignore[arg-type]
        result = http.probe(parse_target(f"{scheme}://svc.lab.example:{port}/"), ctx)
    assert result.signature is signature, (result.error, result.error_class)
    assert result.http is None and result.error and result.error_class
    assert result.phases.connect is not None


def test_http_refused_and_read_timeout() -> None:
    port = servers.refused_port()
    with ProbeContext(ProbeOptions(timeout=0.3, resolve={"svc.lab.example": "127.0.0.1"})) as c:
        refused = http.probe(parse_target(f"http://svc.lab.example:{port}/"), c)
        with servers.serve_raw(servers.stay_silent) as silent_port:
            silent = http.probe(parse_target(f"http://svc.lab.example:{silent_port}/"), c)
    assert refused.signature is Signature.TCP_REFUSED and refused.phases.first_byte is None
    assert silent.signature is Signature.READ_TIMEOUT


def test_ipv6_literal_and_ipv6_answer(ctx: ProbeContext) -> None:
    with servers.serve_http({("*", "/v6"): Reply(200, b"six")}, address="::1") as port:
        literal = http.probe(parse_target(f"http://[::1]:{port}/v6"), ctx)
        with ProbeContext(ProbeOptions(timeout=2.0, resolve={"six.lab.example": "::1"})) as c:
            named = http.probe(parse_target(f"http://six.lab.example:{port}/v6"), c)
    for result in (literal, named):
        assert result.signature is Signature.OK, result.error
        assert result.tcp is not None and result.tcp.address == f"[::1]:{port}"
        assert result.http is not None and result.http.body_excerpt == "six"
    assert named.dns is not None and named.dns.aaaa == ("::1",) and named.dns.a == ()


def test_proxy_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    with servers.serve_http({("*", "/"): Reply(200, b"direct")}) as origin:
        url = f"http://web.lab.example:{origin}/"
        with servers.serve_http({("*", url): Reply(200, b"via proxy")}) as proxy_port:
            proxy = f"http://127.0.0.1:{proxy_port}"
            monkeypatch.setenv("HTTP_PROXY", proxy)  # never used implicitly (trust_env is off)
            monkeypatch.setenv("http_proxy", proxy)
            resolve = {"web.lab.example": "127.0.0.1"}
            with ProbeContext(ProbeOptions(timeout=2.0, resolve=resolve)) as direct_ctx:
                direct = http.probe(parse_target(url), direct_ctx)
            with ProbeContext(ProbeOptions(timeout=2.0, resolve=resolve, proxy=proxy)) as proxied_ctx:
                proxied = http.probe(parse_target(url), proxied_ctx)
    assert direct.http is not None and direct.http.body_excerpt == "direct"
    assert proxied.http is not None and proxied.http.body_excerpt == "via proxy"
    assert any("proxy" in n for n in proxied.notes) and not any("proxy" in n for n in direct.notes)
