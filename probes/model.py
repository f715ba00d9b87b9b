"""The wire format between the data plane (probes/) and the control plane (diag/).

Everything the probe observes is described here as frozen dataclasses: what a target is
(`TargetSpec`), the closed set of observed signatures (`Signature`, docs/signatures.md), per-phase timings,
the per-protocol evidence, the sidecar's own evidence, and the JSON document `python -m probes`
prints (`ProbeReport`, schema ``meshprobe.probe/v1``).

Only the standard library is imported here: this module runs inside the probe image.

JSON conventions: ``to_json()`` gives plain dicts/lists (enum values as strings, tuples as
lists, ``None`` kept so the shape is stable); ``from_json()`` reads the same shape back and
ignores unknown keys (a newer probe may add fields).
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

PROBE_SCHEMA = "meshprobe.probe/v1"

# Istio's auto-allocated service VIPs (pilot/pkg/serviceregistry/serviceentry, "240.240.0.0/16",
# and the IPv6 class E equivalent "2001:2::/48"): an answer here came from the agent's DNS proxy.
MESH_VIP_V4 = "240.240.0.0/16"
MESH_VIP_V6 = "2001:2::/48"


class Signature(enum.StrEnum):
    """The closed set of what a client can observe (docs/signatures.md). Extend, never rename."""

    OK = "OK"
    HTTP_STATUS = "HTTP_STATUS"
    ENVOY_BLACKHOLE_502 = "ENVOY_BLACKHOLE_502"
    ENVOY_404_NR = "ENVOY_404_NR"
    ENVOY_403_RBAC = "ENVOY_403_RBAC"
    ENVOY_503_UPSTREAM = "ENVOY_503_UPSTREAM"
    ENVOY_503_NO_CLUSTER = "ENVOY_503_NO_CLUSTER"
    ENVOY_504_TIMEOUT = "ENVOY_504_TIMEOUT"
    ENVOY_426_HTTP10 = "ENVOY_426_HTTP10"
    ENVOY_LOCAL_OTHER = "ENVOY_LOCAL_OTHER"
    RESET_BEFORE_RESPONSE = "RESET_BEFORE_RESPONSE"
    TCP_CLOSED_AFTER_CONNECT = "TCP_CLOSED_AFTER_CONNECT"
    TCP_REFUSED = "TCP_REFUSED"
    TCP_TIMEOUT = "TCP_TIMEOUT"
    READ_TIMEOUT = "READ_TIMEOUT"
    TLS_CERT_UNTRUSTED = "TLS_CERT_UNTRUSTED"
    TLS_HOSTNAME_MISMATCH = "TLS_HOSTNAME_MISMATCH"
    TLS_WRONG_VERSION = "TLS_WRONG_VERSION"
    TLS_ALERT = "TLS_ALERT"
    DNS_NXDOMAIN = "DNS_NXDOMAIN"
    DNS_SERVFAIL = "DNS_SERVFAIL"
    DNS_TIMEOUT = "DNS_TIMEOUT"
    DNS_NO_ANSWER = "DNS_NO_ANSWER"
    # Added by the probe engine (extensions of the closed set: extend, never rename):
    PROTOCOL_ERROR = "PROTOCOL_ERROR"  # the peer answered, but not in the protocol spoken (not HTTP)
    PROBE_ERROR = "PROBE_ERROR"  # the probe itself failed (local resource error, a bug): no evidence


class Protocol(enum.StrEnum):
    """What the probe speaks to a target."""

    HTTP = "http"
    HTTPS = "https"
    TLS = "tls"
    TCP = "tcp"


class Origin(enum.StrEnum):
    """Which hop produced what the client saw (``observed.origin``, docs/probe.md).

    ``local-sidecar``: the pod's own Envoy answered (plaintext HTTP through its HCM, no
    ``x-envoy-upstream-service-time``). ``via-route``: relayed by an Envoy from a routed cluster
    (the upstream, or an egress gateway). ``end-to-end-tls``: TLS passthrough, the origin's own
    bytes. ``direct``: no sidecar on the path (local run, bypass).
    """

    LOCAL_SIDECAR = "local-sidecar"
    VIA_ROUTE = "via-route"
    END_TO_END_TLS = "end-to-end-tls"
    DIRECT = "direct"


class Phase(enum.StrEnum):
    """The fixed phase names, in order (blackbox_exporter style)."""

    RESOLVE = "resolve"
    CONNECT = "connect"
    TLS = "tls"
    REQUEST = "request"
    FIRST_BYTE = "first_byte"


# --------------------------------------------------------------------------------------------
# JSON helpers (generic over the dataclasses below)
# --------------------------------------------------------------------------------------------

T = TypeVar("T")


def to_json(value: Any) -> Any:
    """Convert a dataclass tree (enums, tuples, mappings) into plain JSON-able values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    return value


