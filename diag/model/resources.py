"""The typed mesh model: one frozen dataclass per Kubernetes/Istio kind meshprobe reads.

Every object carries its identity (`kind`, `namespace`, `name`, `ref` = "Kind ns/name"),
its creation time (`created`, ISO 8601 or None: pilot orders ServiceEntries by it), its labels
and annotations, where it came from (`origin`, "file.yaml#3"), and the `raw` mapping it was
parsed from (so rules and fixes can quote the user's own YAML).

Field meanings follow the Istio API (istio/api `networking/v1alpha3/*.proto`, served as v1,
v1beta1 and v1alpha3) and how istiod converts them:

- Port protocols are normalised the way `pkg/config/protocol/instance.go` `Parse` does
  (case-insensitive; unknown or empty → "" = auto / sniffed). For ServiceEntries only the
  `protocol` field counts (`pilot/pkg/serviceregistry/serviceentry/conversion.go`
  `convertPort`); for Kubernetes Services `appProtocol`, then the port-name prefix
  (`pkg/config/kube/conversion.go` `ConvertProtocol`).
- `ServiceEntry.resolution` defaults to NONE and `location` to MESH_EXTERNAL (proto zero values).

Parsing lives in `diag.model.loader`; this module only defines shapes and small pure helpers. It is
longer than most modules because it holds one dataclass per kind (and their parts) in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Istio protocol names, upper-cased (pkg/config/protocol/instance.go). "" = auto (sniffed).
HTTP_FAMILY = frozenset({"HTTP", "HTTP2", "GRPC", "GRPC-WEB", "HTTP_PROXY"})
TLS_FAMILY = frozenset({"HTTPS", "TLS"})
TCP_FAMILY = frozenset({"TCP", "HTTPS", "TLS", "MONGO", "MYSQL", "REDIS"})
KNOWN_PROTOCOLS = HTTP_FAMILY | TCP_FAMILY | frozenset({"UDP"})

EMPTY: Mapping[str, str] = {}


def normalize_protocol(value: object) -> str:
    """Istio protocol name for `value`: upper-cased known name, else "" (auto).

    Mirrors `protocol.Parse` (pkg/config/protocol/instance.go): case-insensitive, anything
    unknown is "Unsupported", which the listener code treats as auto (sniffing).
    """
    if not isinstance(value, str):
        return ""
    text = value.strip().upper()
    return text if text in KNOWN_PROTOCOLS else ""


def listener_family(protocol: str) -> str:
    """ "http", "tcp", "auto" or "udp" for a normalised protocol.

    Follows `ModelProtocolToListenerProtocol` (pilot/pkg/networking/...): HTTP-family → HTTP,
    TCP-family → TCP, unsupported (unset) → auto; UDP is not proxied by sidecars.
    """
    if protocol in HTTP_FAMILY:
        return "http"
    if protocol in TCP_FAMILY:
        return "tcp"
    if protocol == "UDP":
        return "udp"
    return "auto"


WELL_KNOWN_TCP_PORTS = frozenset({25, 53, 3306, 27017})


def kube_port_protocol(
    number: int, name: str, transport: str = "TCP", app_protocol: str | None = None
) -> str:
    """Istio protocol of a Kubernetes Service port (pkg/config/kube/conversion.go ConvertProtocol).

    UDP → UDP; `appProtocol` wins over the name (with the kubernetes.io/h2c, ws, wss names);
    `grpc-web` prefix; else the name's prefix before "-"; unknown → auto, except the well-known
    ports 25, 53, 3306 and 27017, which are TCP.
    """
    if transport.upper() == "UDP":
        return "UDP"
    text = name
    if app_protocol is not None:
        special = {"kubernetes.io/h2c": "HTTP2", "kubernetes.io/ws": "HTTP", "kubernetes.io/wss": "HTTPS"}
        if app_protocol in special:
            return special[app_protocol]
        text = app_protocol
    if text.lower().startswith("grpc-web"):
        return "GRPC-WEB"
    parsed = normalize_protocol(text.split("-", 1)[0])
    if parsed == "" and number in WELL_KNOWN_TCP_PORTS:
        return "TCP"
    return parsed


@dataclass(frozen=True, kw_only=True)
class Resource:
    """Common identity of every loaded object."""

    kind: str
    namespace: str
    name: str
    api_version: str = ""
    created: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    origin: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def ref(self) -> str:
        """ "Kind ns/name" — how reports and rules name this object."""
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


@dataclass(frozen=True, kw_only=True)
class Port:
    """A declared port. `protocol` is normalised ("" = auto); `declared` is what was written."""

    number: int
    protocol: str = ""
    name: str = ""
    target_port: int | None = None
    declared: str = ""
    app_protocol: str = ""  # Kubernetes Services only

    @property
    def family(self) -> str:
        """ "http", "tcp", "auto" or "udp" (see `listener_family`)."""
        return listener_family(self.protocol)


@dataclass(frozen=True, kw_only=True)
class WorkloadEndpoint:
    """A ServiceEntry `endpoints[]` item (a WorkloadEntry spec)."""

    address: str = ""
    ports: Mapping[str, int] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    service_account: str = ""
    network: str = ""
    weight: int = 0

    @property
    def istio_mtls(self) -> bool:
        """Whether auto-mTLS would treat this endpoint as a mesh workload.

        `conversion.go` `convertWorkloadEntryToServiceInstances`: TLS mode istio when the label
        `security.istio.io/tlsMode: istio` is present or a serviceAccount is set.
        """
        return self.labels.get("security.istio.io/tlsMode") == "istio" or bool(self.service_account)


@dataclass(frozen=True, kw_only=True)
class ServiceEntry(Resource):
    """networking.istio.io ServiceEntry (service_entry.proto)."""

    kind: str = "ServiceEntry"
    hosts: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    ports: tuple[Port, ...] = ()
    location: str = "MESH_EXTERNAL"
    resolution: str = "NONE"
    endpoints: tuple[WorkloadEndpoint, ...] = ()
    export_to: tuple[str, ...] = ()
    workload_selector: Mapping[str, str] | None = None
    subject_alt_names: tuple[str, ...] = ()
    status_addresses: tuple[str, ...] = ()  # status.addresses[].value (auto-allocated, 1.25+)
    status_host_addresses: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # per host

    @property
    def autoallocate_opt_out(self) -> bool:
        """Label `networking.istio.io/enable-autoallocate-ip: "false"` (ip_autoallocation.go)."""
        return self.labels.get("networking.istio.io/enable-autoallocate-ip", "").lower() == "false"


@dataclass(frozen=True, kw_only=True)
class EgressProxy:
    """Sidecar `outboundTrafficPolicy.egressProxy` (a Destination: host, subset, port)."""

    host: str
    subset: str = ""
    port: int | None = None


@dataclass(frozen=True, kw_only=True)
class OutboundTrafficPolicy:
    """`outboundTrafficPolicy` of a Sidecar or of MeshConfig. `mode` upper-cased."""

    mode: str = "ALLOW_ANY"
    egress_proxy: EgressProxy | None = None


@dataclass(frozen=True, kw_only=True)
class EgressListener:
    """A Sidecar `egress[]` item (IstioEgressListener)."""

    hosts: tuple[str, ...] = ()
    port: Port | None = None
    bind: str = ""
    capture_mode: str = ""

    @property
    def unmodelled(self) -> bool:
        """An explicit port, bind or captureMode makes a locked listener meshprobe does not model."""
        return self.port is not None or bool(self.bind) or self.capture_mode not in ("", "DEFAULT")


@dataclass(frozen=True, kw_only=True)
class Sidecar(Resource):
    """networking.istio.io Sidecar (sidecar.proto)."""

    kind: str = "Sidecar"
    workload_selector: Mapping[str, str] | None = None
    egress: tuple[EgressListener, ...] = ()
    outbound_traffic_policy: OutboundTrafficPolicy | None = None
    has_ingress: bool = False
    has_inbound_pool: bool = False


@dataclass(frozen=True, kw_only=True)
class ClientTls:
    """DestinationRule ClientTLSSettings. `mode` upper-cased (DISABLE, SIMPLE, MUTUAL, ISTIO_MUTUAL)."""

    mode: str = "DISABLE"
    sni: str = ""
    credential_name: str = ""
    ca_certificates: str = ""
    client_certificate: str = ""
    subject_alt_names: tuple[str, ...] = ()
    insecure_skip_verify: bool = False


@dataclass(frozen=True, kw_only=True)
class PortTrafficPolicy:
    """A `portLevelSettings[]` item (only the parts meshprobe uses)."""

    port: int
    tls: ClientTls | None = None


@dataclass(frozen=True, kw_only=True)
class TrafficPolicy:
    """DestinationRule TrafficPolicy (only the parts meshprobe uses)."""

    tls: ClientTls | None = None
    port_level: tuple[PortTrafficPolicy, ...] = ()
    connect_timeout: str = ""

    def tls_for_port(self, port: int) -> ClientTls | None:
        """Port-level TLS wins over the top-level one (cluster_builder applyTrafficPolicy)."""
        for item in self.port_level:
            if item.port == port and item.tls is not None:
                return item.tls
        return self.tls


@dataclass(frozen=True, kw_only=True)
class Subset:
    """A DestinationRule subset."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    traffic_policy: TrafficPolicy | None = None


