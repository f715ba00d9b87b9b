"""The exception -> signature table: every library exception class is covered by an explicit rule,
and representative exception chains map to the signature docs/signatures.md names."""

from __future__ import annotations

import errno
import importlib
import pkgutil
import ssl

import dns
import dns.exception
import dns.resolver
import httpcore
import httpx
import pytest

from probes.classify import EXCEPTION_TABLE, classify, rule_for
from probes.model import Phase, Signature

# Catch-all bases: a rule on one of these would make the coverage test vacuous. ssl.SSLError is
# one: the table's last TLS row catches every SSLError, so it must not count as covering the
# concrete classes (each has its own row; the base itself is asserted in SSL_CLASS_SIGNATURES).
ROOTS: tuple[type[BaseException], ...] = (
    BaseException,
    Exception,
    OSError,
    ValueError,
    ssl.SSLError,
    httpx.HTTPError,
    httpx.RequestError,
    httpx.TransportError,
    httpx.NetworkError,
    httpx.ProtocolError,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    dns.exception.DNSException,
)


def _subclasses(root: type[BaseException]) -> set[type[BaseException]]:
    found: set[type[BaseException]] = set()
    todo = [root]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in found:
                found.add(sub)
                todo.append(sub)
    return found


def _library_exceptions() -> list[type[BaseException]]:
    for info in pkgutil.walk_packages(dns.__path__, "dns."):
        try:
            importlib.import_module(info.name)
        except ImportError:  # optional backends (trio, quic) not installed
            continue
    classes: set[type[BaseException]] = set()
    for module in (httpx, httpcore, ssl):
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, BaseException):
                classes.add(value)
                classes |= {
                    c
                    for c in _subclasses(value)
                    if c.__module__.split(".")[0] in ("httpx", "httpcore", "ssl")
                }
    classes |= _subclasses(dns.exception.DNSException)
    classes.add(dns.exception.DNSException)
    return sorted(classes, key=lambda c: f"{c.__module__}.{c.__qualname__}")


def _explicit_rule(cls: type[BaseException]) -> bool:
    for rule in EXCEPTION_TABLE:
        if rule.when is not None:
            continue
        if isinstance(rule.match, str):
            if cls.__module__ == rule.match:
                return True
            continue
        matches = rule.match if isinstance(rule.match, tuple) else (rule.match,)
        if any(issubclass(cls, m) and m not in ROOTS for m in matches):
            return True
    return False


def test_every_library_exception_class_has_an_explicit_rule() -> None:
    classes = _library_exceptions()
    assert len(classes) > 100  # httpx + httpcore + ssl + ~90 dnspython classes
    roots = set(ROOTS)
    unmapped = [
        f"{c.__module__}.{c.__qualname__}" for c in classes if c not in roots and not _explicit_rule(c)
    ]
    assert unmapped == []


def test_the_coverage_check_can_fail() -> None:
    class Stray(dns.exception.DNSException):
        pass

    assert not _explicit_rule(Stray)


def test_a_catch_all_ssl_row_covers_no_concrete_class() -> None:
    """The SSLError fallback row must not make the TLS classes look covered."""
    assert not _explicit_rule(type("StraySSLError", (ssl.SSLError,), {}))


def _ssl_instance(cls: type[ssl.SSLError]) -> ssl.SSLError:
    if cls is ssl.SSLCertVerificationError:
        return _verify_error(20)
    return _ssl_error(cls, "SOME_OTHER_REASON")


SSL_CLASS_SIGNATURES: dict[type[ssl.SSLError], Signature] = {
    ssl.SSLError: Signature.TLS_ALERT,  # a reason no row names: "another TLS handshake failure"
    ssl.SSLCertVerificationError: Signature.TLS_CERT_UNTRUSTED,
    ssl.SSLEOFError: Signature.RESET_BEFORE_RESPONSE,
    ssl.SSLZeroReturnError: Signature.RESET_BEFORE_RESPONSE,
    ssl.SSLSyscallError: Signature.RESET_BEFORE_RESPONSE,
    ssl.SSLWantReadError: Signature.PROBE_ERROR,
    ssl.SSLWantWriteError: Signature.PROBE_ERROR,
}


def test_every_ssl_class_has_an_asserted_signature() -> None:
    """Each concrete ssl exception class (the base too), whatever its reason says, gets the
    signature written here; a class a new Python adds fails until it is added."""
    classes = {
        v for v in vars(ssl).values() if isinstance(v, type) and issubclass(v, ssl.SSLError)
    }
    assert classes == set(SSL_CLASS_SIGNATURES)
    for cls, signature in SSL_CLASS_SIGNATURES.items():
        assert classify(_ssl_instance(cls), Phase.TLS).signature is signature, cls.__name__


def test_no_rule_is_a_catch_all_base() -> None:
    for rule in EXCEPTION_TABLE:
        if isinstance(rule.match, str):
            continue
        matches = rule.match if isinstance(rule.match, tuple) else (rule.match,)
        assert not any(m in (BaseException, Exception) for m in matches)


