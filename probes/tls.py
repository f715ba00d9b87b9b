"""The TLS prober: resolve, connect, handshake with SNI and ALPN, report the peer certificate.

Verification uses the system CAs or ``--ca-file``. A failed verification is classified from the
X.509 verify code (hostname mismatch vs untrusted/expired, see `probes.classify`); the peer's
certificate is then fetched with one more, non-verifying handshake so the report still shows
*whose* certificate arrived (cheap: only on failure).

Over TLS a sidecar is invisible on success, and every blocked case looks the same: a reset (or
EOF) during the handshake, `RESET_BEFORE_RESPONSE` (docs/signatures.md).
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import ssl
import time
from collections.abc import Mapping
from typing import Any

from probes.classify import Classified, classify
from probes.dns import resolve
from probes.model import Origin, Phase, Phases, ProbeResult, Signature, TargetSpec, TlsEvidence
from probes.options import TLS_ALPN, ProbeContext
from probes.tcp import open_connection, tcp_evidence
from probes.x509 import CertSummary, summarize


def _name(rdns: object) -> str | None:
    if not isinstance(rdns, tuple):
        return None
    names = {
        "commonName": "CN",
        "countryName": "C",
        "localityName": "L",
        "stateOrProvinceName": "ST",
        "organizationName": "O",
        "organizationalUnitName": "OU",
    }
    return ",".join(f"{names.get(k, k)}={v}" for rdn in rdns for k, v in rdn)


def _from_decoded(cert: Mapping[str, Any] | None) -> CertSummary:
    """The stdlib's decoded form (only after a verified handshake) in the shape `summarize` gives."""
    if not cert:
        return CertSummary()
    sans = tuple(
        f"{kind}:{value}" for kind, value in cert.get("subjectAltName", ()) if kind in ("DNS", "IP", "URI")
    )
    not_after = cert.get("notAfter")
    when = None
    if isinstance(not_after, str):
        moment = datetime.datetime.fromtimestamp(ssl.cert_time_to_seconds(not_after), datetime.UTC)
        when = moment.isoformat().replace("+00:00", "Z")
    return CertSummary(
        subject=_name(cert.get("subject")), issuer=_name(cert.get("issuer")), sans=sans, not_after=when
    )


def server_hostname(spec: TargetSpec) -> str:
    """What goes into ``server_hostname``: the SNI, or the IP literal (Python sends no SNI for IPs)."""
    return spec.sni or spec.host


def evidence_from_socket(
    tls: ssl.SSLSocket | ssl.SSLObject,
    sni: str | None,
    verified: bool,
    alpn_offered: tuple[str, ...] = TLS_ALPN,
) -> TlsEvidence:
    """Version, cipher, ALPN and the peer certificate of an established TLS session."""
    cipher = tls.cipher()
    cert = _from_decoded(tls.getpeercert()) if verified else summarize(tls.getpeercert(True))
    return TlsEvidence(
        sni=sni,
        alpn_offered=alpn_offered,
        alpn=tls.selected_alpn_protocol(),
        version=tls.version(),
        cipher=cipher[0] if cipher else None,
        peer_subject=cert.subject,
        peer_sans=cert.sans,
        peer_issuer=cert.issuer,
        peer_not_after=cert.not_after,
        verified=verified,
    )


def unverified_evidence(
    address: str, spec: TargetSpec, ctx: ProbeContext, failure: Classified
) -> TlsEvidence:
    """Handshake again without verification to show the certificate that failed; never raises."""
    base = TlsEvidence(
        sni=spec.sni,
        alpn_offered=TLS_ALPN,
        verified=False,
        verify_error=failure.verify_error,
        openssl_reason=failure.openssl_reason,
    )
    conn = open_connection(address, spec.port, ctx.options.timeout)
    if conn.sock is None:
        return base
    try:
        with ctx.noverify_context.wrap_socket(conn.sock, server_hostname=server_hostname(spec)) as tls:
            seen = evidence_from_socket(tls, spec.sni, verified=False)
    except (OSError, ValueError):
        conn.sock.close()
        return base
    return dataclasses.replace(seen, verify_error=failure.verify_error, openssl_reason=failure.openssl_reason)


def failure_evidence(address: str, spec: TargetSpec, ctx: ProbeContext, failure: Classified) -> TlsEvidence:
    """TLS evidence for a failed handshake (the peer certificate only for verification failures)."""
    if failure.signature in (Signature.TLS_CERT_UNTRUSTED, Signature.TLS_HOSTNAME_MISMATCH):
        return unverified_evidence(address, spec, ctx, failure)
    return TlsEvidence(sni=spec.sni, alpn_offered=TLS_ALPN, openssl_reason=failure.openssl_reason)


def probe(spec: TargetSpec, ctx: ProbeContext) -> ProbeResult:
    """TLS handshake only (``tls://``); never raises for network outcomes."""
    started = time.perf_counter()
    res = resolve(spec.host, spec.ip_literal, ctx)
    if res.address is None:
        return res.failed_result(spec, started)
    conn = open_connection(res.address, spec.port, ctx.options.timeout)
    tcp = tcp_evidence(res.address, spec.port, ctx, spec.host)
    phases = Phases(resolve=res.elapsed, connect=conn.seconds)
    result = functools.partial(ProbeResult, target=spec, dns=res.evidence, tcp=tcp, notes=spec.warnings)
    if conn.sock is None:
        assert conn.failure is not None
        return result(
            signature=conn.failure.signature,
            phases=phases,
            error=conn.failure.error,
            error_class=conn.failure.error_class,
            elapsed=time.perf_counter() - started,
        )
    handshake_started = time.perf_counter()
    try:
        with ctx.verify_context.wrap_socket(conn.sock, server_hostname=server_hostname(spec)) as tls:
            evidence = evidence_from_socket(tls, spec.sni, verified=True)
    except Exception as exc:
        conn.sock.close()
        failure = classify(exc, Phase.TLS)
        return result(
            signature=failure.signature,
            error=failure.error,
            error_class=failure.error_class,
            phases=dataclasses.replace(phases, tls=time.perf_counter() - handshake_started),
            tls=failure_evidence(res.address, spec, ctx, failure),
            elapsed=time.perf_counter() - started,
        )
    return result(
        signature=Signature.OK,
        tls=evidence,
        origin=Origin.END_TO_END_TLS,
        phases=dataclasses.replace(phases, tls=time.perf_counter() - handshake_started),
        elapsed=time.perf_counter() - started,
    )