@dataclass(frozen=True, kw_only=True)
class DestinationRule(Resource):
    """networking.istio.io DestinationRule (destination_rule.proto)."""

    kind: str = "DestinationRule"
    host: str = ""
    export_to: tuple[str, ...] = ()
    traffic_policy: TrafficPolicy | None = None
    subsets: tuple[Subset, ...] = ()
    workload_selector: Mapping[str, str] | None = None


@dataclass(frozen=True, kw_only=True)
class RouteDestination:
    """A VirtualService route destination."""

    host: str
    subset: str = ""
    port: int | None = None
    weight: int = 0


@dataclass(frozen=True, kw_only=True)
class StringMatch:
    """A VirtualService `StringMatch`: `kind` exact, prefix or regex, or "present" when no value
    is given (`{}`); pilot turns that and the regex `*` into Envoy's `present_match`
    (`pilot/pkg/networking/core/route/route.go` `canBeConvertedToPresentMatch`)."""

    kind: str
    value: str = ""

    @property
    def presence(self) -> bool:
        """Translated to `present_match` (no value, or the regex `*`)."""
        return self.kind == "present" or (self.kind == "regex" and self.value == "*")

    def describe(self) -> str:
        return "present" if self.presence else f"{self.kind} {self.value!r}"


@dataclass(frozen=True, kw_only=True)
class HttpMatch:
    """One `http[].match[]` item (`HTTPMatchRequest`). `headers`, `without_headers` and
    `query_params` are (name, match) pairs with header names lower-cased."""

    name: str = ""
    uri: StringMatch | None = None
    scheme: StringMatch | None = None
    method: StringMatch | None = None
    authority: StringMatch | None = None
    headers: tuple[tuple[str, StringMatch], ...] = ()
    without_headers: tuple[tuple[str, StringMatch], ...] = ()
    query_params: tuple[tuple[str, StringMatch], ...] = ()
    ignore_uri_case: bool = False
    port: int | None = None
    source_labels: Mapping[str, str] = field(default_factory=dict)
    source_namespace: str = ""
    gateways: tuple[str, ...] = ()

    def describe(self) -> str:
        """The conditions in one line (for "routes tried" evidence)."""
        parts = [f"uri {self.uri.describe()}"] if self.uri else []
        for label, m in (("scheme", self.scheme), ("method", self.method), ("authority", self.authority)):
            if m is not None:
                parts.append(f"{label} {m.describe()}")
        parts += [f"header {n} {m.describe()}" for n, m in self.headers]
        parts += [f"without header {n} {m.describe()}" for n, m in self.without_headers]
        parts += [f"query {n} {m.describe()}" for n, m in self.query_params]
        if self.ignore_uri_case:
            parts.append("ignoreUriCase")
        return ", ".join(parts) or "any request"