def from_json(cls: type[T], data: Any) -> T:
    """Build dataclass ``cls`` from ``to_json`` output; unknown keys are ignored."""
    return typing.cast(T, _convert(cls, data))


def _convert(tp: Any, data: Any) -> Any:
    if data is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _convert(args[0], data) if len(args) == 1 else data
    if origin is tuple:
        (item,) = typing.get_args(tp)[:1]
        return tuple(_convert(item, v) for v in data)
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        kv = typing.get_args(tp)
        vt = kv[1] if kv else Any
        return {k: _convert(vt, v) for k, v in data.items()}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(data)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        kwargs = {
            f.name: _convert(hints[f.name], data[f.name])
            for f in dataclasses.fields(tp)
            if f.name in data
        }
        return tp(**kwargs)
    return data


# --------------------------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TargetSpec:
    """One parsed target (docs/targets.md). ``raw`` is exactly what the user wrote."""

    raw: str
    protocol: Protocol
    host: str  # lower-cased; a trailing dot is kept (it matters to Envoy)
    port: int
    path: str = "/"
    url: str = ""  # canonical URL form, e.g. https://host:443/path or tcp://host:22
    ip_literal: bool = False
    sni: str | None = None  # None for IP literals (no SNI is sent) and plain HTTP/TCP
    warnings: tuple[str, ...] = ()
    # An HTTP 4xx from the origin itself counts as reached, like OK (presets: a registry answering
    # 401/404 at its root was reached). Set from the plan (``accept_4xx``), never from the string.
    accept_4xx: bool = False


# --------------------------------------------------------------------------------------------
# Evidence per protocol
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Phases:
    """Seconds spent in each phase; ``None`` when the phase did not run."""

    resolve: float | None = None
    connect: float | None = None
    tls: float | None = None
    request: float | None = None
    first_byte: float | None = None


@dataclasses.dataclass(frozen=True)
class DnsEvidence:
    query: str  # the name as given
    names_tried: tuple[str, ...] = ()  # after search domains / ndots, in order
    answered_name: str | None = None
    a: tuple[str, ...] = ()
    aaaa: tuple[str, ...] = ()
    rcode: str | None = None  # NOERROR, NXDOMAIN, SERVFAIL, ... of the decisive answer
    resolver: str | None = None  # "IP:PORT" that answered
    mesh_vip: bool = False  # an answer in 240.240.0.0/16 or 2001:2::/48 (Istio DNS proxy VIP)
    bypassed_pod_dns: bool = False  # --resolver / --resolve used: not the pod's DNS path
    source: str = "resolv.conf"  # resolv.conf | resolver-flag | resolve-flag | ip-literal


@dataclasses.dataclass(frozen=True)
class TcpEvidence:
    address: str  # "IP:PORT" dialled
    banner: str | None = None  # first bytes a server-first protocol sent (decoded, truncated)
    closed_by_peer: bool = False  # FIN/RST inside the read window
    silent: bool = False  # nothing arrived in the read window
    captured: bool | None = None  # the connect went to a local sidecar (None: unknown)
    note: str | None = None  # e.g. "connect reached the sidecar, not the host"


@dataclasses.dataclass(frozen=True)
class TlsEvidence:
    sni: str | None
    alpn_offered: tuple[str, ...] = ()
    alpn: str | None = None
    version: str | None = None
    cipher: str | None = None
    peer_subject: str | None = None
    peer_sans: tuple[str, ...] = ()
    peer_issuer: str | None = None
    peer_not_after: str | None = None  # ISO 8601 UTC
    verified: bool | None = None
    verify_error: str | None = None
    openssl_reason: str | None = None  # e.g. WRONG_VERSION_NUMBER, TLSV1_ALERT_...


