"""Istio port protocols and how pilot classifies them.

Pilot sources: ``pkg/config/protocol/instance.go`` (``Parse``, ``IsHTTP``, ``IsTCP``, ``IsTLS``,
``IsHTTP2``), ``pilot/pkg/networking/networking.go`` ``ModelProtocolToListenerProtocol`` (HTTP family →
HTTP listener, TCP family → TCP listener, unset/unknown → auto-detected, UDP → none) and
``pkg/config/kube/conversion.go`` ``ConvertProtocol`` (a Kubernetes port's protocol comes from
``appProtocol``, else the port-name prefix before ``-``; unknown names are auto-detected except on the
well-known ports 25, 53, 3306, 27017, which default to TCP).
"""

from __future__ import annotations

from typing import Literal

HTTP = "HTTP"
HTTP2 = "HTTP2"
HTTP_PROXY = "HTTP_PROXY"
GRPC = "GRPC"
GRPC_WEB = "GRPC-Web"
HTTPS = "HTTPS"
TLS = "TLS"
TCP = "TCP"
UDP = "UDP"
MONGO = "Mongo"
REDIS = "Redis"
MYSQL = "MySQL"
UNSUPPORTED = "UnsupportedProtocol"

_BY_LOWER = {
    p.lower(): p for p in (HTTP, HTTP2, HTTP_PROXY, GRPC, GRPC_WEB, HTTPS, TLS, TCP, UDP, MONGO, REDIS, MYSQL)
}
_WELL_KNOWN_TCP_PORTS = frozenset({25, 53, 3306, 27017})

ListenerProtocol = Literal["http", "tcp", "auto", "none"]


def parse(name: str) -> str:
    """Istio ``protocol.Parse``: case-insensitive; anything unknown (including "") is unsupported."""
    return _BY_LOWER.get(name.lower(), UNSUPPORTED)


def is_http(p: str) -> bool:
    return p in (HTTP, HTTP2, HTTP_PROXY, GRPC, GRPC_WEB)


def is_http2(p: str) -> bool:
    return p in (HTTP2, GRPC, GRPC_WEB)


def is_tcp(p: str) -> bool:
    return p in (TCP, HTTPS, TLS, MONGO, REDIS, MYSQL)


def is_tls(p: str) -> bool:
    return p in (HTTPS, TLS)


def is_unsupported(p: str) -> bool:
    return p == UNSUPPORTED


def is_http_or_sniffed(p: str) -> bool:
    return is_http(p) or is_unsupported(p)


def listener_protocol(p: str) -> ListenerProtocol:
    """``ModelProtocolToListenerProtocol``."""
    if is_http(p):
        return "http"
    if is_tcp(p):
        return "tcp"
    if is_unsupported(p):
        return "auto"
    return "none"


def kube_port_protocol(port: int, name: str, kube_protocol: str, app_protocol: str) -> str:
    """``ConvertProtocol`` for a Kubernetes Service port."""
    if kube_protocol.upper() == "UDP":
        return UDP
    label = name
    if app_protocol:
        label = app_protocol
        special = {"kubernetes.io/h2c": HTTP2, "kubernetes.io/ws": HTTP, "kubernetes.io/wss": HTTPS}
        if label in special:
            return special[label]
    if label[: len(GRPC_WEB)].lower() == GRPC_WEB.lower():
        return GRPC_WEB
    prefix = label.split("-", 1)[0]
    parsed = parse(prefix)
    if parsed == UNSUPPORTED and port in _WELL_KNOWN_TCP_PORTS:
        return TCP
    return parsed