@dataclass(frozen=True, kw_only=True)
class RouteRule:
    """One `http[]`, `tls[]` or `tcp[]` rule of a VirtualService; `match` kept as written, and for
    http rules also parsed (`http_match`), with the redirect / direct response status and the
    `delegate` (namespace, name; namespace "" = the VirtualService's own)."""

    kind: str  # "http" | "tls" | "tcp"
    name: str = ""
    match: tuple[Mapping[str, Any], ...] = ()
    destinations: tuple[RouteDestination, ...] = ()
    has_direct_response: bool = False
    has_redirect: bool = False
    http_match: tuple[HttpMatch, ...] = ()
    redirect_code: int | None = None  # None: no redirect (0 in the YAML means 301)
    redirect: Mapping[str, Any] = field(default_factory=dict)
    direct_status: int | None = None
    delegate: tuple[str, str] | None = None


@dataclass(frozen=True, kw_only=True)
class VirtualService(Resource):
    """networking.istio.io VirtualService (virtual_service.proto)."""

    kind: str = "VirtualService"
    hosts: tuple[str, ...] = ()
    gateways: tuple[str, ...] = ()  # empty = ("mesh",)
    export_to: tuple[str, ...] = ()
    http: tuple[RouteRule, ...] = ()
    tls: tuple[RouteRule, ...] = ()
    tcp: tuple[RouteRule, ...] = ()

    @property
    def binds_mesh(self) -> bool:
        """Applies to sidecars: no gateways listed, or "mesh" among them."""
        return not self.gateways or "mesh" in self.gateways


