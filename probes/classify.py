"""The one ordered table from exceptions to signatures (`docs/signatures.md` lists them).

The exceptions a probe can meet, drawn as the trees the table walks::

    httpx.HTTPError / httpcore exceptions      (wrappers: the cause decides first)
    ├── TimeoutException (Connect/Read/Write/Pool)   -> TCP_TIMEOUT in connect, else READ_TIMEOUT
    ├── ConnectError / ReadError / WriteError        -> the chained OSError / ssl error decides
    └── RemoteProtocolError                          -> RESET_BEFORE_RESPONSE (EOF) | PROTOCOL_ERROR
    ssl.SSLError (decided by OpenSSL's reason code, never by message text)
    ├── SSLCertVerificationError  verify_code 62/64  -> TLS_HOSTNAME_MISMATCH, else TLS_CERT_UNTRUSTED
    ├── SSLEOFError, SSLZeroReturnError, SSLSyscallError -> RESET_BEFORE_RESPONSE
    └── reason WRONG_VERSION_NUMBER, ... -> TLS_WRONG_VERSION;  *_ALERT_* -> TLS_ALERT
    OSError: ECONNREFUSED -> TCP_REFUSED; ECONNRESET/EPIPE/ECONNABORTED -> RESET_BEFORE_RESPONSE
    dns.exception.DNSException: NXDOMAIN, NoAnswer, NoNameservers (SERVFAIL), Timeout, ...

A reset, a TLS unexpected EOF and an empty reply before the first byte are one signature
(`RESET_BEFORE_RESPONSE`): which one a client sees behind a sidecar blackhole is a race
(`docs/signatures.md`).

`classify(exc, phase)` walks the exception chain (``__cause__``/``__context__``); rules are tried
in table order, each against every exception in the chain from the innermost cause outwards, so
a specific cause (an ssl reason) beats the wrapper (``httpx.ConnectError``). Anything no rule
matches is `PROBE_ERROR`. ``tests/probes/test_classify.py`` fails when an httpx, httpcore, ssl or
dnspython exception class is covered by no explicit rule.
"""

from __future__ import annotations

import dataclasses
import errno
import ssl
from collections.abc import Callable

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.resolver
import httpcore
import httpx

from probes.model import Phase, Signature

TIMEOUT = "timeout"  # placeholder: TCP_TIMEOUT while connecting, READ_TIMEOUT afterwards

# OpenSSL reason codes (ssl.SSLError.reason): the peer does not speak TLS, or not a version we do.
WRONG_VERSION_REASONS = frozenset(
    {
        "WRONG_VERSION_NUMBER",
        "PACKET_LENGTH_TOO_LONG",
        "HTTP_REQUEST",
        "HTTPS_PROXY_REQUEST",
        "UNKNOWN_PROTOCOL",
        "UNSUPPORTED_PROTOCOL",
        "RECORD_LENGTH_MISMATCH",
        "WRONG_SSL_VERSION",
    }
)
EOF_REASONS = frozenset({"UNEXPECTED_EOF_WHILE_READING", "UNEXPECTED_RECORD", "EOF"})
HOSTNAME_VERIFY_CODES = frozenset({62, 64})  # X509_V_ERR_HOSTNAME_MISMATCH, _IP_ADDRESS_MISMATCH
UNREACHABLE_ERRNOS = frozenset({errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN})

Match = type[BaseException] | tuple[type[BaseException], ...] | str  # str: a module of dnspython


@dataclasses.dataclass(frozen=True)
class Rule:
    """One row: exceptions of ``match`` (classes, or every DNSException defined in a module)."""

    match: Match
    signature: Signature | str
    note: str
    when: Callable[[BaseException], bool] | None = None

    def matches(self, exc: BaseException) -> bool:
        if isinstance(self.match, str):
            found = isinstance(exc, dns.exception.DNSException) and type(exc).__module__ == self.match
        else:
            found = isinstance(exc, self.match)
        return found and (self.when is None or self.when(exc))


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "reason", None) or "")


def _errno_in(codes: frozenset[int]) -> Callable[[BaseException], bool]:
    return lambda e: isinstance(e, OSError) and e.errno in codes


def _from_h11(exc: BaseException) -> bool:
    chained = exc.__cause__ or exc.__context__
    return chained is not None and type(chained).__module__.startswith("h11")


_NEVER_WHILE_RESOLVING = "not raised while resolving a name: a probe bug"

