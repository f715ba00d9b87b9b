"""Probe options (what a plan or the command line asks for) and the per-run context built from them.

`ProbeOptions` is plain data (it travels inside a plan, see `probes.plan`). `ProbeContext` holds
what is expensive and shared by every probe of a run: the SSL contexts, the DNS resolver built
from the pod's resolv.conf, and one httpx client without connection reuse. Build it once per run.

Capture: `ProbeContext.captured(ip, port)` says whether a connect to that destination goes to
the local sidecar. Istio's `istio-iptables` (tools/istio-iptables/pkg/capture/run.go) returns
every loopback-interface packet of the application's uid from ISTIO_OUTPUT, and excluded CIDRs /
ports (`traffic.sidecar.istio.io/excludeOutbound*`) are never redirected; everything else is.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import ssl
import threading
from collections.abc import Mapping

import dns.resolver
import httpx

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
HTTP_ALPN = ("http/1.1",)
TLS_ALPN = ("h2", "http/1.1")


@dataclasses.dataclass(frozen=True)
class ProbeOptions:
    """Everything a probe run can be told. Defaults suit a probe pod."""

    timeout: float = 5.0  # per phase (connect, TLS, read) and for DNS resolution
    read_window: float = 0.5  # TCP: how long to wait for a server-first banner
    ca_file: str | None = None  # PEM bundle; default: the system CAs
    resolver: str | None = None  # "IP[:PORT]": ask this DNS server instead of resolv.conf's
    resolve: Mapping[str, str] = dataclasses.field(default_factory=dict)  # host -> address, no DNS
    resolv_conf: str = "/etc/resolv.conf"
    port_protocols: Mapping[int, str] = dataclasses.field(default_factory=dict)  # port -> protocol hint
    max_redirects: int = 10
    proxy: str | None = None  # HTTP(S) proxy URL, only when asked (httpx trust_env is off)
    sidecar_present: bool | None = None  # None: unknown (not detected, or --sidecar off)
    capture_excluded_cidrs: tuple[str, ...] = ()
    capture_excluded_ports: tuple[int, ...] = ()
    concurrency: int = 32


def parse_host_port(text: str, default_port: int) -> tuple[str, int]:
    """``IP``, ``IP:PORT``, ``[V6]:PORT`` or a bare IPv6 -> (ip, port); raises ValueError."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else default_port
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = int(port_text)
    else:
        host, port = text, default_port
    ipaddress.ip_address(host)
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} out of range")
    return host, port


class ProbeContext:
    """Shared, expensive state of one run (SSL contexts, DNS resolver, HTTP client)."""

    def __init__(self, options: ProbeOptions) -> None:
        self.options = options
        self._lock = threading.Lock()
        self._contexts: dict[tuple[bool, tuple[str, ...]], ssl.SSLContext] = {}
        self.resolve_map = {k.lower(): v for k, v in options.resolve.items()}
        self._excluded = tuple(ipaddress.ip_network(c, strict=False) for c in options.capture_excluded_cidrs)
        self._resolver: dns.resolver.Resolver | None = None
        self._resolver_error: str | None = None
        self._http_transport: httpx.HTTPTransport | None = None
        self.http_timeouts = {k: options.timeout for k in ("connect", "read", "write", "pool")}

    @property
    def verify_context(self) -> ssl.SSLContext:
        """Verifying context for tls:// probes (ALPN h2, http/1.1)."""
        return self._context(True, TLS_ALPN)

    @property
    def noverify_context(self) -> ssl.SSLContext:
        """Non-verifying context: only to show the certificate that failed verification."""
        return self._context(False, TLS_ALPN)

    @property
    def http_context(self) -> ssl.SSLContext:
        """Verifying context for HTTPS probes (ALPN http/1.1 only: the probe speaks HTTP/1.1)."""
        return self._context(True, HTTP_ALPN)

    @property
    def http_transport(self) -> httpx.HTTPTransport:
        """One httpx transport (no client: no cookies, auth or redirects) that never reuses connections."""
        with self._lock:
            if self._http_transport is None:
                self._http_transport = httpx.HTTPTransport(
                    verify=self._ssl_context(verify=True, alpn=HTTP_ALPN),  # its own: httpcore resets ALPN
                    trust_env=False,
                    proxy=self.options.proxy,
                    limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
                )
            return self._http_transport

    def _context(self, verify: bool, alpn: tuple[str, ...]) -> ssl.SSLContext:
        """SSL contexts are built on first use (loading the system CAs costs tens of ms) and shared."""
        with self._lock:
            key = (verify, alpn)
            if key not in self._contexts:
                self._contexts[key] = self._ssl_context(verify=verify, alpn=alpn)
            return self._contexts[key]

    def close(self) -> None:
        if self._http_transport is not None:
            self._http_transport.close()

    def __enter__(self) -> ProbeContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ssl_context(self, *, verify: bool, alpn: tuple[str, ...]) -> ssl.SSLContext:
        if not verify:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif self.options.ca_file:
            ctx = ssl.create_default_context(cafile=self.options.ca_file)
        else:
            ctx = ssl.create_default_context()
        ctx.set_alpn_protocols(list(alpn))
        return ctx

    def resolver(self) -> dns.resolver.Resolver:
        """The pod's resolver (resolv.conf: nameservers, search, ndots), built once; may raise."""
        if self._resolver is None:
            self._resolver = self._build_resolver()
        return self._resolver

    def _build_resolver(self) -> dns.resolver.Resolver:
        try:
            resolver = dns.resolver.Resolver(filename=self.options.resolv_conf, configure=True)
        except dns.resolver.NoResolverConfiguration:
            if self.options.resolver is None:
                raise
            resolver = dns.resolver.Resolver(configure=False)
        if self.options.resolver is not None:
            ip, port = parse_host_port(self.options.resolver, 53)
            resolver.nameservers = [ip]
            resolver.port = port
        resolver.cache = None
        return resolver

    def captured(self, ip: str, port: int) -> bool | None:
        """Does a connect to ip:port go to the local sidecar? None when sidecar presence is unknown."""
        if self.options.sidecar_present is None:
            return None
        if not self.options.sidecar_present:
            return False
        address = ipaddress.ip_address(ip)
        if any(address in net for net in LOOPBACK + self._excluded):
            return False
        return port not in self.options.capture_excluded_ports