@dataclass(frozen=True, kw_only=True)
class GatewayServer:
    """A Gateway `servers[]` item."""

    port: Port
    hosts: tuple[str, ...] = ()  # "ns/host" as written ("host" alone = "*/host")
    tls_mode: str = ""  # PASSTHROUGH, SIMPLE, MUTUAL, ISTIO_MUTUAL, AUTO_PASSTHROUGH, ...; "" = no tls
    name: str = ""


@dataclass(frozen=True, kw_only=True)
class Gateway(Resource):
    """networking.istio.io Gateway (gateway.proto)."""

    kind: str = "Gateway"
    selector: Mapping[str, str] = field(default_factory=dict)
    servers: tuple[GatewayServer, ...] = ()


@dataclass(frozen=True, kw_only=True)
class AuthzSource:
    """An AuthorizationPolicy `rules[].from[].source` (security/v1beta1/authorization_policy.proto).
    Principals are written without ``spiffe://`` (``cluster.local/ns/apps/sa/sleep``)."""

    principals: tuple[str, ...] = ()
    not_principals: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    not_namespaces: tuple[str, ...] = ()
    other: tuple[str, ...] = ()  # other fields set (ipBlocks, requestPrincipals, ...): not modelled


@dataclass(frozen=True, kw_only=True)
class AuthzOperation:
    """An AuthorizationPolicy `rules[].to[].operation`."""

    hosts: tuple[str, ...] = ()
    not_hosts: tuple[str, ...] = ()
    ports: tuple[str, ...] = ()
    not_ports: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    not_methods: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    not_paths: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class AuthzCondition:
    """An AuthorizationPolicy `rules[].when[]` item."""

    key: str
    values: tuple[str, ...] = ()
    not_values: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class AuthzRule:
    """One `rules[]` item: it matches when any `from`, any `to` and every `when` matches (an empty
    list matches anything)."""

    sources: tuple[AuthzSource, ...] = ()
    operations: tuple[AuthzOperation, ...] = ()
    conditions: tuple[AuthzCondition, ...] = ()


@dataclass(frozen=True, kw_only=True)
class AuthorizationPolicy(Resource):
    """security.istio.io AuthorizationPolicy (v1, v1beta1). `selector` None = every workload of its
    namespace (the whole mesh in the root namespace); no `rules` matches nothing (an ALLOW policy
    without rules allows nothing), one empty rule (`rules: [{}]`) matches everything."""

    kind: str = "AuthorizationPolicy"
    selector: Mapping[str, str] | None = None
    action: str = "ALLOW"  # ALLOW | DENY | AUDIT | CUSTOM
    rules: tuple[AuthzRule, ...] = ()
    has_target_ref: bool = False  # targetRef(s): attached to a Gateway API gateway or a waypoint


@dataclass(frozen=True, kw_only=True)
class Service(Resource):
    """A Kubernetes core/v1 Service as istiod's kube registry sees it."""

    kind: str = "Service"
    type: str = "ClusterIP"
    ports: tuple[Port, ...] = ()
    cluster_ip: str = ""
    cluster_ips: tuple[str, ...] = ()
    external_name: str = ""
    selector: Mapping[str, str] = field(default_factory=dict)

    @property
    def headless(self) -> bool:
        """`clusterIP: None` (pilot's kube conversion: Resolution Passthrough)."""
        return self.cluster_ip.lower() == "none"

    @property
    def export_to(self) -> tuple[str, ...]:
        """The `networking.istio.io/exportTo` annotation, comma-separated (kube/conversion.go)."""
        text = self.annotations.get("networking.istio.io/exportTo", "")
        return tuple(part.strip() for part in text.split(",") if part.strip())

    def hostname(self, domain_suffix: str = "cluster.local") -> str:
        """`name.namespace.svc.<suffix>` (kube.ServiceHostname)."""
        return f"{self.name}.{self.namespace}.svc.{domain_suffix}"


@dataclass(frozen=True, kw_only=True)
class Namespace(Resource):
    """A Kubernetes Namespace (labels matter for discoverySelectors and injection)."""

    kind: str = "Namespace"


