"""The fast path of `diag.model.parse.parse_object` for the kinds a large mesh holds most of.

`parse_plain(doc, origin)` builds a ServiceEntry, Service or Sidecar when every field it reads has
its plain JSON type (str, int, list, dict or absent) and the object uses no part handled only by
the careful parser (a Sidecar egress `port`, an `egressProxy`, ...). For
anything else it returns None and `parse_object` runs its careful path, which converts, checks and
reports exactly as before. On such plain input every check of the careful path passes, and each
value here is computed the way the careful path computes it, so the object returned is equal to
the one the careful path builds, with the same fields in the same order.

Objects are built by `make`: a new instance whose ``__dict__`` receives every field, in field
order — what the dataclass ``__init__`` stores, without its one ``object.__setattr__`` call per
field (frozen dataclasses), which costs most of the time of building 10k small objects.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

from diag.model.resources import (
    EgressListener,
    OutboundTrafficPolicy,
    Port,
    Service,
    ServiceEntry,
    Sidecar,
    WorkloadEndpoint,
    kube_port_protocol,
    normalize_protocol,
)

ISTIO_GROUPS = ("networking.istio.io", "extensions.istio.io", "security.istio.io")
BUILT = (ServiceEntry, Service, Sidecar, Port, WorkloadEndpoint, EgressListener, OutboundTrafficPolicy)
# Field names in order, per class built here (the tests check the dicts below against them).
FIELDS = {cls: tuple(f.name for f in fields(cls)) for cls in BUILT}
for _cls in BUILT:  # `make` skips __init__: nothing may need it
    if "__post_init__" in vars(_cls) or "__slots__" in vars(_cls) or "__init__" not in vars(_cls):
        raise TypeError(f"{_cls.__name__}: parse_plain cannot build it without its __init__")

T = TypeVar("T")
_new = object.__new__
_STR_OR_NONE = frozenset({str, type(None)})
_INT_OR_NONE = frozenset({int, type(None)})
_TARGETS = frozenset({int, str, type(None)})  # a Service targetPort: a number, a port name or absent
# Protocols of the port spellings seen (pure functions of their arguments): at most this many, short.
_CACHE_MAX = 1024
_CACHE_KEY_LENGTH = 64
_protocols: dict[str, str] = {}
_kube_protocols: dict[tuple[int, str, str, str], str] = {}


def make(cls: type[T], values: dict[str, Any]) -> T:
    """An instance of the frozen dataclass `cls` with `values` (every field, in field order)."""
    obj = _new(cls)
    obj.__dict__.update(values)
    return obj


def parse_plain(doc: Any, origin: str) -> ServiceEntry | Service | Sidecar | None:
    """The object for a plain ServiceEntry, Service or Sidecar; None: use the careful path."""
    if type(doc) is not dict:
        return None
    kind = doc.get("kind")
    api = doc.get("apiVersion")
    meta = doc.get("metadata")
    spec = doc.get("spec")
    if type(api) is not str or type(meta) is not dict:
        return None
    if spec is None:
        spec = {}
    elif type(spec) is not dict:
        return None
    head, slash, _ = api.partition("/")
    group = head if slash else ""
    if kind == "Service":
        if group:
            return None
    elif kind not in ("ServiceEntry", "Sidecar") or group not in ISTIO_GROUPS:
        return None
    name = meta.get("name")
    namespace = meta.get("namespace")
    created = meta.get("creationTimestamp")
    if type(name) is not str:
        if name is not None:
            return None
        name = ""
    if type(namespace) is not str:
        if namespace is not None:
            return None
        namespace = ""
    if type(created) is not str:
        if created is not None:
            return None
        created = ""
    labels = meta.get("labels")
    annotations = meta.get("annotations")
    labels = {} if labels is None else _labels(labels)  # (absent is the usual case: no call)
    annotations = {} if annotations is None else _labels(annotations)
    if labels is None or annotations is None:
        return None
    base = {
        "kind": kind, "namespace": namespace or "default", "name": name, "api_version": api,
        "created": created or None, "labels": labels, "annotations": annotations, "origin": origin,
        "raw": doc,
    }  # fmt: skip
    if kind == "ServiceEntry":
        return _service_entry(base, spec, doc.get("status"))
    if kind == "Service":
        return _service(base, spec)
    return _sidecar(base, spec)


def _labels(value: Any) -> dict[str, str] | None:
    """A copy of a str → str mapping (absent: empty); None if not plain."""
    if value is None:
        return {}
    if type(value) is not dict:
        return None
    for key, item in value.items():
        if type(key) is not str or type(item) is not str:
            return None
    return dict(value)


def _strs(value: Any) -> tuple[str, ...] | None:
    """A list of strings as a tuple (absent: empty); None if not plain."""
    if value is None:
        return ()
    if type(value) is not list:
        return None
    for item in value:
        if type(item) is not str:
            return None
    return tuple(value)


def _selector(value: Any) -> dict[str, str] | bool | None:
    """A workload selector's `labels` (absent selector: None); False if not plain."""
    if value is None:
        return None
    if type(value) is not dict:
        return False
    labels = _labels(value.get("labels"))
    return False if labels is None else labels


