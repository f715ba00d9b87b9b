"""The generator's own small typed model of the raw objects it reads.

Parsed from ``kubectl get -o yaml``-shaped dicts: ServiceEntry, Kubernetes Service, Sidecar,
DestinationRule and Namespace (every served API version of the Istio kinds). Parsing is lenient:
a malformed object becomes a :class:`ParseProblem`, never an exception. (Longer than most modules:
one dataclass and one parser per kind, kept side by side; VirtualService and EndpointSlice live in
``vsparse.py`` and ``endpoints.py``, the ``metadata`` both share in ``meta.py``.) Kept separate from
``diag/model/resources.py`` on purpose (the lab is an independent check, docs/vectors.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lab.istiod.endpoints import EndpointSlice, parse_endpoint_slice
from lab.istiod.meta import ObjectMeta, parse_meta, strs
from lab.istiod.vsparse import VirtualService, parse_virtual_service

ISTIO_GROUPS = ("networking.istio.io",)


@dataclass(frozen=True)
class SEPort:
    number: int
    protocol: str  # upper-case Istio protocol name, "" when unset
    name: str
    target_port: int | None = None


@dataclass(frozen=True)
class SEEndpoint:
    address: str
    ports: Mapping[str, int] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    service_account: str = ""


@dataclass(frozen=True)
class ServiceEntry:
    meta: ObjectMeta
    hosts: tuple[str, ...]
    addresses: tuple[str, ...]
    ports: tuple[SEPort, ...]
    location: str  # MESH_EXTERNAL | MESH_INTERNAL
    resolution: str  # NONE | STATIC | DNS | DNS_ROUND_ROBIN
    endpoints: tuple[SEEndpoint, ...]
    export_to: tuple[str, ...]
    workload_selector: bool = False
    status_addresses: tuple[tuple[str, str], ...] = ()  # (host, address) from status.addresses
    subject_alt_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class KubePort:
    port: int
    name: str
    protocol: str  # TCP | UDP | SCTP
    app_protocol: str
    target_port: int | None


@dataclass(frozen=True)
class KubeService:
    meta: ObjectMeta
    type: str  # ClusterIP | NodePort | LoadBalancer | ExternalName
    cluster_ips: tuple[str, ...]  # empty or ("None",) for headless
    external_name: str
    ports: tuple[KubePort, ...]

    @property
    def headless(self) -> bool:
        return self.type != "ExternalName" and bool(self.cluster_ips) and self.cluster_ips[0] == "None"


@dataclass(frozen=True)
class SidecarEgress:
    hosts: tuple[str, ...]  # "ns/host" entries
    port: int | None = None
    bind: str = ""
    capture_mode: str = ""
    port_protocol: str = ""
    port_name: str = ""


@dataclass(frozen=True)
class Sidecar:
    meta: ObjectMeta
    selector: Mapping[str, str] | None  # None: no workloadSelector
    egress: tuple[SidecarEgress, ...]
    outbound_mode: str  # "" when unset
    egress_proxy_host: str
    egress_proxy_port: int | None


@dataclass(frozen=True)
class TlsSettings:
    mode: str  # DISABLE | SIMPLE | MUTUAL | ISTIO_MUTUAL
    sni: str = ""
    ca_certificates: str = ""
    client_certificate: str = ""
    private_key: str = ""
    credential_name: str = ""
    subject_alt_names: tuple[str, ...] = ()
    insecure_skip_verify: bool = False


SubsetTls = tuple[TlsSettings | None, Mapping[int, TlsSettings]]


@dataclass(frozen=True)
class DestinationRule:
    meta: ObjectMeta
    host: str
    export_to: tuple[str, ...]
    tls: TlsSettings | None
    port_tls: Mapping[int, TlsSettings]
    connect_timeout_s: float | None
    workload_selector: bool = False
    subsets: tuple[tuple[str, Mapping[str, str]], ...] = ()
    # subset name -> (its trafficPolicy.tls, its portLevelSettings TLS by port)
    subset_tls: Mapping[str, SubsetTls] = field(default_factory=dict)


@dataclass(frozen=True)
class Namespace:
    meta: ObjectMeta


@dataclass(frozen=True)
class ParseProblem:
    ref: str
    message: str


@dataclass(frozen=True)
class Objects:
    """Every object the generator understood, by kind, plus what it could not parse or ignored."""

    service_entries: tuple[ServiceEntry, ...] = ()
    services: tuple[KubeService, ...] = ()
    sidecars: tuple[Sidecar, ...] = ()
    destination_rules: tuple[DestinationRule, ...] = ()
    virtual_services: tuple[VirtualService, ...] = ()
    endpoint_slices: tuple[EndpointSlice, ...] = ()
    namespaces: tuple[Namespace, ...] = ()
    problems: tuple[ParseProblem, ...] = ()
    ignored_kinds: tuple[str, ...] = ()


def parse_duration_s(value: Any) -> float | None:
    """``"10s"``, ``"1.5s"``, ``"250ms"``, ``"1m"`` → seconds (None when absent or unreadable)."""
    if value is None:
        return None
    text = str(value).strip()
    for suffix, scale in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if text.endswith(suffix):
            try:
                return float(text[: -len(suffix)]) * scale
            except ValueError:
                return None
    return None


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None and str(value).isdigit() else None
    except (TypeError, ValueError):
        return None


def parse_service_entry(obj: Mapping[str, Any]) -> ServiceEntry:
    spec = obj.get("spec") or {}
    ports = tuple(
        SEPort(
            number=int(p["number"]),
            protocol=str(p.get("protocol") or "").upper(),
            name=str(p.get("name") or ""),
            target_port=_int_or_none(p.get("targetPort")),
        )
        for p in spec.get("ports") or ()
    )
    endpoints = tuple(
        SEEndpoint(
            address=str(e.get("address") or ""),
            ports={str(k): int(v) for k, v in (e.get("ports") or {}).items()},
            labels={str(k): str(v) for k, v in (e.get("labels") or {}).items()},
            service_account=str(e.get("serviceAccount") or ""),
        )
        for e in spec.get("endpoints") or ()
    )
    return ServiceEntry(
        meta=parse_meta(obj, "ServiceEntry"),
        hosts=strs(spec.get("hosts")),
        addresses=strs(spec.get("addresses")),
        ports=ports,
        location=str(spec.get("location") or "MESH_EXTERNAL"),
        resolution=str(spec.get("resolution") or "NONE"),
        endpoints=endpoints,
        export_to=strs(spec.get("exportTo")),
        workload_selector=bool(spec.get("workloadSelector")),
        status_addresses=tuple(
            (str(a.get("host") or ""), str(a.get("value") or ""))
            for a in ((obj.get("status") or {}).get("addresses") or ())
        ),
        subject_alt_names=strs(spec.get("subjectAltNames")),
    )


def parse_service(obj: Mapping[str, Any]) -> KubeService:
    spec = obj.get("spec") or {}
    ips = strs(spec.get("clusterIPs")) or strs(spec.get("clusterIP"))
    ports = tuple(
        KubePort(
            port=int(p["port"]),
            name=str(p.get("name") or ""),
            protocol=str(p.get("protocol") or "TCP").upper(),
            app_protocol=str(p.get("appProtocol") or ""),
            target_port=_int_or_none(p.get("targetPort")),
        )
        for p in spec.get("ports") or ()
    )
    return KubeService(
        meta=parse_meta(obj, "Service"),
        type=str(spec.get("type") or "ClusterIP"),
        cluster_ips=ips,
        external_name=str(spec.get("externalName") or ""),
        ports=ports,
    )


def parse_sidecar(obj: Mapping[str, Any]) -> Sidecar:
    spec = obj.get("spec") or {}
    selector = spec.get("workloadSelector")
    labels = None if selector is None else {str(k): str(v) for k, v in (selector.get("labels") or {}).items()}
    egress = tuple(
        SidecarEgress(
            hosts=strs(e.get("hosts")),
            port=_int_or_none((e.get("port") or {}).get("number")),
            port_protocol=str((e.get("port") or {}).get("protocol") or ""),
            port_name=str((e.get("port") or {}).get("name") or ""),
            bind=str(e.get("bind") or ""),
            capture_mode=str(e.get("captureMode") or ""),
        )
        for e in spec.get("egress") or ()
    )
    otp = spec.get("outboundTrafficPolicy") or {}
    proxy = otp.get("egressProxy") or {}
    return Sidecar(
        meta=parse_meta(obj, "Sidecar"),
        selector=labels,
        egress=egress,
        outbound_mode=str(otp.get("mode") or ""),
        egress_proxy_host=str(proxy.get("host") or ""),
        egress_proxy_port=_int_or_none((proxy.get("port") or {}).get("number")),
    )


def _tls(value: Mapping[str, Any] | None) -> TlsSettings | None:
    if not value:
        return None
    return TlsSettings(
        mode=str(value.get("mode") or "DISABLE"),
        sni=str(value.get("sni") or ""),
        ca_certificates=str(value.get("caCertificates") or ""),
        client_certificate=str(value.get("clientCertificate") or ""),
        private_key=str(value.get("privateKey") or ""),
        credential_name=str(value.get("credentialName") or ""),
        subject_alt_names=strs(value.get("subjectAltNames")),
        insecure_skip_verify=bool(value.get("insecureSkipVerify")),
    )


def _port_tls(policy: Mapping[str, Any]) -> dict[int, TlsSettings]:
    port_tls: dict[int, TlsSettings] = {}
    for pls in policy.get("portLevelSettings") or ():
        number = _int_or_none((pls.get("port") or {}).get("number"))
        tls = _tls(pls.get("tls"))
        if number is not None and tls is not None:
            port_tls[number] = tls
    return port_tls


def parse_destination_rule(obj: Mapping[str, Any]) -> DestinationRule:
    spec = obj.get("spec") or {}
    policy = spec.get("trafficPolicy") or {}
    port_tls = _port_tls(policy)
    subset_tls = {
        str(s.get("name") or ""): (_tls(sp.get("tls")), _port_tls(sp))
        for s in spec.get("subsets") or ()
        if (sp := s.get("trafficPolicy") or {})
    }
    tcp_pool = (policy.get("connectionPool") or {}).get("tcp") or {}
    return DestinationRule(
        meta=parse_meta(obj, "DestinationRule"),
        host=str(spec.get("host") or ""),
        export_to=strs(spec.get("exportTo")),
        tls=_tls(policy.get("tls")),
        port_tls=port_tls,
        connect_timeout_s=parse_duration_s(tcp_pool.get("connectTimeout")),
        workload_selector=bool(spec.get("workloadSelector")),
        subsets=tuple(
            (str(s.get("name") or ""), {str(k): str(v) for k, v in (s.get("labels") or {}).items()})
            for s in spec.get("subsets") or ()
        ),
        subset_tls=subset_tls,
    )


_PARSERS: dict[str, Any] = {
    "ServiceEntry": parse_service_entry,
    "Service": parse_service,
    "Sidecar": parse_sidecar,
    "DestinationRule": parse_destination_rule,
    "VirtualService": parse_virtual_service,
    "EndpointSlice": parse_endpoint_slice,
}


def parse_objects(raw: Sequence[Mapping[str, Any]]) -> Objects:
    """Parse every object; ``kind: List`` is flattened. Unknown kinds are recorded, not parsed."""
    buckets: dict[str, list[Any]] = {k: [] for k in (*_PARSERS, "Namespace")}
    problems: list[ParseProblem] = []
    ignored: set[str] = set()
    for obj in _flatten(raw):
        kind = str(obj.get("kind") or "")
        api = str(obj.get("apiVersion") or "")
        if kind == "Namespace":
            buckets["Namespace"].append(Namespace(meta=parse_meta(obj, "Namespace")))
            continue
        group = api.split("/")[0]
        if kind == "EndpointSlice" and group == "discovery.k8s.io":
            pass
        elif kind not in _PARSERS or (kind != "Service" and group not in ISTIO_GROUPS):
            if kind:
                ignored.add(kind)
            continue
        if kind == "Service" and api not in ("v1", ""):
            ignored.add(f"{kind} ({api})")
            continue
        try:
            buckets[kind].append(_PARSERS[kind](obj))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            problems.append(ParseProblem(ref=parse_meta(obj, kind).ref, message=f"unreadable: {exc!r}"))
    return Objects(
        service_entries=tuple(buckets["ServiceEntry"]),
        services=tuple(buckets["Service"]),
        sidecars=tuple(buckets["Sidecar"]),
        destination_rules=tuple(buckets["DestinationRule"]),
        virtual_services=tuple(buckets["VirtualService"]),
        endpoint_slices=tuple(buckets["EndpointSlice"]),
        namespaces=tuple(buckets["Namespace"]),
        problems=tuple(problems),
        ignored_kinds=tuple(sorted(ignored)),
    )


def _flatten(raw: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    out: list[Mapping[str, Any]] = []
    for obj in raw:
        if not isinstance(obj, Mapping):
            continue
        if obj.get("kind") == "List":
            out.extend(_flatten(obj.get("items") or []))
        else:
            out.append(obj)
    return out
