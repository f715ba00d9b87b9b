"""The shapes of the egress-gateway hop: the gateway workload a sidecar's cluster leads to
(`GatewayWorkload`) and what that gateway does with the call (`GatewayHop`, the report's
`predicted.gateway`, docs/schema.md). Plain frozen data; the logic is in `diag.predict.gateway`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Why the hop fails (`GatewayHop.reason`); MP0112 reports all but "denied" (MP0118).
REASONS = (
    "subset-missing",  # the sidecar's cluster names a subset no DestinationRule defines: 503 NC
    "port-not-on-service",  # the sidecar dials a port the gateway Service lacks (IST0162's runtime side)
    "no-server",  # no Gateway server on that port: nothing listens there
    "tls-mismatch",  # sidecar→gateway TLS does not fit the server's tls mode: 503 UC / reset
    "no-vhost",  # the host is on no server of the port: 404 NR at the gateway
    "no-route",  # a vhost, but no route of the VS bound to the gateway matches: 404 NR at the gateway
    "no-filter-chain",  # TLS passthrough / TCP server without a tls/tcp route for the SNI: reset
    "no-cluster",  # the gateway's route names a cluster it does not have: 503 NC at the gateway
    "no-endpoints",  # the destination has resolution NONE: no endpoints behind a gateway, 503 UH
    "tls-redirect",  # a plaintext request to a virtual host requiring TLS (httpsRedirect): 301
    "denied",  # an AuthorizationPolicy at the gateway denies the caller: 403 RBAC / reset
)


@dataclass(frozen=True, kw_only=True)
class GatewayWorkload:
    """An egress gateway Deployment as far as the config shows it: its Service (host, ref), pod
    labels (from the Service selector, or the Gateway selector when no Service is loaded), the
    Gateways selecting it, and whether it is only inferred (no Service object in the input)."""

    name: str  # "istio-egressgateway.istio-system"
    namespace: str
    host: str  # the Service host the sidecar's cluster names
    labels: Mapping[str, str] = field(default_factory=dict)
    service_ref: str | None = None
    ports: Mapping[int, int] = field(default_factory=dict)  # Service port → target (pod) port
    gateways: tuple[str, ...] = ()  # refs of the Gateways selecting it
    inferred: bool = False


@dataclass(frozen=True, kw_only=True)
class GatewayHop:
    """What the gateway does with the call (pilot's names for its listener, route config, virtual
    host and cluster), the verdict, the failure `reason` (one of `REASONS`, "" = none), what the
    client would see (`signature`, from which hop: `origin`), and the objects that decide."""

    gateway: str
    service: str
    port: int  # the gateway Service port the sidecar dials
    verdict: str  # allowed | blocked | unknown
    reason: str = ""
    message: str = ""
    subset: str = ""
    listener: str | None = None
    filter_chain: str | None = None
    route: str | None = None
    vhost: str | None = None
    cluster: str | None = None  # the gateway's upstream cluster
    server: str | None = None  # "Gateway ns/name servers[i]"
    server_tls: str = ""  # the server's tls mode ("" = plaintext)
    sidecar_tls: str = ""  # the sidecar→gateway TLS mode (UpstreamTls.mode)
    gateway_ref: str | None = None
    virtual_service: str | None = None  # the VS bound to the gateway that routes (or should route) it
    mesh_virtual_service: str | None = None  # the VS sending the call to the gateway
    destination_rule: str | None = None  # the DR on the failing leg (subset, TLS)
    destination: str | None = None  # the ServiceEntry/Service behind the gateway's cluster
    policy: str | None = None  # the AuthorizationPolicy that decided
    principal: str | None = None  # the caller's identity as the gateway sees it
    policies: tuple[str, ...] = ()  # every AuthorizationPolicy applying to the gateway
    signature: str | None = None  # what the client sees when it fails
    origin: str | None = None  # local-sidecar | via-route (relayed from the gateway)
    inferred: bool = False  # no gateway Service/Gateway objects in the input: the hop is inferred
    notes: tuple[str, ...] = ()

    @property
    def resources(self) -> tuple[str, ...]:
        """The objects on the hop, for a diagnosis' `resources`."""
        refs = (
            self.mesh_virtual_service,
            self.virtual_service,
            self.gateway_ref,
            self.destination_rule,
            self.destination,
            self.policy,
        )
        return tuple(dict.fromkeys(r for r in refs if r))

    def to_json(self) -> dict[str, Any]:
        """The report's `predicted.gateway` object."""
        return {
            "gateway": self.gateway,
            "service": self.service,
            "port": self.port,
            "inferred": self.inferred,
            "verdict": self.verdict,
            "reason": self.reason or None,
            "path": {
                "listener": self.listener,
                "filter_chain": self.filter_chain,
                "route": self.route,
                "vhost": self.vhost,
                "cluster": self.cluster,
            },
            "server": self.server,
            "tls": {"sidecar": self.sidecar_tls or None, "server": self.server_tls or None},
            "authorization": {
                "policy": self.policy,
                "principal": self.principal,
                "policies": list(self.policies),
            },
            "signature": self.signature,
            "origin": self.origin,
            "matched": list(self.resources),
            "notes": list(self.notes),
        }


RELAYED_BODIES = (
    (403, "RBAC: access denied", "ENVOY_403_RBAC"),
    (503, "no healthy upstream", "ENVOY_503_UPSTREAM"),
    (503, "upstream connect error", "ENVOY_503_UPSTREAM"),
    (504, "upstream request timeout", "ENVOY_504_TIMEOUT"),
)


def relayed_envoy_reply(status: int | None, body: str | None, origin: str | None) -> str | None:
    """The Envoy signature of a local reply an upstream Envoy (an egress gateway) made and the
    sidecar relayed: the probe reads it as `HTTP_STATUS` with origin `via-route` (the sidecar adds
    `x-envoy-upstream-service-time`), but its status and body are Envoy's own (probes/envoy.py's
    table): 403 "RBAC: access denied", 404 or 503 with no body (NR, NC), 503 "no healthy upstream"
    or "upstream connect error …", 504 "upstream request timeout". None for anything else."""
    if origin != "via-route" or status is None:
        return None
    text = (body or "").strip()
    if not text:
        return {404: "ENVOY_404_NR", 503: "ENVOY_503_NO_CLUSTER"}.get(status)
    for code, prefix, signature in RELAYED_BODIES:
        if status == code and text.startswith(prefix):
            return signature
    return None
