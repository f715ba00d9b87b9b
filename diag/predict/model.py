"""The shapes of a prediction: who calls (`Source`), what call (`Call`), and what pilot's config
does with it (`EnvoyPath`, `Prediction`), plus the helper answers rules need (`Candidate`,
`PortOwner`, `UpstreamTls`, `Decision`).

Plain frozen data; the logic is in `diag.predict.sidecar`, `diag.predict.visibility` and
`diag.predict.listeners`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from diag.model.snapshot import MeshService

if TYPE_CHECKING:
    from diag.predict.gateway_model import GatewayHop

VERDICTS = ("allowed", "blocked", "passthrough", "unknown")


@dataclass(frozen=True, kw_only=True)
class Source:
    """The proxy whose config is predicted.

    `dns_capture`/`auto_allocate` None = take them from the mesh `defaultConfig.proxyMetadata` (and a
    matching Pod's `proxy.istio.io/config` if one was loaded); `mesh_mode` is `--mode`, the
    mesh-wide mode (it replaces MeshConfig `outboundTrafficPolicy.mode`; a Sidecar selecting the
    source still overrides it); `mode_override` is the *effective* mode when it is known for
    certain (the live sidecar's catch-all cluster), which nothing overrides; `http10` is istiod's
    `PILOT_HTTP10` (off by default); `pod_ips` the proxy's own addresses when known (pilot builds no
    per-endpoint listener for an endpoint whose address is the proxy's first one).
    """

    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    dns_capture: bool | None = None
    auto_allocate: bool | None = None
    mode_override: str | None = None
    mesh_mode: str | None = None
    http10: bool = False
    istio_version: str | None = None
    service_account: str | None = None  # the pod's (its identity at an egress gateway); None = unknown
    pod_ips: tuple[str, ...] = ()

    def key(self) -> tuple[Any, ...]:
        """A hashable identity (for per-source caches)."""
        return (
            self.namespace,
            tuple(sorted(self.labels.items())),
            self.dns_capture,
            self.auto_allocate,
            self.mode_override,
            self.mesh_mode,
            self.http10,
            self.istio_version,
            self.service_account,
            self.pod_ips,
        )


@dataclass(frozen=True, kw_only=True)
class Call:
    """One connection attempt from the source.

    `protocol` is what the client speaks: "http" (plaintext), "https" (TLS carrying HTTP), "tls"
    or "tcp". `sni` defaults to the host for https/tls unless the host is an IP literal (no SNI).
    `address` is the destination IP dialled; None = "whatever the name resolves to" (the agent's
    DNS answer with DNS capture, the ClusterIP for Kubernetes Services, else an assumption noted
    in the prediction). `http_version` "1.0", "1.1" or "2". `path` (with its query), `method` and
    `headers` (extra request headers; a `host` header replaces the Host derived from `host`/`port`)
    are what VirtualService HTTP matches read.
    """

    host: str
    port: int
    protocol: str = "https"
    sni: str | None = None
    address: str | None = None
    http_version: str = "1.1"
    path: str = "/"
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def host_is_ip(self) -> bool:
        """The host is an IPv4/IPv6 literal."""
        try:
            ipaddress.ip_address(self.host.strip("[]"))
        except ValueError:
            return False
        return True

    @property
    def effective_sni(self) -> str | None:
        """The SNI the client sends: explicit, else the host for TLS calls (never for IP literals)."""
        if self.protocol not in ("https", "tls"):
            return None
        if self.sni is not None:
            return self.sni.lower() or None
        return None if self.host_is_ip else self.host.lower()


@dataclass(frozen=True, kw_only=True)
class EnvoyPath:
    """Which listener, filter chain, route, virtual host and cluster Envoy picks (pilot's names)."""

    listener: str | None = None
    filter_chain: str | None = None
    route: str | None = None
    vhost: str | None = None
    cluster: str | None = None

    def to_json(self) -> dict[str, str | None]:
        """The report's `path` object."""
        return {
            "listener": self.listener,
            "filter_chain": self.filter_chain,
            "route": self.route,
            "vhost": self.vhost,
            "cluster": self.cluster,
        }


@dataclass(frozen=True, kw_only=True)
class Decision:
    """A yes/no answer with the object that decided it (a `ref`, or "MeshConfig ...")."""

    allowed: bool
    decided_by: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class ModeDecision:
    """The effective outbound mode of a proxy and the object that sets it."""

    mode: str
    decided_by: str
    egress_proxy: str | None = None  # the egressProxy cluster name when a Sidecar sets one


@dataclass(frozen=True, kw_only=True)
class UpstreamTls:
    """How the sidecar talks to the upstream of a cluster (cluster_tls.go buildUpstreamTLSSettings).

    `mode`: DISABLE, SIMPLE, MUTUAL, ISTIO_MUTUAL (from a DestinationRule), or "AUTO_ISTIO_MUTUAL"
    (auto-mTLS on endpoints labelled tlsMode istio), or "NONE" (plaintext / the app's own TLS).
    """

    mode: str
    decided_by: str | None = None
    sni: str = ""


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """A service whose host matches a name, whatever its visibility (for "exists but ..." rules)."""

    service: MeshService
    host_match: str  # "exact" | "wildcard"
    visible: Decision | None = None  # None when no source was given
    port_declared: bool | None = None  # None when no port was given

    @property
    def ref(self) -> str:
        """The owning object's ref."""
        return self.service.ref


@dataclass(frozen=True, kw_only=True)
class NearName:
    """A visible-or-not entry for a name close to the target (MP0113)."""

    service: MeshService
    relation: str  # "wildcard-not-apex" | "sibling" | "trailing-dot" | "parent-wildcard" | "case"


@dataclass(frozen=True, kw_only=True)
class PortOwner:
    """The service owning a match-all chain on `0.0.0.0:port` for a proxy (MP0107)."""

    service: MeshService
    port: int
    reason: str  # "tcp-no-address" | "auto-no-address" | "cidr-all" (ExternalName: an alias since 1.21)
    cluster: str = ""

    @property
    def ref(self) -> str:
        """The owning object's ref."""
        return self.service.ref


@dataclass(frozen=True, kw_only=True)
class AddressOwner:
    """An object whose listener or CIDR chain on a port matches only some destination addresses."""

    ref: str
    target: str  # the cluster (or route) those addresses lead to
    addresses: tuple[str, ...]  # IPs and CIDR ranges


@dataclass(frozen=True, kw_only=True)
class Prediction:
    """What pilot's config does with a call from a source (docs/model.md; the report's `predicted`)."""

    verdict: str  # one of VERDICTS
    envoy: str  # the one-word summary: the cluster, or the vhost for a direct response (block_all)
    path: EnvoyPath
    matched: tuple[str, ...] = ()  # refs of the resources on the path (entry, DR, VS, Sidecar)
    mode: str = "ALLOW_ANY"
    mode_from: str = ""
    notes: tuple[str, ...] = ()
    assumptions: tuple[str, ...] = ()
    service: MeshService | None = None  # the service whose cluster/vhost matched, if any
    listener_address: str | None = None  # the bind of the matched listener ("0.0.0.0", an IP)
    dialled_address: str | None = None  # the address the prediction assumed was dialled
    dns_answer: tuple[str, ...] | None = None  # what the agent's DNS proxy answers (capture only)
    upstream_tls: UpstreamTls | None = None
    sidecar: str | None = None  # ref of the Sidecar selecting the source
    unmodelled: tuple[str, ...] = ()  # EnvoyFilter/WasmPlugin/locked egress listeners (MP0121)
    catch_all: bool = False  # ended in virtualOutbound/PassthroughFilterChain/block_all/allow_any
    # VirtualService HTTP routes (None when no VirtualService owns the virtual host):
    http_action: str | None = None  # "route" | "redirect" | "direct_response" | "no_route" (404 NR)
    route_name: str | None = None  # the matching route's own name
    routes_tried: tuple[str, ...] = ()  # the virtual host's routes, in the order Envoy tries them
    weighted: tuple[tuple[str, int], ...] = ()  # (cluster, weight) of a weighted route
    local_status: int | None = None  # the sidecar's own answer: redirect code, direct status, 404
    gateway: GatewayHop | None = None  # the egress-gateway hop (`diag.predict.gateway.with_gateway`)

    def to_json(self) -> dict[str, Any]:
        """The report's `predicted` object (docs/schema.md), with the notes and the assumptions the
        verdict rests on (e.g. the address a name was assumed to resolve to)."""
        return {
            "verdict": self.verdict,
            "envoy": self.envoy,
            "path": self.path.to_json(),
            "matched": list(self.matched),
            "notes": list(self.notes),
            "assumptions": list(self.assumptions),
            "gateway": self.gateway.to_json() if self.gateway is not None else None,
        }
