"""The call as the sidecar sees it (:class:`LiveCall`) and what Envoy chose for it
(:class:`LivePath`, the report's ``actual``, docs/schema.md).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LiveCall:
    """One connection as the sidecar sees it after iptables redirected it.

    ``address`` is the destination IP the client dialled (None: unknown, only wildcard listeners
    can match); ``transport`` is ``raw_buffer`` or ``tls``; ``http_version`` is ``1.0``/``1.1``/
    ``2`` for plaintext HTTP and None for opaque bytes (TLS, TCP); ``path`` (with its query),
    ``method`` and ``headers`` (lower-case names, besides Host) are what route matches read.
    """

    port: int
    address: str | None = None
    transport: str = "raw_buffer"
    sni: str | None = None
    alpn: tuple[str, ...] = ()
    host: str | None = None
    http_version: str | None = None
    path: str = "/"
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_call(cls, call: Any) -> LiveCall:
        """Build from ``diag.predict.sidecar.Call`` (duck-typed: host, port, protocol, sni, address,
        http_version). ``https`` is TLS from the sidecar's point of view (passthrough)."""
        if isinstance(call, LiveCall):
            return call
        protocol = str(getattr(call, "protocol", "tcp")).lower()
        host = str(getattr(call, "host", "") or "").lower()
        port = int(call.port)
        address = getattr(call, "address", None) or None
        version = getattr(call, "http_version", None)
        sni = getattr(call, "sni", None)
        if protocol in ("https", "tls"):
            if sni is None and host and not is_ip(host):
                sni = host
            alpn: tuple[str, ...] = ()
            if protocol == "https":
                alpn = ("h2", "http/1.1") if str(version or "") == "2" else ("http/1.1",)
            return cls(port, address, "tls", sni.lower() if sni else None, alpn, None, None)
        if protocol == "http":
            extra = tuple((str(k).lower(), str(v)) for k, v in getattr(call, "headers", ()) or ())
            header = next((v for k, v in extra if k == "host"), host if port == 80 else f"{host}:{port}")
            return cls(
                port,
                address,
                "raw_buffer",
                None,
                (),
                header,
                str(version or "1.1"),
                str(getattr(call, "path", "/") or "/"),
                str(getattr(call, "method", "GET") or "GET").upper(),
                tuple((k, v) for k, v in extra if k != "host"),
            )
        return cls(port, address, "raw_buffer")


@dataclass(frozen=True)
class LivePath:
    """What Envoy chose. ``outcome`` is one of: ``cluster``, ``direct_response``, ``redirect``,
    ``no_listener``, ``no_filter_chain``, ``no_route_config``, ``no_vhost``, ``no_route``,
    ``tls_redirect`` (301: a plaintext request to a virtual host with ``require_tls: ALL``),
    ``protocol_error`` (non-HTTP bytes into an HTTP connection manager), ``http10_rejected``
    (426), ``unknown_filter``, ``invalid_config`` (the config is not shaped like Envoy's).
    ``route`` is the route configuration's name (pilot's ``"80"``), ``route_entry`` the route's
    own name inside the virtual host."""

    outcome: str
    listener: str | None = None
    filter_chain: str | None = None
    route: str | None = None
    vhost: str | None = None
    cluster: str | None = None
    route_entry: str | None = None
    direct_status: int | None = None  # a direct response's status, or a redirect's code
    via_original_dst: bool = False
    cluster_known: bool | None = None
    notes: tuple[str, ...] = ()
    weighted: tuple[tuple[str, int], ...] = ()  # (cluster, weight) of a weighted route

    @property
    def local_status(self) -> int | None:
        """The status the sidecar answers with itself: 404 (no route or virtual host), a direct
        response's, a redirect's; None when the request is routed (or not HTTP)."""
        if self.outcome in ("no_route", "no_vhost"):
            return 404
        if self.outcome in ("direct_response", "redirect", "tls_redirect"):
            return self.direct_status
        return None

    @property
    def envoy(self) -> str:
        """The one-word decision (docs/schema.md): the vhost for a direct response, else the cluster."""
        if self.outcome == "direct_response" and self.vhost:
            return self.vhost
        return self.cluster or self.outcome

    def as_dict(self) -> dict[str, str | None]:
        """The report's ``actual`` object (docs/schema.md)."""
        return {
            "listener": self.listener,
            "filter_chain": self.filter_chain,
            "route": self.route,
            "vhost": self.vhost,
            "cluster": self.cluster,
        }


def with_changes(path: LivePath, **changes: Any) -> LivePath:
    values = {f: getattr(path, f) for f in path.__dataclass_fields__}
    values.update(changes)
    return LivePath(**values)


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True