def _ssl_error(cls: type[ssl.SSLError], reason: str) -> ssl.SSLError:
    exc = cls(1, f"[SSL: {reason}] something")
    exc.reason = reason
    return exc


def _verify_error(code: int) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.reason = "CERTIFICATE_VERIFY_FAILED"
    exc.verify_code = code
    exc.verify_message = {62: "Hostname mismatch", 20: "unable to get local issuer certificate"}.get(
        code, "x"
    )
    return exc


def _wrapped(outer: type[BaseException], inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as cause:
            raise outer("wrapped") from cause
    except BaseException as exc:
        return exc


CASES = [
    (
        _wrapped(httpx.ConnectError, ConnectionResetError(errno.ECONNRESET, "reset")),
        Phase.TLS,
        Signature.RESET_BEFORE_RESPONSE,
    ),
    (
        _wrapped(httpx.ConnectError, _ssl_error(ssl.SSLEOFError, "UNEXPECTED_EOF_WHILE_READING")),
        Phase.TLS,
        Signature.RESET_BEFORE_RESPONSE,
    ),
    (
        _wrapped(httpx.RemoteProtocolError, RuntimeError("x")),
        Phase.FIRST_BYTE,
        Signature.RESET_BEFORE_RESPONSE,
    ),
    (
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        Phase.FIRST_BYTE,
        Signature.RESET_BEFORE_RESPONSE,
    ),
    (
        _wrapped(httpx.ConnectError, _ssl_error(ssl.SSLError, "WRONG_VERSION_NUMBER")),
        Phase.TLS,
        Signature.TLS_WRONG_VERSION,
    ),
    (_ssl_error(ssl.SSLError, "TLSV1_ALERT_INTERNAL_ERROR"), Phase.TLS, Signature.TLS_ALERT),
    (_ssl_error(ssl.SSLError, "SSLV3_ALERT_HANDSHAKE_FAILURE"), Phase.TLS, Signature.TLS_ALERT),
    (_wrapped(httpx.ConnectError, _verify_error(62)), Phase.TLS, Signature.TLS_HOSTNAME_MISMATCH),
    (_wrapped(httpx.ConnectError, _verify_error(20)), Phase.TLS, Signature.TLS_CERT_UNTRUSTED),
    (_verify_error(10), Phase.TLS, Signature.TLS_CERT_UNTRUSTED),
    (
        _wrapped(httpx.ConnectError, ConnectionRefusedError(errno.ECONNREFUSED, "refused")),
        Phase.CONNECT,
        Signature.TCP_REFUSED,
    ),
    (OSError(errno.EHOSTUNREACH, "no route"), Phase.CONNECT, Signature.TCP_REFUSED),
    (OSError(errno.EMFILE, "too many open files"), Phase.CONNECT, Signature.PROBE_ERROR),
    (httpx.ConnectTimeout("t"), Phase.CONNECT, Signature.TCP_TIMEOUT),
    (httpx.ConnectTimeout("t"), Phase.TLS, Signature.READ_TIMEOUT),
    (httpx.ReadTimeout("t"), Phase.FIRST_BYTE, Signature.READ_TIMEOUT),
    (TimeoutError("timed out"), Phase.CONNECT, Signature.TCP_TIMEOUT),
    (dns.resolver.NXDOMAIN(), Phase.RESOLVE, Signature.DNS_NXDOMAIN),
    (dns.resolver.NoNameservers(), Phase.RESOLVE, Signature.DNS_SERVFAIL),
    (dns.resolver.LifetimeTimeout(timeout=1.0, errors=[]), Phase.RESOLVE, Signature.DNS_TIMEOUT),
    (dns.resolver.NoAnswer(), Phase.RESOLVE, Signature.DNS_NO_ANSWER),
    (RuntimeError("bug"), Phase.REQUEST, Signature.PROBE_ERROR),
]


@pytest.mark.parametrize(
    ("exc", "phase", "signature"), CASES, ids=[c[2].value + "-" + str(i) for i, c in enumerate(CASES)]
)
def test_exception_chains_map_to_signatures(exc: BaseException, phase: Phase, signature: Signature) -> None:
    found = classify(exc, phase)
    assert found.signature is signature
    assert found.error and "\n" not in found.error


def test_cause_beats_wrapper_and_describes_chain() -> None:
    exc = _wrapped(httpx.ConnectError, _ssl_error(ssl.SSLError, "WRONG_VERSION_NUMBER"))
    found = classify(exc, Phase.TLS)
    assert found.error_class == "httpx.ConnectError <- ssl.SSLError"
    assert found.openssl_reason == "WRONG_VERSION_NUMBER"
    assert rule_for(exc) is not None


def test_verify_message_is_reported() -> None:
    found = classify(_wrapped(httpx.ConnectError, _verify_error(62)), Phase.TLS)
    assert found.verify_error == "Hostname mismatch"
