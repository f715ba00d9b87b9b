"""Parse what the user wrote into a `TargetSpec` (docs/targets.md), or reject it with `TargetError`.

    HOST                  https://HOST:443/      DNS, TCP, TLS (SNI=HOST), HTTP GET /
    HOST:PORT             80 -> http, 443 -> https, a hinted port -> its protocol, else tcp (+ warning)
    http(s)://HOST[:P]/p  the path (and query) kept
    tls://HOST[:PORT]     TLS handshake only (443 when no port)
    tcp://HOST:PORT       connect, then read a server-first banner

IPv4/IPv6 literals are accepted (IPv6 bracketed inside URLs and with a port); an IP-literal
HTTPS/TLS target sends no SNI and says so in ``warnings``. Host letter case is lowered (Envoy
lower-cases Host and SNI); a trailing dot is kept in ``host`` and the Host header (it changes
what Envoy's virtual hosts match), while the SNI drops it like curl and browsers do (a
certificate never names the absolute form), with a warning.

Everything else (empty, whitespace, control characters, non-ASCII, credentials, bad port, bad
scheme, over-long names or labels, wildcards) raises `TargetError`, whose message names the target.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

from probes.model import Protocol, TargetSpec

MAX_TARGET_CHARS = 2048
MAX_NAME_CHARS = 253  # without the trailing dot (RFC 1035 §2.3.4)
MAX_LABEL_CHARS = 63
_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?$")
_PORT = re.compile(r"^[0-9]{1,5}$")
_DEFAULT_PORTS = {Protocol.HTTP: 80, Protocol.HTTPS: 443, Protocol.TLS: 443}
_WELL_KNOWN = {80: Protocol.HTTP, 443: Protocol.HTTPS}
# Istio port protocols (ServiceEntry ports[].protocol) -> what the probe speaks.
_ISTIO_PROTOCOLS = {
    "http": Protocol.HTTP,
    "http2": Protocol.HTTP,
    "grpc": Protocol.HTTP,
    "grpc-web": Protocol.HTTP,
    "https": Protocol.HTTPS,
    "tls": Protocol.TLS,
}

NO_SNI_WARNING = "IP-literal target: no SNI is sent, so only an address-bound or match-all chain can match it"
TRAILING_DOT_WARNING = (
    "trailing dot: SNI and the certificate check use {name!r} (as curl and browsers do); Host keeps the dot"
)
TCP_GUESS_WARNING = (
    "port {port} has no known protocol: probing as tcp (a server-first protocol sends a banner; "
    "a client-first one stays silent, which is not a failure)"
)


class TargetError(ValueError):
    """A target that cannot be probed; the message names it."""

    def __init__(self, raw: str, reason: str) -> None:
        super().__init__(f"invalid target {_printable(raw)}: {reason}")
        self.raw = raw
        self.reason = reason


def _printable(raw: str) -> str:
    shown = raw if len(raw) <= 80 else raw[:77] + "..."
    return repr(shown)


def protocol_hint(value: str | Protocol) -> Protocol:
    """Map an Istio port protocol (HTTP, HTTP2, GRPC, HTTPS, TLS, TCP, MONGO, ...) to a probe protocol."""
    if isinstance(value, Protocol):
        return value
    return _ISTIO_PROTOCOLS.get(value.strip().lower(), Protocol.TCP)


def parse_target(raw: str, port_protocols: Mapping[int, str | Protocol] | None = None) -> TargetSpec:
    """Parse one target. ``port_protocols`` maps ports a visible ServiceEntry declares to its protocol."""
    if not isinstance(raw, str):
        raise TargetError(str(raw), "not a string")
    _check_characters(raw)
    scheme, sep, rest = raw.partition("://")
    if sep:
        return _parse_url(raw, scheme.lower(), rest)
    if "/" in raw or "?" in raw or "#" in raw:
        raise TargetError(raw, "a path needs a scheme (write http://HOST/PATH or https://HOST/PATH)")
    host, port = _split_host_port(raw, raw, port_required=False)
    if port is None:
        return _spec(raw, Protocol.HTTPS, host, 443, "/")
    hints = {int(k): protocol_hint(v) for k, v in (port_protocols or {}).items()}
    protocol = hints.get(port) or _WELL_KNOWN.get(port)
    warnings: tuple[str, ...] = ()
    if protocol is None:
        protocol = Protocol.TCP
        warnings = (TCP_GUESS_WARNING.format(port=port),)
    return _spec(raw, protocol, host, port, "/", warnings)


def parse_targets(
    raws: list[str] | tuple[str, ...], port_protocols: Mapping[int, str | Protocol] | None = None
) -> list[TargetSpec]:
    """Parse all targets; the first bad one raises `TargetError`."""
    return [parse_target(r, port_protocols) for r in raws]


def _check_characters(raw: str) -> None:
    if raw == "":
        raise TargetError(raw, "empty")
    if len(raw) > MAX_TARGET_CHARS:
        raise TargetError(raw, f"longer than {MAX_TARGET_CHARS} characters")
    for ch in raw:
        if ch.isspace():
            raise TargetError(raw, "contains whitespace")
        if ord(ch) < 0x20 or ord(ch) == 0x7F:
            raise TargetError(raw, "contains a control character")
        if ord(ch) > 0x7E:
            raise TargetError(raw, "contains a non-ASCII character (write an IDN in its xn-- form)")


def _parse_url(raw: str, scheme: str, rest: str) -> TargetSpec:
    try:
        protocol = Protocol(scheme)
    except ValueError:
        raise TargetError(raw, f"unsupported scheme {scheme!r} (use http, https, tls or tcp)") from None
    rest = rest.split("#", 1)[0]
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    authority, path = rest[:cut], rest[cut:]
    if "@" in authority:
        raise TargetError(raw, "credentials in a target are not accepted")
    if protocol in (Protocol.TLS, Protocol.TCP) and path not in ("", "/"):
        raise TargetError(raw, f"a {scheme}:// target has no path")
    host, port = _split_host_port(raw, authority, port_required=protocol is Protocol.TCP)
    if port is None:
        port = _DEFAULT_PORTS[protocol]
    if protocol in (Protocol.HTTP, Protocol.HTTPS):
        path = path or "/"
        if path.startswith("?"):
            path = "/" + path
    else:
        path = "/"
    return _spec(raw, protocol, host, port, path)


def _split_host_port(raw: str, text: str, *, port_required: bool) -> tuple[str, int | None]:
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise TargetError(raw, "unclosed '[' in an IPv6 literal")
        host, after = text[1:end], text[end + 1 :]
        _ipv6(raw, host)
        if after and not after.startswith(":"):
            raise TargetError(raw, "unexpected text after ']'")
        port_text = after[1:] if after else None
    elif text.count(":") >= 2:
        host, port_text = text, None  # a bare IPv6 literal (no port possible without brackets)
        _ipv6(raw, host)
    else:
        host, sep, port_text_or_empty = text.partition(":")
        port_text = port_text_or_empty if sep else None
    port = _port(raw, port_text) if port_text is not None else None
    if port is None and port_required:
        raise TargetError(raw, "a port is required (tcp://HOST:PORT)")
    return host.lower(), port


def _port(raw: str, text: str) -> int:
    if not _PORT.match(text):
        raise TargetError(raw, f"bad port {text!r}")
    port = int(text)
    if not 1 <= port <= 65535:
        raise TargetError(raw, f"port {port} is out of range 1-65535")
    return port


def _ipv6(raw: str, host: str) -> ipaddress.IPv6Address:
    if "%" in host:
        raise TargetError(raw, "IPv6 zone identifiers are not supported")
    try:
        return ipaddress.IPv6Address(host)
    except ValueError:
        raise TargetError(raw, f"bad IPv6 address {host!r}") from None


def _check_name(raw: str, host: str) -> bool:
    """Validate ``host`` (already lower-cased); return True for an IP literal."""
    if host == "":
        raise TargetError(raw, "empty host")
    if ":" in host:
        return True  # validated as IPv6 by _split_host_port
    try:
        ipaddress.IPv4Address(host)
        return True
    except ValueError:
        pass
    name = host[:-1] if host.endswith(".") else host
    if name == "":
        raise TargetError(raw, "empty host name")
    if len(name) > MAX_NAME_CHARS:
        raise TargetError(raw, f"host name longer than {MAX_NAME_CHARS} characters")
    labels = name.split(".")
    for label in labels:
        if label == "":
            raise TargetError(raw, "empty label in host name")
        if len(label) > MAX_LABEL_CHARS:
            raise TargetError(raw, f"label longer than {MAX_LABEL_CHARS} characters")
        if label == "*" or "*" in label:
            raise TargetError(raw, "a wildcard is not a target (probe a concrete host)")
        if not _LABEL.match(label):
            raise TargetError(raw, f"bad host name label {label!r}")
    if labels[-1].isdigit():
        raise TargetError(raw, f"bad IPv4 address or host name {host!r}")
    return False


def _spec(
    raw: str,
    protocol: Protocol,
    host: str,
    port: int,
    path: str,
    warnings: tuple[str, ...] = (),
) -> TargetSpec:
    ip_literal = _check_name(raw, host)
    tls = protocol in (Protocol.HTTPS, Protocol.TLS)
    if tls and ip_literal:
        warnings = (*warnings, NO_SNI_WARNING)
    sni = None
    if tls and not ip_literal:
        sni = host.rstrip(".")
        if sni != host:
            warnings = (*warnings, TRAILING_DOT_WARNING.format(name=sni))
    hostport = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    url = f"{protocol.value}://{hostport}{path if protocol in (Protocol.HTTP, Protocol.HTTPS) else ''}"
    return TargetSpec(
        raw=raw,
        protocol=protocol,
        host=host,
        port=port,
        path=path,
        url=url,
        ip_literal=ip_literal,
        sni=sni,
        warnings=warnings,
    )