def _service_entry(base: dict[str, Any], spec: dict[str, Any], status: Any) -> ServiceEntry | None:
    endpoints = spec.get("endpoints")
    endpoints = () if endpoints is None else _endpoints(endpoints)
    if endpoints is None:
        return None
    status_addrs: dict[str, list[str]] = {}
    if status is not None:
        if type(status) is not dict:
            return None
        addresses = status.get("addresses")
        if addresses is not None:
            if type(addresses) is not list:
                return None
            for item in addresses:
                if type(item) is not dict:
                    return None
                value, host = item.get("value"), item.get("host")
                if type(value) not in _STR_OR_NONE or type(host) not in _STR_OR_NONE:
                    return None
                if value:
                    status_addrs.setdefault((host or "").lower(), []).append(value)
    get = spec.get
    ports = _ports(get("ports"))
    hosts = _strs(get("hosts"))
    addresses, export_to, sans = get("addresses"), get("exportTo"), get("subjectAltNames")
    addresses = () if addresses is None else _strs(addresses)  # (absent is usual: no call)
    export_to = () if export_to is None else _strs(export_to)
    sans = () if sans is None else _strs(sans)
    location = _enum(get("location"), "MESH_EXTERNAL")
    resolution = _enum(get("resolution"), "NONE")
    selector = get("workloadSelector")
    selector = None if selector is None else _selector(selector)
    if (ports is None or hosts is None or addresses is None or export_to is None or sans is None
            or location is None or resolution is None or selector is False):  # fmt: skip
        return None
    values = {
        **base, "hosts": hosts, "addresses": addresses, "ports": ports, "location": location,
        "resolution": resolution, "endpoints": endpoints, "export_to": export_to,
        "workload_selector": selector, "subject_alt_names": sans,
        "status_addresses": tuple(a for v in status_addrs.values() for a in v) if status_addrs else (),
        "status_host_addresses": {k: tuple(v) for k, v in status_addrs.items()} if status_addrs else {},
    }  # fmt: skip
    return make(ServiceEntry, values)


def _endpoints(value: Any) -> tuple[WorkloadEndpoint, ...] | None:
    """ServiceEntry `endpoints` (WorkloadEntry specs); None if not plain."""
    if value is None:
        return ()
    if type(value) is not list:
        return None
    out = []
    plain = _STR_OR_NONE
    for item in value:
        if type(item) is not dict:
            return None
        address, account, network = item.get("address"), item.get("serviceAccount"), item.get("network")
        ports, weight = item.get("ports"), item.get("weight")
        labels = _labels(item.get("labels"))
        if (type(address) not in plain or type(account) not in plain or type(network) not in plain
                or type(weight) not in _INT_OR_NONE or labels is None):  # fmt: skip
            return None
        if ports is None:
            ports = {}
        elif type(ports) is not dict:
            return None
        for key, number in ports.items():
            if type(key) is not str or type(number) not in _INT_OR_NONE:
                return None
        endpoint = {"address": address or "", "ports": {k: v or 0 for k, v in ports.items()},
                    "labels": labels, "service_account": account or "", "network": network or "",
                    "weight": weight or 0}  # fmt: skip
        out.append(make(WorkloadEndpoint, endpoint))
    return tuple(out)


def _enum(value: Any, default: str) -> str | None:
    """The careful path's `_enum` for a string or absent value; None if not plain."""
    if value is None:
        return default
    if type(value) is not str:
        return None
    return value.strip().upper() if value else default


