"""The generator's public value types: the proxy a config is generated for (:class:`PodView`,
:class:`GatewayView`), what comes out (:class:`GeneratedConfig`) and what the lab internet must
serve (:class:`InternetHost`). Re-exported by ``lab/istiod/__init__.py``; kept here so the
generator's modules can import them without importing the package's entry points.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_CONNECT_TIMEOUT_S = 10.0
"""MeshConfig ``connectTimeout`` default (istio ``pkg/config/mesh/mesh.go`` DefaultMeshConfig)."""


@dataclass(frozen=True)
class PodView:
    """The sidecar proxy the config is generated for.

    ``mesh`` is a MeshConfig dict (the ``mesh`` key of the istio ConfigMap): at least
    ``outboundTrafficPolicy.mode``, ``defaultServiceExportTo``, ``discoverySelectors``,
    ``rootNamespace``, ``connectTimeout`` and ``protocolDetectionTimeout`` are honoured.
    ``mode_override`` stands for ``meshprobe lab up --mode`` and replaces the mesh mode (a Sidecar's
    ``outboundTrafficPolicy`` still wins over both, as in pilot). ``http10`` is istiod's
    ``PILOT_HTTP10``. ``connect_timeout_s`` overrides the mesh ``connectTimeout`` so tests can
    shorten it. ``auto_allocate`` is ``PILOT_ENABLE_IP_AUTOALLOCATE`` (default on since 1.25; the
    VIPs are used only with ``dns_capture``). ``ca_file`` stands for the agent's "system" root
    bundle (DestinationRule SIMPLE/MUTUAL without ``caCertificates``) and ``mesh_ca_file`` for the
    mesh root (ISTIO_MUTUAL); without them the lab cannot verify upstream certificates.
    ``cert_chain_file``/``private_key_file`` are the pod's SPIFFE workload certificate (what SDS
    ``default`` would serve), presented on ISTIO_MUTUAL upstream connections.
    ``pod_ips`` are the pod's own addresses (pilot builds no outbound listener to itself).
    """

    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    dns_capture: bool = False
    mesh: Mapping[str, Any] = field(default_factory=dict)
    mode_override: str | None = None
    http10: bool = False
    connect_timeout_s: float | None = None
    auto_allocate: bool = True
    ca_file: str | None = None
    mesh_ca_file: str | None = None
    pod_ips: tuple[str, ...] = ()
    cert_chain_file: str | None = None
    private_key_file: str | None = None


@dataclass(frozen=True)
class GeneratedConfig:
    """What istiod would push to the pod's sidecar (static form).

    ``listeners`` and ``clusters`` are Envoy v3 JSON dicts with pilot's names; ``dns`` maps host
    names to the addresses the agent's DNS proxy answers with (empty without DNS capture);
    ``notes`` says what was dropped or simplified, one line each; ``mode`` is the effective
    outbound mode (``REGISTRY_ONLY`` or ``ALLOW_ANY``) and ``mode_from`` which object set it.
    """

    listeners: list[dict[str, Any]]
    clusters: list[dict[str, Any]]
    dns: dict[str, tuple[str, ...]]
    notes: tuple[str, ...] = ()
    mode: str = "ALLOW_ANY"
    mode_from: str = "default"


def _gateway_labels() -> dict[str, str]:
    return {"istio": "egressgateway", "app": "istio-egressgateway"}


@dataclass(frozen=True)
class GatewayView:
    """The gateway proxy a gateway config is generated for (istio's egress gateway by default).

    ``labels`` select Gateways (``spec.selector``), Services (their ``targetPort`` becomes the
    listener port) and AuthorizationPolicies; ``mesh`` is a MeshConfig dict as for :class:`PodView`.
    ``ca_file`` stands for the "system" roots (DestinationRule SIMPLE origination without
    ``caCertificates``); ``mesh_ca_file`` for the mesh root that validates client certificates on
    ISTIO_MUTUAL servers; ``cert_chain_file``/``private_key_file`` are the gateway's own SPIFFE
    certificate (served on ISTIO_MUTUAL servers, presented to mesh mTLS upstreams).
    ``scope_to_namespace`` is istiod's ``PILOT_SCOPE_GATEWAY_TO_NAMESPACE``. ``ips`` are the
    gateway pod's addresses: a ServiceEntry endpoint at one of them exposes the gateway like a
    Service selecting its labels does. ``service_account`` and
    ``trust_domain`` describe the gateway's identity for callers; the generator does not read them.
    """

    namespace: str = "istio-system"
    name: str = "istio-egressgateway"
    labels: Mapping[str, str] = field(default_factory=_gateway_labels)
    service_account: str = "istio-egressgateway"
    mesh: Mapping[str, Any] = field(default_factory=dict)
    ca_file: str | None = None
    mesh_ca_file: str | None = None
    cert_chain_file: str | None = None
    private_key_file: str | None = None
    trust_domain: str = "cluster.local"
    connect_timeout_s: float | None = None
    scope_to_namespace: bool = False
    ips: tuple[str, ...] = ()


@dataclass(frozen=True)
class InternetPort:
    """One port the lab internet serves for a host; ``protocol`` is ``http``, ``https``, ``tls`` or
    ``tcp`` (what a server on that port should speak)."""

    number: int
    protocol: str


@dataclass(frozen=True)
class InternetHost:
    """A host the lab internet must answer for: its name and the ports named in the config
    (beyond the lab's standard 80/443/22)."""

    host: str
    ports: tuple[InternetPort, ...] = ()