EXCEPTION_TABLE: tuple[Rule, ...] = (
    # --- TLS, by OpenSSL reason code -----------------------------------------------------------
    Rule(
        ssl.SSLCertVerificationError,
        Signature.TLS_HOSTNAME_MISMATCH,
        "certificate does not name the host",
        when=lambda e: getattr(e, "verify_code", None) in HOSTNAME_VERIFY_CODES,
    ),
    Rule(ssl.SSLCertVerificationError, Signature.TLS_CERT_UNTRUSTED, "untrusted, expired or invalid chain"),
    Rule(
        (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError),
        Signature.RESET_BEFORE_RESPONSE,
        "TLS EOF before the handshake finished (a reset race)",
    ),
    Rule(
        ssl.SSLError,
        Signature.RESET_BEFORE_RESPONSE,
        "unexpected EOF",
        when=lambda e: _reason(e) in EOF_REASONS,
    ),
    Rule(
        ssl.SSLError,
        Signature.TLS_WRONG_VERSION,
        "the peer does not speak TLS (or no common version)",
        when=lambda e: _reason(e) in WRONG_VERSION_REASONS,
    ),
    Rule(
        ssl.SSLError, Signature.TLS_ALERT, "the peer sent a TLS alert", when=lambda e: "ALERT" in _reason(e)
    ),
    Rule((ssl.SSLWantReadError, ssl.SSLWantWriteError), Signature.PROBE_ERROR, "non-blocking I/O misuse"),
    Rule(ssl.SSLError, Signature.TLS_ALERT, "another TLS handshake failure"),
    # --- sockets -------------------------------------------------------------------------------
    Rule(ConnectionRefusedError, Signature.TCP_REFUSED, "connection refused"),
    Rule(OSError, Signature.TCP_REFUSED, "host or network unreachable", when=_errno_in(UNREACHABLE_ERRNOS)),
    Rule(
        (ConnectionResetError, ConnectionAbortedError, BrokenPipeError),
        Signature.RESET_BEFORE_RESPONSE,
        "reset by the peer",
    ),
    Rule(TimeoutError, TIMEOUT, "timed out"),
    # --- httpcore / httpx wrappers (their causes above decide first) ---------------------------
    Rule((httpx.TimeoutException, httpcore.TimeoutException), TIMEOUT, "timed out"),
    Rule(
        (httpx.RemoteProtocolError, httpcore.RemoteProtocolError),
        Signature.PROTOCOL_ERROR,
        "the answer is not HTTP",
        when=_from_h11,
    ),
    Rule(
        (httpx.RemoteProtocolError, httpcore.RemoteProtocolError),
        Signature.RESET_BEFORE_RESPONSE,
        "server disconnected without sending a response",
    ),
    Rule((httpx.ConnectError, httpcore.ConnectError), Signature.TCP_REFUSED, "connect failed"),
    Rule(
        (httpx.ReadError, httpx.WriteError, httpx.CloseError, httpcore.ReadError, httpcore.WriteError),
        Signature.RESET_BEFORE_RESPONSE,
        "connection lost before the response",
    ),
    Rule((httpx.DecodingError,), Signature.PROTOCOL_ERROR, "undecodable response body"),
    Rule((httpx.LocalProtocolError, httpcore.LocalProtocolError), Signature.PROBE_ERROR, "bad request built"),
    Rule((httpx.ProxyError, httpcore.ProxyError), Signature.PROBE_ERROR, "the configured proxy failed"),
    Rule(
        (httpx.UnsupportedProtocol, httpcore.UnsupportedProtocol, httpx.InvalidURL),
        Signature.PROBE_ERROR,
        "bad URL built",
    ),
    Rule(
        (httpx.TooManyRedirects, httpx.HTTPStatusError, httpx.CookieConflict, httpx.StreamError),
        Signature.PROBE_ERROR,
        "client API misuse (redirects are followed by the probe itself)",
    ),
    Rule(httpcore.ConnectionNotAvailable, Signature.PROBE_ERROR, "connection pool misuse"),
    # --- DNS (dnspython) -----------------------------------------------------------------------
    Rule((dns.resolver.NXDOMAIN, dns.resolver.YXDOMAIN), Signature.DNS_NXDOMAIN, "the name does not exist"),
    Rule(
        (dns.resolver.NoAnswer, dns.resolver.EmptyHostAnswers), Signature.DNS_NO_ANSWER, "NOERROR, no records"
    ),
    Rule(dns.resolver.NoNameservers, Signature.DNS_SERVFAIL, "every nameserver failed (SERVFAIL/REFUSED)"),
    Rule(dns.exception.Timeout, Signature.DNS_TIMEOUT, "no nameserver answered in time"),
    Rule(
        (
            dns.exception.FormError,
            dns.message.Truncated,
            dns.message.AnswerForNXDOMAIN,
            dns.message.ChainTooLong,
            dns.message.NotQueryResponse,
            dns.message.UnknownHeaderField,
            dns.query.UnexpectedSource,
            dns.message.UnknownTSIGKey,
            dns.exception.TooBig,
        ),
        Signature.PROTOCOL_ERROR,
        "a malformed or unusable DNS reply",
    ),
    Rule(
        (
            dns.resolver.NoResolverConfiguration,
            dns.resolver.NoMetaqueries,
            dns.resolver.NoRootSOA,
            dns.resolver.NotAbsolute,
            dns.query.NoDOH,
            dns.query.NoDOQ,
            dns.exception.SyntaxError,
            dns.exception.DeniedByPolicy,
            dns.exception.UnsupportedAlgorithm,
            dns.exception.ValidationFailure,
            dns.name.AbsoluteConcatenation,
            dns.name.IDNAException,
            dns.name.NeedAbsoluteNameOrOrigin,
            dns.name.NeedSubdomainOfOrigin,
            dns.name.NoIDNA2008,
            dns.name.NoParent,
        ),
        Signature.PROBE_ERROR,
        "resolver configuration or query construction failed",
    ),
    *(
        Rule(module, Signature.PROBE_ERROR, _NEVER_WHILE_RESOLVING)
        for module in (
            "dns.asyncbackend",
            "dns.opcode",
            "dns.rcode",
            "dns.rdata",
            "dns.rdataclass",
            "dns.rdataset",
            "dns.rdatatype",
            "dns.rdtypes.ANY.DSYNC",
            "dns.rdtypes.rrsigbase",
            "dns.rdtypes.svcbbase",
            "dns.tokenizer",
            "dns.transaction",
            "dns.tsig",
            "dns.versioned",
            "dns.xfr",
            "dns.zone",
            "dns.zonefile",
        )
    ),
    # --- local resource errors (EMFILE, EADDRNOTAVAIL, ...) ------------------------------------
    Rule(OSError, Signature.PROBE_ERROR, "a local socket error"),
)