@dataclass(frozen=True, kw_only=True)
class ProxySettings:
    """The parts of a mesh ProxyConfig (mesh `defaultConfig`, `proxy.istio.io/config`) we read.

    `None` means "not set here" so layers can be merged (mesh defaultConfig < ProxyConfig CR <
    pod annotation, pilot/pkg/model/proxy_config.go `EffectiveProxyConfig`).
    """

    proxy_metadata: Mapping[str, str] = field(default_factory=dict)
    hold_application_until_proxy_starts: bool | None = None
    debug_headers_disabled: bool | None = None

    @property
    def dns_capture(self) -> bool | None:
        """`ISTIO_META_DNS_CAPTURE` (pilot-agent options.go; default false for sidecars)."""
        return _truthy(self.proxy_metadata.get("ISTIO_META_DNS_CAPTURE"))

    @property
    def dns_auto_allocate(self) -> bool | None:
        """`ISTIO_META_DNS_AUTO_ALLOCATE` (v1 agent-side allocation, deprecated)."""
        return _truthy(self.proxy_metadata.get("ISTIO_META_DNS_AUTO_ALLOCATE"))

    def merged_over(self, base: ProxySettings) -> ProxySettings:
        """These settings layered on top of `base` (proxyMetadata merged key by key)."""
        meta = {**base.proxy_metadata, **self.proxy_metadata}
        return ProxySettings(
            proxy_metadata=meta,
            hold_application_until_proxy_starts=_first(
                self.hold_application_until_proxy_starts, base.hold_application_until_proxy_starts
            ),
            debug_headers_disabled=_first(self.debug_headers_disabled, base.debug_headers_disabled),
        )


@dataclass(frozen=True, kw_only=True)
class ProxyConfigResource(Resource):
    """networking.istio.io/v1beta1 ProxyConfig (selector + environmentVariables)."""

    kind: str = "ProxyConfig"
    selector: Mapping[str, str] | None = None
    environment: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class MeshConfig:
    """MeshConfig (istio ConfigMap key `mesh`); defaults from pkg/config/mesh/mesh.go.

    `ref` names where it came from ("ConfigMap istio-system/istio", a file, or "default
    MeshConfig"). Top-level fields given in the YAML *replace* defaults (`ApplyMeshConfig`), so an
    `outboundTrafficPolicy: {}` yields the proto zero value REGISTRY_ONLY.
    """

    ref: str = "default MeshConfig"
    outbound: OutboundTrafficPolicy = field(default_factory=OutboundTrafficPolicy)
    outbound_explicit: bool = False
    root_namespace: str = "istio-system"
    default_service_export_to: tuple[str, ...] = ("*",)
    default_virtual_service_export_to: tuple[str, ...] = ("*",)
    default_destination_rule_export_to: tuple[str, ...] = ("*",)
    discovery_selectors: tuple[Mapping[str, Any], ...] = ()
    default_config: ProxySettings = field(default_factory=ProxySettings)
    protocol_detection_timeout: str = "0s"
    enable_auto_mtls: bool = True
    domain_suffix: str = "cluster.local"
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def mode(self) -> str:
        """The mesh-wide outbound mode (ALLOW_ANY by default)."""
        return self.outbound.mode


@dataclass(frozen=True, kw_only=True)
class Pod(Resource):
    """A Pod (or a workload template): what Istio selectors and per-proxy settings read."""

    kind: str = "Pod"
    service_account: str = ""
    host_network: bool = False
    has_sidecar: bool = False
    proxy_config: ProxySettings | None = None  # the `proxy.istio.io/config` annotation, parsed


@dataclass(frozen=True, kw_only=True)
class EnvoyFilter(Resource):
    """networking.istio.io EnvoyFilter: present, not modelled (MP0121)."""

    kind: str = "EnvoyFilter"
    workload_selector: Mapping[str, str] | None = None


@dataclass(frozen=True, kw_only=True)
class WasmPlugin(Resource):
    """extensions.istio.io WasmPlugin: present, not modelled (MP0121)."""

    kind: str = "WasmPlugin"
    workload_selector: Mapping[str, str] | None = None


@dataclass(frozen=True, kw_only=True)
class ControlPlane(Resource):
    """An istiod Deployment seen in the input: its version (image tag) and revision."""

    kind: str = "Deployment"
    version: str = ""
    revision: str = ""


def _truthy(value: str | None) -> bool | None:
    if value is None:
        return None
    return value.strip().lower() in ("true", "1", "yes")


def _first(a: bool | None, b: bool | None) -> bool | None:
    return a if a is not None else b


MESH_KINDS = (
    "ServiceEntry",
    "Sidecar",
    "DestinationRule",
    "VirtualService",
    "Gateway",
    "AuthorizationPolicy",
    "Service",
    "Namespace",
    "Pod",
    "ProxyConfig",
    "EnvoyFilter",
    "WasmPlugin",
)
