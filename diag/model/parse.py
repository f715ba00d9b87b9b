"""Turn one parsed Kubernetes/Istio object (a mapping) into a typed `diag.model.resources` object.

`parse_object(doc, origin)` returns the typed object, `None` for kinds meshprobe ignores, or raises
`ParseError` with a message naming the field. Field types are checked, never trusted: a
`hosts: 5` or `ports: {}` is a problem for that object only (the loader keeps going).

Defaults follow the Istio protos (zero values): SE resolution NONE, location MESH_EXTERNAL;
DR TLS mode DISABLE; Sidecar / mesh outbound mode enum zero = REGISTRY_ONLY when the
`outboundTrafficPolicy` block is present without a mode (istio/api `sidecar.proto`,
`mesh/v1alpha1/config.proto`). One parser per kind lives here, hence the length.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from diag.model.endpoints import DISCOVERY_GROUP, EndpointSlice, SliceError, parse_endpoint_slice
from diag.model.parse_plain import ISTIO_GROUPS, parse_plain
from diag.model.resources import (
    AuthorizationPolicy,
    AuthzCondition,
    AuthzOperation,
    AuthzRule,
    AuthzSource,
    ClientTls,
    ControlPlane,
    DestinationRule,
    EgressListener,
    EgressProxy,
    EnvoyFilter,
    Gateway,
    GatewayServer,
    HttpMatch,
    Namespace,
    OutboundTrafficPolicy,
    Pod,
    Port,
    PortTrafficPolicy,
    ProxyConfigResource,
    ProxySettings,
    Resource,
    RouteDestination,
    RouteRule,
    Service,
    ServiceEntry,
    Sidecar,
    StringMatch,
    Subset,
    TrafficPolicy,
    VirtualService,
    WasmPlugin,
    WorkloadEndpoint,
    kube_port_protocol,
    normalize_protocol,
)

ISTIO_VERSIONS = ("v1", "v1beta1", "v1alpha3", "v1alpha1")


class ParseError(ValueError):
    """A malformed object; the message names the offending field."""


# ---- small typed accessors ------------------------------------------------------------------


def _map(value: Any, where: str) -> Mapping[str, Any]:
    if type(value) is dict:
        return value
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ParseError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if type(value) is list:
        return value
    if value is None:
        return []
    if not isinstance(value, list):
        raise ParseError(f"{where}: expected a list, got {type(value).__name__}")
    return value


_SCALARS = (str, int, float)


def _str(value: Any, where: str, default: str = "") -> str:
    if type(value) is str:
        return value
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, _SCALARS):
        raise ParseError(f"{where}: expected a string, got {type(value).__name__}")
    return str(value)


def _strs(value: Any, where: str) -> tuple[str, ...]:
    items = _list(value, where)
    if all(type(v) is str for v in items):
        return tuple(items)
    return tuple(_str(v, f"{where}[{i}]") for i, v in enumerate(items))


def _int(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ParseError(f"{where}: expected an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise ParseError(f"{where}: expected an integer, got {value!r}"[:200])


def _labels(value: Any, where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in _map(value, where).items():
        out[_str(k, where)] = _str(v, f"{where}.{k}")
    return out


def _enum(value: Any, where: str, default: str) -> str:
    text = _str(value, where, default)
    return text.strip().upper() if text else default


# ---- shared pieces ----------------------------------------------------------------------------


def _selector(value: Any, where: str, key: str = "labels") -> dict[str, str] | None:
    """A workload selector: `labels` (networking WorkloadSelector: SE, Sidecar, EnvoyFilter) or
    `matchLabels` (type.v1beta1.WorkloadSelector: DestinationRule, ProxyConfig, WasmPlugin)."""
    if value is None:
        return None
    return _labels(_map(value, where).get(key), f"{where}.{key}")


def _port(item: Any, where: str) -> Port:
    m = _map(item, where)
    number = _int(m.get("number"), f"{where}.number")
    if number is None:
        raise ParseError(f"{where}.number: missing")
    declared = _str(m.get("protocol"), f"{where}.protocol")
    return Port(
        number=number,
        protocol=normalize_protocol(declared),
        declared=declared,
        name=_str(m.get("name"), f"{where}.name"),
        target_port=_int(m.get("targetPort"), f"{where}.targetPort"),
    )


def _tls(value: Any, where: str) -> ClientTls | None:
    if value is None:
        return None
    m = _map(value, where)
    return ClientTls(
        mode=_enum(m.get("mode"), f"{where}.mode", "DISABLE"),
        sni=_str(m.get("sni"), f"{where}.sni"),
        credential_name=_str(m.get("credentialName"), f"{where}.credentialName"),
        ca_certificates=_str(m.get("caCertificates"), f"{where}.caCertificates"),
        client_certificate=_str(m.get("clientCertificate"), f"{where}.clientCertificate"),
        subject_alt_names=_strs(m.get("subjectAltNames"), f"{where}.subjectAltNames"),
        insecure_skip_verify=bool(m.get("insecureSkipVerify") is True),
    )


def _traffic_policy(value: Any, where: str) -> TrafficPolicy | None:
    if value is None:
        return None
    m = _map(value, where)
    levels = []
    for i, item in enumerate(_list(m.get("portLevelSettings"), f"{where}.portLevelSettings")):
        pm = _map(item, f"{where}.portLevelSettings[{i}]")
        number = _int(_map(pm.get("port"), f"{where}.portLevelSettings[{i}].port").get("number"), where)
        if number is not None:
            levels.append(PortTrafficPolicy(port=number, tls=_tls(pm.get("tls"), f"{where}.tls")))
    pool = _map(m.get("connectionPool"), f"{where}.connectionPool")
    tcp = _map(pool.get("tcp"), f"{where}.connectionPool.tcp")
    return TrafficPolicy(
        tls=_tls(m.get("tls"), f"{where}.tls"),
        port_level=tuple(levels),
        connect_timeout=_str(tcp.get("connectTimeout"), f"{where}.connectTimeout"),
    )


# ---- per kind ---------------------------------------------------------------------------------


def _service_entry(base: dict[str, Any], spec: Mapping[str, Any], status: Mapping[str, Any]) -> ServiceEntry:
    endpoints = []
    for i, item in enumerate(_list(spec.get("endpoints"), "spec.endpoints")):
        m = _map(item, f"spec.endpoints[{i}]")
        ports = {
            _str(k, "ports"): _int(v, f"spec.endpoints[{i}].ports.{k}") or 0
            for k, v in _map(m.get("ports"), f"spec.endpoints[{i}].ports").items()
        }
        endpoints.append(
            WorkloadEndpoint(
                address=_str(m.get("address"), f"spec.endpoints[{i}].address"),
                ports=ports,
                labels=_labels(m.get("labels"), f"spec.endpoints[{i}].labels"),
                service_account=_str(m.get("serviceAccount"), f"spec.endpoints[{i}].serviceAccount"),
                network=_str(m.get("network"), f"spec.endpoints[{i}].network"),
                weight=_int(m.get("weight"), f"spec.endpoints[{i}].weight") or 0,
            )
        )
    status_addrs: dict[str, list[str]] = {}
    for i, item in enumerate(_list(status.get("addresses"), "status.addresses")):
        m = _map(item, f"status.addresses[{i}]")
        value = _str(m.get("value"), f"status.addresses[{i}].value")
        if value:
            status_addrs.setdefault(_str(m.get("host"), "host").lower(), []).append(value)
    return ServiceEntry(
        **base,
        hosts=_strs(spec.get("hosts"), "spec.hosts"),
        addresses=_strs(spec.get("addresses"), "spec.addresses"),
        ports=tuple(
            _port(p, f"spec.ports[{i}]") for i, p in enumerate(_list(spec.get("ports"), "spec.ports"))
        ),
        location=_enum(spec.get("location"), "spec.location", "MESH_EXTERNAL"),
        resolution=_enum(spec.get("resolution"), "spec.resolution", "NONE"),
        endpoints=tuple(endpoints),
        export_to=_strs(spec.get("exportTo"), "spec.exportTo"),
        workload_selector=_selector(spec.get("workloadSelector"), "spec.workloadSelector"),
        subject_alt_names=_strs(spec.get("subjectAltNames"), "spec.subjectAltNames"),
        status_addresses=tuple(a for v in status_addrs.values() for a in v),
        status_host_addresses={k: tuple(v) for k, v in status_addrs.items()},
    )


def outbound_policy(value: Any, where: str) -> OutboundTrafficPolicy | None:
    """An `outboundTrafficPolicy` block (mode enum zero = REGISTRY_ONLY when the block exists)."""
    if value is None:
        return None
    m = _map(value, where)
    proxy = None
    if m.get("egressProxy") is not None:
        ep = _map(m.get("egressProxy"), f"{where}.egressProxy")
        proxy = EgressProxy(
            host=_str(ep.get("host"), f"{where}.egressProxy.host"),
            subset=_str(ep.get("subset"), f"{where}.egressProxy.subset"),
            port=_int(_map(ep.get("port"), f"{where}.egressProxy.port").get("number"), where),
        )
    return OutboundTrafficPolicy(
        mode=_enum(m.get("mode"), f"{where}.mode", "REGISTRY_ONLY"), egress_proxy=proxy
    )


def _sidecar(base: dict[str, Any], spec: Mapping[str, Any]) -> Sidecar:
    egress = []
    for i, item in enumerate(_list(spec.get("egress"), "spec.egress")):
        m = _map(item, f"spec.egress[{i}]")
        port = _port(m["port"], f"spec.egress[{i}].port") if m.get("port") is not None else None
        egress.append(
            EgressListener(
                hosts=_strs(m.get("hosts"), f"spec.egress[{i}].hosts"),
                port=port,
                bind=_str(m.get("bind"), f"spec.egress[{i}].bind"),
                capture_mode=_enum(m.get("captureMode"), f"spec.egress[{i}].captureMode", ""),
            )
        )
    return Sidecar(
        **base,
        workload_selector=_selector(spec.get("workloadSelector"), "spec.workloadSelector"),
        egress=tuple(egress),
        outbound_traffic_policy=outbound_policy(
            spec.get("outboundTrafficPolicy"), "spec.outboundTrafficPolicy"
        ),
        has_ingress=bool(_list(spec.get("ingress"), "spec.ingress")),
        has_inbound_pool=spec.get("inboundConnectionPool") is not None,
    )


def _destination_rule(base: dict[str, Any], spec: Mapping[str, Any]) -> DestinationRule:
    subsets = []
    for i, item in enumerate(_list(spec.get("subsets"), "spec.subsets")):
        m = _map(item, f"spec.subsets[{i}]")
        subsets.append(
            Subset(
                name=_str(m.get("name"), f"spec.subsets[{i}].name"),
                labels=_labels(m.get("labels"), f"spec.subsets[{i}].labels"),
                traffic_policy=_traffic_policy(m.get("trafficPolicy"), f"spec.subsets[{i}].trafficPolicy"),
            )
        )
    return DestinationRule(
        **base,
        host=_str(spec.get("host"), "spec.host"),
        export_to=_strs(spec.get("exportTo"), "spec.exportTo"),
        traffic_policy=_traffic_policy(spec.get("trafficPolicy"), "spec.trafficPolicy"),
        subsets=tuple(subsets),
        workload_selector=_selector(spec.get("workloadSelector"), "spec.workloadSelector", "matchLabels"),
    )


def _route_rules(value: Any, kind: str) -> tuple[RouteRule, ...]:
    rules = []
    for i, item in enumerate(_list(value, f"spec.{kind}")):
        where = f"spec.{kind}[{i}]"
        m = _map(item, where)
        dests = []
        for j, d in enumerate(_list(m.get("route"), f"{where}.route")):
            dm = _map(d, f"{where}.route[{j}]")
            dest = _map(dm.get("destination"), f"{where}.route[{j}].destination")
            dests.append(
                RouteDestination(
                    host=_str(dest.get("host"), f"{where}.route[{j}].destination.host"),
                    subset=_str(dest.get("subset"), "subset"),
                    port=_int(_map(dest.get("port"), "port").get("number"), "port.number"),
                    weight=_int(dm.get("weight"), "weight") or 0,
                )
            )
        matches = tuple(_map(x, f"{where}.match") for x in _list(m.get("match"), f"{where}.match"))
        http = kind == "http"
        redirect = _map(m.get("redirect"), f"{where}.redirect") if http else {}
        direct = _map(m.get("directResponse"), f"{where}.directResponse") if http else {}
        delegate = _map(m.get("delegate"), f"{where}.delegate") if http else {}
        rules.append(
            RouteRule(
                kind=kind,
                name=_str(m.get("name"), f"{where}.name"),
                match=matches,
                destinations=tuple(dests),
                has_direct_response=m.get("directResponse") is not None,
                has_redirect=m.get("redirect") is not None,
                http_match=tuple(
                    _http_match(x, f"{where}.match[{j}]") for j, x in enumerate(matches)
                ) if http else (),
                redirect_code=(
                    _int(redirect.get("redirectCode"), f"{where}.redirect.redirectCode") or 0
                    if m.get("redirect") is not None
                    else None
                ),
                redirect=redirect,
                direct_status=(
                    _int(direct.get("status"), f"{where}.directResponse.status")
                    if m.get("directResponse") is not None
                    else None
                ),
                delegate=(
                    (
                        _str(delegate.get("namespace"), f"{where}.delegate.namespace"),
                        _str(delegate.get("name"), f"{where}.delegate.name"),
                    )
                    if m.get("delegate") is not None
                    else None
                ),
            )
        )
    return tuple(rules)


def _string_match(value: Any, where: str) -> StringMatch:
    """`StringMatch`: exact/prefix/regex; no value is a presence check."""
    m = _map(value, where)
    for kind in ("exact", "prefix", "regex"):
        if kind in m:
            return StringMatch(kind=kind, value=_str(m[kind], f"{where}.{kind}"))
    return StringMatch(kind="present")


def _named_matches(value: Any, where: str, lower: bool) -> tuple[tuple[str, StringMatch], ...]:
    out = []
    for k, v in _map(value, where).items():
        name = _str(k, where)
        out.append((name.lower() if lower else name, _string_match(v, f"{where}.{name}")))
    return tuple(sorted(out, key=lambda item: item[0]))


def _optional_match(value: Any, where: str) -> StringMatch | None:
    return None if value is None else _string_match(value, where)


def _http_match(m: Mapping[str, Any], where: str) -> HttpMatch:
    """One `HTTPMatchRequest` (`networking/v1alpha3/virtual_service.proto`)."""
    return HttpMatch(
        name=_str(m.get("name"), f"{where}.name"),
        uri=_optional_match(m.get("uri"), f"{where}.uri"),
        scheme=_optional_match(m.get("scheme"), f"{where}.scheme"),
        method=_optional_match(m.get("method"), f"{where}.method"),
        authority=_optional_match(m.get("authority"), f"{where}.authority"),
        headers=_named_matches(m.get("headers"), f"{where}.headers", lower=True),
        without_headers=_named_matches(m.get("withoutHeaders"), f"{where}.withoutHeaders", lower=True),
        query_params=_named_matches(m.get("queryParams"), f"{where}.queryParams", lower=False),
        ignore_uri_case=bool(m.get("ignoreUriCase")),
        port=_int(m.get("port"), f"{where}.port") or None,
        source_labels=_labels(m.get("sourceLabels"), f"{where}.sourceLabels"),
        source_namespace=_str(m.get("sourceNamespace"), f"{where}.sourceNamespace"),
        gateways=_strs(m.get("gateways"), f"{where}.gateways"),
    )


def _virtual_service(base: dict[str, Any], spec: Mapping[str, Any]) -> VirtualService:
    return VirtualService(
        **base,
        hosts=_strs(spec.get("hosts"), "spec.hosts"),
        gateways=_strs(spec.get("gateways"), "spec.gateways"),
        export_to=_strs(spec.get("exportTo"), "spec.exportTo"),
        http=_route_rules(spec.get("http"), "http"),
        tls=_route_rules(spec.get("tls"), "tls"),
        tcp=_route_rules(spec.get("tcp"), "tcp"),
    )


def _gateway(base: dict[str, Any], spec: Mapping[str, Any]) -> Gateway:
    servers = []
    for i, item in enumerate(_list(spec.get("servers"), "spec.servers")):
        m = _map(item, f"spec.servers[{i}]")
        tls = _map(m.get("tls"), f"spec.servers[{i}].tls")
        servers.append(
            GatewayServer(
                port=_port(m.get("port"), f"spec.servers[{i}].port"),
                hosts=_strs(m.get("hosts"), f"spec.servers[{i}].hosts"),
                # ServerTLSSettings.mode: the enum's zero value is PASSTHROUGH
                tls_mode=_enum(tls.get("mode"), "tls.mode", "" if m.get("tls") is None else "PASSTHROUGH"),
                name=_str(m.get("name"), f"spec.servers[{i}].name"),
            )
        )
    return Gateway(**base, selector=_labels(spec.get("selector"), "spec.selector"), servers=tuple(servers))


_SOURCE_MODELLED = frozenset({"principals", "notPrincipals", "namespaces", "notNamespaces"})


def _authz_rule(item: Any, where: str) -> AuthzRule:
    """One `rules[]` item (security/v1beta1/authorization_policy.proto `Rule`)."""
    m = _map(item, where)
    sources, operations, conditions = [], [], []
    for i, f in enumerate(_list(m.get("from"), f"{where}.from")):
        src = _map(_map(f, f"{where}.from[{i}]").get("source"), f"{where}.from[{i}].source")
        w = f"{where}.from[{i}].source"
        sources.append(
            AuthzSource(
                principals=_strs(src.get("principals"), f"{w}.principals"),
                not_principals=_strs(src.get("notPrincipals"), f"{w}.notPrincipals"),
                namespaces=_strs(src.get("namespaces"), f"{w}.namespaces"),
                not_namespaces=_strs(src.get("notNamespaces"), f"{w}.notNamespaces"),
                other=tuple(sorted(str(k) for k in src if k not in _SOURCE_MODELLED)),
            )
        )
    for i, t in enumerate(_list(m.get("to"), f"{where}.to")):
        op = _map(_map(t, f"{where}.to[{i}]").get("operation"), f"{where}.to[{i}].operation")
        w = f"{where}.to[{i}].operation"
        operations.append(
            AuthzOperation(
                **{
                    field: _strs(op.get(key), f"{w}.{key}")
                    for field, key in (
                        ("hosts", "hosts"), ("not_hosts", "notHosts"), ("ports", "ports"),
                        ("not_ports", "notPorts"), ("methods", "methods"), ("not_methods", "notMethods"),
                        ("paths", "paths"), ("not_paths", "notPaths"),
                    )
                }
            )
        )
    for i, c in enumerate(_list(m.get("when"), f"{where}.when")):
        cm = _map(c, f"{where}.when[{i}]")
        conditions.append(
            AuthzCondition(
                key=_str(cm.get("key"), f"{where}.when[{i}].key"),
                values=_strs(cm.get("values"), f"{where}.when[{i}].values"),
                not_values=_strs(cm.get("notValues"), f"{where}.when[{i}].notValues"),
            )
        )
    return AuthzRule(sources=tuple(sources), operations=tuple(operations), conditions=tuple(conditions))


def _authorization_policy(base: dict[str, Any], spec: Mapping[str, Any]) -> AuthorizationPolicy:
    return AuthorizationPolicy(
        **base,
        selector=_selector(spec.get("selector"), "spec.selector", "matchLabels"),
        action=_enum(spec.get("action"), "spec.action", "ALLOW"),
        rules=tuple(
            _authz_rule(r, f"spec.rules[{i}]") for i, r in enumerate(_list(spec.get("rules"), "spec.rules"))
        ),
        has_target_ref=spec.get("targetRef") is not None or bool(spec.get("targetRefs")),
    )


def _service(base: dict[str, Any], spec: Mapping[str, Any]) -> Service:
    ports = []
    for i, item in enumerate(_list(spec.get("ports"), "spec.ports")):
        m = _map(item, f"spec.ports[{i}]")
        number = _int(m.get("port"), f"spec.ports[{i}].port")
        if number is None:
            raise ParseError(f"spec.ports[{i}].port: missing")
        name = _str(m.get("name"), f"spec.ports[{i}].name")
        app = _str(m.get("appProtocol"), f"spec.ports[{i}].appProtocol")
        transport = _str(m.get("protocol"), f"spec.ports[{i}].protocol", "TCP").upper()
        target = m.get("targetPort")
        ports.append(
            Port(
                number=number,
                name=name,
                app_protocol=app,
                declared=app or name,
                protocol=kube_port_protocol(number, name, transport, app or None),
                target_port=target if isinstance(target, int) and not isinstance(target, bool) else None,
            )
        )
    return Service(
        **base,
        type=_str(spec.get("type"), "spec.type", "ClusterIP") or "ClusterIP",
        ports=tuple(ports),
        cluster_ip=_str(spec.get("clusterIP"), "spec.clusterIP"),
        cluster_ips=_strs(spec.get("clusterIPs"), "spec.clusterIPs"),
        external_name=_str(spec.get("externalName"), "spec.externalName"),
        selector=_labels(spec.get("selector"), "spec.selector"),
    )


def proxy_settings(value: Any, where: str) -> ProxySettings:
    """A mesh ProxyConfig mapping (`defaultConfig`, or the parsed `proxy.istio.io/config`)."""
    m = _map(value, where)
    headers = _map(m.get("proxyHeaders"), f"{where}.proxyHeaders")
    debug = _map(headers.get("envoyDebugHeaders"), f"{where}.proxyHeaders.envoyDebugHeaders")
    hold = m.get("holdApplicationUntilProxyStarts")
    disabled = debug.get("disabled")
    return ProxySettings(
        proxy_metadata=_labels(m.get("proxyMetadata"), f"{where}.proxyMetadata"),
        hold_application_until_proxy_starts=hold if isinstance(hold, bool) else None,
        debug_headers_disabled=disabled if isinstance(disabled, bool) else None,
    )


def _pod(base: dict[str, Any], spec: Mapping[str, Any]) -> Pod:
    containers = [_map(c, "spec.containers[]") for c in _list(spec.get("containers"), "spec.containers")]
    inits = [
        _map(c, "spec.initContainers[]") for c in _list(spec.get("initContainers"), "spec.initContainers")
    ]
    annotations: Mapping[str, str] = base["annotations"]
    settings = None
    text = annotations.get("proxy.istio.io/config")
    if text:
        import yaml  # only Pods with a proxy.istio.io/config annotation need it

        try:
            settings = proxy_settings(yaml.safe_load(text), "proxy.istio.io/config")
        except yaml.YAMLError as exc:
            raise ParseError(
                f"annotation proxy.istio.io/config: not YAML ({exc.__class__.__name__})"
            ) from None
    return Pod(
        **base,
        service_account=_str(spec.get("serviceAccountName"), "spec.serviceAccountName"),
        host_network=spec.get("hostNetwork") is True,
        has_sidecar=any(c.get("name") == "istio-proxy" for c in (*containers, *inits)),
        proxy_config=settings,
    )


def _control_plane(base: dict[str, Any], spec: Mapping[str, Any]) -> ControlPlane | None:
    template = _map(_map(spec.get("template"), "spec.template").get("spec"), "spec.template.spec")
    for c in _list(template.get("containers"), "containers"):
        image = _str(_map(c, "container").get("image"), "image")
        if "pilot" in image or "istiod" in image:
            tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
            return ControlPlane(**base, version=tag, revision=base["labels"].get("istio.io/rev", ""))
    return None


SPEC_PARSERS: dict[str, Callable[[dict[str, Any], Mapping[str, Any]], Resource | None]] = {
    "Sidecar": _sidecar,
    "DestinationRule": _destination_rule,
    "VirtualService": _virtual_service,
    "Gateway": _gateway,
    "AuthorizationPolicy": _authorization_policy,
    "Service": _service,
    "Pod": _pod,
}


def parse_object(doc: Mapping[str, Any], origin: str) -> Resource | None:
    """The typed object for `doc`, None for an ignored kind; raises ParseError when malformed."""
    # Plain ServiceEntries, Services and Sidecars (most of a large mesh) take the fast path, which
    # builds the object the code below would build; it answers None for anything else.
    plain = parse_plain(doc, origin)
    if plain is not None:
        return plain
    kind = _str(doc.get("kind"), "kind")
    api = _str(doc.get("apiVersion"), "apiVersion")
    meta = _map(doc.get("metadata"), "metadata")
    spec = _map(doc.get("spec"), "spec")
    base: dict[str, Any] = {
        "name": _str(meta.get("name"), "metadata.name"),
        "namespace": _str(meta.get("namespace"), "metadata.namespace"),
        "api_version": api,
        "created": _str(meta.get("creationTimestamp"), "metadata.creationTimestamp") or None,
        "labels": _labels(meta.get("labels"), "metadata.labels"),
        "annotations": _labels(meta.get("annotations"), "metadata.annotations"),
        "origin": origin,
        "raw": doc,
    }
    group = api.split("/", 1)[0] if "/" in api else ""
    if kind == "Namespace":
        base["namespace"] = ""
        return Namespace(**base)
    if kind == "Deployment":
        return _control_plane(base, spec)
    if kind == "EndpointSlice" and group == DISCOVERY_GROUP:
        base["namespace"] = base["namespace"] or "default"
        return _endpoint_slice(base, doc)
    if kind in ("Service", "Pod"):
        if group:
            return None
        base["namespace"] = base["namespace"] or "default"
        return SPEC_PARSERS[kind](base, spec)
    if group not in ISTIO_GROUPS:
        return None
    base["namespace"] = base["namespace"] or "default"
    if kind == "ServiceEntry":
        return _service_entry(base, spec, _map(doc.get("status"), "status"))
    if kind in SPEC_PARSERS:
        return SPEC_PARSERS[kind](base, spec)
    if kind in ("EnvoyFilter", "WasmPlugin"):
        selector = _selector(spec.get("workloadSelector"), "spec.workloadSelector")
        if kind == "WasmPlugin":
            selector = _selector(spec.get("selector"), "spec.selector", "matchLabels")
            return WasmPlugin(**base, workload_selector=selector)
        return EnvoyFilter(**base, workload_selector=selector)
    if kind == "ProxyConfig":
        env = _labels(spec.get("environmentVariables"), "spec.environmentVariables")
        return ProxyConfigResource(
            **base, selector=_selector(spec.get("selector"), "spec.selector", "matchLabels"), environment=env
        )
    return None


def _endpoint_slice(base: dict[str, Any], doc: Mapping[str, Any]) -> EndpointSlice:
    try:
        return parse_endpoint_slice(base, doc)
    except SliceError as exc:
        raise ParseError(str(exc)) from None


def short_json(value: Any) -> str:
    """A compact rendering for messages (never more than 80 characters)."""
    try:
        text = json.dumps(value, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
