"""A small DER reader for the parts of an X.509 certificate a probe reports.

The stdlib's ``SSLSocket.getpeercert()`` returns the decoded certificate only after a verified
handshake; when verification fails the probe still wants to show *whose* certificate arrived
(subject, SANs, issuer, notAfter), from ``getpeercert(binary_form=True)``. This module reads
just those fields (RFC 5280 §4.1: TBSCertificate, Name, Validity, the subjectAltName extension)
and never raises: a certificate it cannot read gives an empty `CertSummary`.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress

_NAMES = {"2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O", "2.5.4.11": "OU"}
_SAN_OID = "2.5.29.17"


@dataclasses.dataclass(frozen=True)
class CertSummary:
    subject: str | None = None  # "CN=a.lab.example,O=..." in certificate order
    issuer: str | None = None
    sans: tuple[str, ...] = ()  # "DNS:a.lab.example", "IP:127.0.0.1"
    not_after: str | None = None  # ISO 8601 UTC


def _tlv(data: bytes, pos: int) -> tuple[int, bytes, int]:
    """Read one DER element at ``pos``: (tag, contents, position after it)."""
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    end = pos + length
    if end > len(data):
        raise ValueError("truncated DER")
    return tag, data[pos:end], end


def _children(data: bytes) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data):
        tag, value, pos = _tlv(data, pos)
        out.append((tag, value))
    return out


def _oid(value: bytes) -> str:
    parts = [value[0] // 40, value[0] % 40]
    current = 0
    for byte in value[1:]:
        current = (current << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(current)
            current = 0
    return ".".join(str(p) for p in parts)


def _name(value: bytes) -> str:
    parts: list[str] = []
    for _, rdn in _children(value):
        for _, attribute in _children(rdn):
            (_, oid), (_, text) = _children(attribute)[:2]
            key = _NAMES.get(_oid(oid), _oid(oid))
            parts.append(f"{key}={text.decode('utf-8', 'replace')}")
    return ",".join(parts)


def _time(tag: int, value: bytes) -> str:
    text = value.decode("ascii")
    fmt = "%y%m%d%H%M%SZ" if tag == 0x17 else "%Y%m%d%H%M%SZ"
    moment = datetime.datetime.strptime(text, fmt).replace(tzinfo=datetime.UTC)
    return moment.isoformat().replace("+00:00", "Z")


def _sans(extensions: bytes) -> tuple[str, ...]:
    (_, sequence), *_ = _children(extensions)
    for _, extension in _children(sequence):
        fields = _children(extension)
        if _oid(fields[0][1]) != _SAN_OID:
            continue
        (_, names), *_ = _children(fields[-1][1])
        out: list[str] = []
        for tag, value in _children(names):
            if tag == 0x82:
                out.append("DNS:" + value.decode("ascii", "replace"))
            elif tag == 0x87:
                out.append("IP:" + str(ipaddress.ip_address(value)))
            elif tag == 0x86:
                out.append("URI:" + value.decode("ascii", "replace"))
        return tuple(out)
    return ()


def summarize(der: bytes | None) -> CertSummary:
    """Subject, issuer, SANs and notAfter of a DER certificate; empty when unreadable."""
    if not der:
        return CertSummary()
    try:
        (_, certificate), *_ = _children(der)
        (_, tbs), *_ = _children(certificate)
        fields = _children(tbs)
        if fields[0][0] == 0xA0:  # [0] EXPLICIT version
            fields = fields[1:]
        issuer, validity, subject = fields[2][1], fields[3][1], fields[4][1]
        not_after_tag, not_after = _children(validity)[1]
        extensions = next((v for t, v in fields[6:] if t == 0xA3), b"")
        return CertSummary(
            subject=_name(subject),
            issuer=_name(issuer),
            sans=_sans(extensions) if extensions else (),
            not_after=_time(not_after_tag, not_after),
        )
    except (ValueError, IndexError, UnicodeDecodeError):
        return CertSummary()