def _ports(value: Any) -> tuple[Port, ...] | None:
    """ServiceEntry `ports` (number, protocol, name, targetPort); None if not plain."""
    if value is None:
        return ()
    if type(value) is not list:
        return None
    out = []
    for item in value:
        if type(item) is not dict:
            return None
        number, declared, name = item.get("number"), item.get("protocol"), item.get("name")
        target = item.get("targetPort")
        if (type(number) is not int or (target is not None and type(target) is not int)
                or type(declared) not in _STR_OR_NONE or type(name) not in _STR_OR_NONE):  # fmt: skip
            return None
        declared = declared or ""
        protocol = _protocols.get(declared)
        if protocol is None:
            protocol = normalize_protocol(declared)
            if len(_protocols) < _CACHE_MAX and len(declared) <= _CACHE_KEY_LENGTH:
                _protocols[declared] = protocol
        port = _new(Port)
        port.__dict__.update({"number": number, "protocol": protocol, "name": name or "",
                              "target_port": target, "declared": declared, "app_protocol": ""})  # fmt: skip
        out.append(port)
    return tuple(out)


def _service(base: dict[str, Any], spec: dict[str, Any]) -> Service | None:
    raw_ports = spec.get("ports")
    if raw_ports is None:
        raw_ports = []
    elif type(raw_ports) is not list:
        return None
    ports = []
    for item in raw_ports:
        if type(item) is not dict:
            return None
        number, name, app = item.get("port"), item.get("name"), item.get("appProtocol")
        transport, target = item.get("protocol"), item.get("targetPort")
        if (type(number) is not int or type(name) not in _STR_OR_NONE or type(app) not in _STR_OR_NONE
                or type(transport) not in _STR_OR_NONE or type(target) not in _TARGETS):  # fmt: skip
            return None
        name, app = name or "", app or ""
        transport = "TCP" if transport is None else transport.upper()
        key = (number, name, transport, app)
        protocol = _kube_protocols.get(key)
        if protocol is None:
            protocol = kube_port_protocol(number, name, transport, app or None)
            if len(_kube_protocols) < _CACHE_MAX and len(name) + len(app) <= _CACHE_KEY_LENGTH:
                _kube_protocols[key] = protocol
        ports.append(make(Port, {"number": number, "protocol": protocol, "name": name,
                                 "target_port": target if type(target) is int else None,
                                 "declared": app or name, "app_protocol": app}))  # fmt: skip
    type_ = spec.get("type")
    cluster_ip, external_name = spec.get("clusterIP"), spec.get("externalName")
    cluster_ips = _strs(spec.get("clusterIPs"))
    selector = _labels(spec.get("selector"))
    plain = _STR_OR_NONE
    if (type(type_) not in plain or type(cluster_ip) not in plain or type(external_name) not in plain
            or cluster_ips is None or selector is None):  # fmt: skip
        return None
    base.update(
        type=type_ or "ClusterIP", ports=tuple(ports), cluster_ip=cluster_ip or "", cluster_ips=cluster_ips,
        external_name=external_name or "", selector=selector,
    )  # fmt: skip
    return make(Service, base)


def _sidecar(base: dict[str, Any], spec: dict[str, Any]) -> Sidecar | None:
    raw_egress = spec.get("egress")
    if raw_egress is None:
        raw_egress = []
    elif type(raw_egress) is not list:
        return None
    egress = []
    for item in raw_egress:
        if type(item) is not dict or item.get("port") is not None:
            return None
        hosts = _strs(item.get("hosts"))
        bind = item.get("bind")
        capture = _enum(item.get("captureMode"), "")
        if hosts is None or capture is None or type(bind) not in _STR_OR_NONE:
            return None
        listener = {"hosts": hosts, "port": None, "bind": bind or "", "capture_mode": capture}
        egress.append(make(EgressListener, listener))
    policy = spec.get("outboundTrafficPolicy")
    outbound = None
    if policy is not None:
        if type(policy) is not dict or policy.get("egressProxy") is not None:
            return None
        mode = _enum(policy.get("mode"), "REGISTRY_ONLY")
        if mode is None:
            return None
        outbound = make(OutboundTrafficPolicy, {"mode": mode, "egress_proxy": None})
    ingress = spec.get("ingress")
    selector = _selector(spec.get("workloadSelector"))
    if (ingress is not None and type(ingress) is not list) or selector is False:
        return None
    base.update(
        workload_selector=selector, egress=tuple(egress), outbound_traffic_policy=outbound,
        has_ingress=bool(ingress), has_inbound_pool=spec.get("inboundConnectionPool") is not None,
    )  # fmt: skip
    return make(Sidecar, base)