@dataclasses.dataclass(frozen=True)
class Classified:
    signature: Signature
    note: str
    error: str  # one line: the innermost message
    error_class: str  # "httpx.ConnectError <- ssl.SSLCertVerificationError"
    openssl_reason: str | None = None
    verify_error: str | None = None


def exception_chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and its causes, outermost first (cycles cut)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 16:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def rule_for(exc: BaseException) -> Rule | None:
    """The first table rule matching any exception of the chain (innermost first per rule)."""
    inner_first = list(reversed(exception_chain(exc)))
    for rule in EXCEPTION_TABLE:
        if any(rule.matches(e) for e in inner_first):
            return rule
    return None


def timeout_signature(phase: Phase | None) -> Signature:
    """A timeout while connecting is TCP_TIMEOUT; in any later phase it is READ_TIMEOUT."""
    return Signature.TCP_TIMEOUT if phase in (None, Phase.RESOLVE, Phase.CONNECT) else Signature.READ_TIMEOUT


def classify(exc: BaseException, phase: Phase | None = None) -> Classified:
    """Map an exception met during ``phase`` to its signature and a one-line description."""
    rule = rule_for(exc)
    chain = exception_chain(exc)
    if rule is None:
        signature, note = Signature.PROBE_ERROR, "unexpected exception"
    elif rule.signature == TIMEOUT:
        signature, note = timeout_signature(phase), rule.note
    else:
        signature, note = Signature(rule.signature), rule.note
    ssl_errors = [e for e in chain if isinstance(e, ssl.SSLError)]
    reason = _reason(ssl_errors[-1]) if ssl_errors else ""
    verify = next((getattr(e, "verify_message", None) for e in chain if hasattr(e, "verify_message")), None)
    innermost = chain[-1]
    message = " ".join(str(innermost).split()) or type(innermost).__name__
    return Classified(
        signature=signature,
        note=note,
        error=message[:300],
        error_class=" <- ".join(_qualified(e) for e in chain),
        openssl_reason=reason or None,
        verify_error=str(verify) if verify else None,
    )


def _qualified(exc: BaseException) -> str:
    module = type(exc).__module__
    name = type(exc).__qualname__
    if module in ("builtins", "") or module.startswith("_"):
        return name if module == "builtins" else f"{module.lstrip('_')}.{name}"
    return f"{module.split('.')[0] if module.startswith(('httpx', 'httpcore')) else module}.{name}"