@dataclasses.dataclass(frozen=True)
class HttpEvidence:
    status: int | None = None
    http_version: str | None = None
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)  # only those that matter
    content_length: int | None = None
    body_excerpt: str | None = None  # first bytes, for Envoy's own texts
    envoy_reason: str | None = None  # for ENVOY_503_UPSTREAM: no healthy upstream, ...
    upstream_service_time: str | None = None  # x-envoy-upstream-service-time, if present


@dataclasses.dataclass(frozen=True)
class RedirectHop:
    url: str
    status: int
    location: str | None
    signature: Signature


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    """What one target showed. Probers never raise for network outcomes; they return this."""

    target: TargetSpec
    signature: Signature
    origin: Origin | None = None
    phases: Phases = dataclasses.field(default_factory=Phases)
    dns: DnsEvidence | None = None
    tcp: TcpEvidence | None = None
    tls: TlsEvidence | None = None
    http: HttpEvidence | None = None
    redirects: tuple[RedirectHop, ...] = ()
    error: str | None = None  # the exception chain, one line, for humans
    error_class: str | None = None  # e.g. "httpx.ConnectError <- ConnectionResetError"
    elapsed: float = 0.0
    notes: tuple[str, ...] = ()
    expect: str | None = None  # allowed | blocked | via-gateway, when the plan said so


def accepted(result: ProbeResult) -> bool:
    """The target answered as an allowed target should: ``OK``, or, when its spec says
    ``accept_4xx``, an HTTP 4xx from the origin (``HTTP_STATUS``: Envoy's own 4xx replies have
    signatures of their own, so they never count)."""
    if result.signature is Signature.OK:
        return True
    status = result.http.status if result.http is not None else None
    return (
        result.target.accept_4xx
        and result.signature is Signature.HTTP_STATUS
        and status is not None
        and 400 <= status < 500
    )


def met_expectation(result: ProbeResult) -> bool:
    """allowed / via-gateway (the probe cannot see the gateway): OK (or an origin's 4xx for an
    ``accept_4xx`` target, ``accepted``); blocked: anything else."""
    if result.expect == "blocked":
        return not accepted(result)
    return accepted(result)


# --------------------------------------------------------------------------------------------
# Sidecar evidence (raw: diag/ interprets it)
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ClusterMembership:
    cluster: str
    hosts: tuple[str, ...] = ()  # "IP:PORT" from /clusters; empty: Envoy cannot resolve
    health: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class SidecarEvidence:
    """What the pod's own Envoy says, collected with filtered admin endpoints only (docs/probe-pod.md)."""

    present: bool
    admin: str | None = None  # "127.0.0.1:15000"
    ready: bool | None = None
    ready_after_s: float | None = None
    native: bool | None = None  # None when the probe cannot tell (the CLI knows from the pod spec)
    proxy_version: str | None = None
    istio_version: str | None = None  # node metadata ISTIO_VERSION (/server_info)
    dns_capture: bool | None = None  # node metadata DNS_CAPTURE (None: not said)
    server_state: str | None = None  # Envoy's state from /server_info: LIVE, PRE_INITIALIZING, ...
    # Raw filtered config_dump JSON documents, keyed by resource kind
    # ("dynamic_listeners"/"listeners", "clusters", "routes"), each a list of Envoy config objects.
    config: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    clusters: tuple[ClusterMembership, ...] = ()
    update_rejected: Mapping[str, int] = dataclasses.field(default_factory=dict)  # lds/cds counters
    stats_opted_in: bool = False
    counter_deltas: Mapping[str, int] | None = None  # only when opted in and the probe ran alone
    quit_requested: bool = False
    quit_refused_reason: str | None = None
    notes: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class ProbeReport:
    """The JSON document ``python -m probes`` prints."""

    schema: str
    probe_version: str
    results: tuple[ProbeResult, ...]
    sidecar: SidecarEvidence | None = None
    started_at: str | None = None
    elapsed: float = 0.0
    concurrency: int = 1
    notes: tuple[str, ...] = ()
