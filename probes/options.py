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
        self.verify_context = self._ssl_context(verify=True, alpn=TLS_ALPN)
        self.noverify_context = self._ssl_context(verify=False, alpn=TLS_ALPN)
        self.http_ssl_context = self._ssl_context(verify=True, alpn=HTTP_ALPN)
        self.resolve_map = {k.lower(): v for k, v in options.resolve.items()}
        self._excluded = tuple(ipaddress.ip_network(c, strict=False) for c in options.capture_excluded_cidrs)
        self._resolver: dns.resolver.Resolver | None = None
        self._resolver_error: str | None = None
        self.http_client = httpx.Client(
            verify=self.http_ssl_context,
            trust_env=False,
            proxy=options.proxy,
            follow_redirects=False,
            timeout=httpx.Timeout(options.timeout),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
        )

    def close(self) -> None:
        self.http_client.close()

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
