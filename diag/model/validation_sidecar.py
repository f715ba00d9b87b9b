"""Istio's admission checks for a Sidecar (`ValidateSidecar`), used by `diag.model.validation_rules`.

Re-implemented from istio/istio `pkg/config/validation/validation.go` (`ValidateSidecar`,
`validateSidecarEgressPortBindAndCaptureMode`, `validateSidecarIngressPortAndBind`,
`validateSidecarOutboundTrafficPolicy`, `validateConnectionPool`, `ValidateAlphaWorkloadSelector`,
`ValidateUnixAddress`) and `pkg/config/validation/agent/validation.go`
(`ValidateNamespaceSlashWildcardHostname`, `ValidatePort`, `ValidateIPAddress`), read at 86c9f01f.

The parts meshprobe's model does not keep (ingress listeners, connection pools, server TLS) are
read from the object as written (`Sidecar.raw`), never trusting their types: a field of the wrong
shape is a finding, not an exception.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from typing import Any

from diag.model.resources import KNOWN_PROTOCOLS, TLS_FAMILY, Sidecar

Issue = tuple[str, str, str]  # (level, field, message)

LOOPBACK_OR_ANY = ("", "127.0.0.1", "0.0.0.0", "::1", "::")
FORBIDDEN_INGRESS_TLS = (
    ("subjectAltNames", "sidecar: subjectAltNames is not supported in ingress tls"),
    ("httpsRedirect", "sidecar: httpsRedirect is not supported"),
    ("credentialName", "sidecar: credentialName is not currently supported"),
    ("credentialNames", "sidecar: credentialNames is not currently supported"),
    ("tlsCertificates", "sidecar: tls_certificates is not currently supported"),
)
POOL_HTTP_COUNTS = ("http1MaxPendingRequests", "http2MaxRequests", "maxRequestsPerConnection", "maxRetries")


def sidecar_issues(sc: Sidecar) -> Iterator[Issue]:
    """ValidateSidecar (workload selector, ingress and egress listeners, outboundTrafficPolicy)."""
    from diag.model.validation_rules import selector_issues

    raw_spec = sc.raw.get("spec") if isinstance(sc.raw, Mapping) else None
    spec: Mapping[str, Any] = raw_spec if isinstance(raw_spec, Mapping) else {}
    yield from selector_issues(sc.workload_selector, "spec.workloadSelector")
    if sc.workload_selector is not None and not sc.workload_selector:
        yield "warning", "spec.workloadSelector", "workload selector specified without labels"
    empty = not sc.egress and not sc.has_ingress and not sc.has_inbound_pool
    if empty and sc.outbound_traffic_policy is None:
        yield "error", "spec", "sidecar: empty configuration provided"
        return
    yield from _ingress_issues(_items(spec.get("ingress")))
    if "inboundConnectionPool" in spec and spec["inboundConnectionPool"] is not None:
        yield from _pool_issues(spec["inboundConnectionPool"], "spec.inboundConnectionPool")
    yield from _egress_issues(sc, _items(spec.get("egress")))
    yield from _policy_issues(sc)


def _items(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else []


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _port_issues(port: Mapping[str, Any], where: str, *, unix: bool = False) -> Iterator[Issue]:
    """The name (optional, a DNS-1123 label), protocol (known) and number (1–65535) of a port."""
    from diag.model.validation_rules import is_label

    name = port.get("name")
    if isinstance(name, str) and name and not is_label(name):
        yield "error", where, f"invalid port name: {name}"
    protocol = port.get("protocol")
    if isinstance(protocol, str) and protocol and protocol.upper() not in KNOWN_PROTOCOLS:
        yield "error", where, f"unsupported protocol: {protocol}"
    number = _int(port.get("number")) or 0
    if not unix and not 1 <= number <= 65535:
        yield "error", where, f"port number {number} must be in the range 1..65535"
    if (_int(port.get("targetPort")) or 0) > 0:
        yield "error", where, "targetPort has no impact on Sidecars"


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _ingress_issues(items: list[Any]) -> Iterator[Issue]:
    numbers: set[int] = set()
    for i, item in enumerate(items):
        where = f"spec.ingress[{i}]"
        if not isinstance(item, Mapping):
            yield "error", where, "sidecar: ingress may not be null"
            continue
        port = item.get("port")
        if not isinstance(port, Mapping):
            yield "error", where, "sidecar: port is required for ingress listeners"
            continue
        yield from _port_issues(port, f"{where}.port")
        bind = item.get("bind")
        if isinstance(bind, str) and bind and not _is_ip(bind):
            yield "error", f"{where}.bind", f"{bind} is not a valid IP"
        number = _int(port.get("number")) or 0
        if number in numbers:
            yield "error", where, "sidecar: ports on IP bound listeners must be unique"
        numbers.add(number)
        endpoint = item.get("defaultEndpoint")
        if isinstance(endpoint, str) and endpoint:
            yield from _default_endpoint_issues(endpoint, f"{where}.defaultEndpoint")
        tls = item.get("tls")
        if isinstance(tls, Mapping):
            yield from _ingress_tls_issues(tls, port, f"{where}.tls")
        pool = item.get("connectionPool")
        if pool is not None:
            yield from _pool_issues(pool, f"{where}.connectionPool")


def _default_endpoint_issues(endpoint: str, where: str) -> Iterator[Issue]:
    """127.0.0.1:port, 0.0.0.0:port, [::1]:port, [::]:port, :port or unix://path."""
    from diag.model.validation_rules import unix_address_error

    if endpoint.startswith("unix://"):
        err = unix_address_error(endpoint[len("unix://") :])
        if err:
            yield "error", where, err
        return
    host, sep, port = endpoint.rpartition(":")
    if not sep or (":" in host and not (host.startswith("[") and host.endswith("]"))):
        yield "error", where, f"address {endpoint}: missing port in address"
        return
    host = host[1:-1] if host.startswith("[") else host
    if host not in LOOPBACK_OR_ANY:
        yield (
            "error",
            where,
            "sidecar: defaultEndpoint must be of form 127.0.0.1:<port>,0.0.0.0:<port>,[::1]:port,"
            "[::]:port,unix://filepath or unset",
        )
    if not port.isdigit():
        yield "error", where, f"sidecar: defaultEndpoint port ({port}) is not a number"
    elif not 1 <= int(port) <= 65535:
        yield "error", where, f"port number {port} must be in the range 1..65535"


def _ingress_tls_issues(tls: Mapping[str, Any], port: Mapping[str, Any], where: str) -> Iterator[Issue]:
    for key, message in FORBIDDEN_INGRESS_TLS:
        if tls.get(key):
            yield "error", where, message
    mode = str(tls.get("mode") or "").upper()
    if mode in ("ISTIO_MUTUAL", "AUTO_PASSTHROUGH"):
        yield "error", where, f"configuration is invalid: cannot set mode to {mode} in sidecar ingress tls"
    protocol = str(port.get("protocol") or "").upper()
    if protocol not in TLS_FAMILY:
        yield "error", where, "server cannot have TLS settings for non HTTPS/TLS ports"


def _pool_issues(pool: Any, where: str) -> Iterator[Issue]:
    """validateConnectionPool: some `http` or `tcp` setting, counts not negative."""
    if not isinstance(pool, Mapping) or (pool.get("http") is None and pool.get("tcp") is None):
        yield "error", where, "connection pool must have at least one field"
        return
    http = pool.get("http")
    if isinstance(http, Mapping):
        for key in POOL_HTTP_COUNTS:
            value = _int(http.get(key))
            if value is not None and value < 0:
                yield "error", f"{where}.http.{key}", f"{key} must be non-negative"
    tcp = pool.get("tcp")
    if isinstance(tcp, Mapping):
        value = _int(tcp.get("maxConnections"))
        if value is not None and value < 0:
            yield "error", f"{where}.tcp.maxConnections", "max connections must be non-negative"


def _egress_issues(sc: Sidecar, raw_items: list[Any]) -> Iterator[Issue]:
    from diag.model.validation_rules import egress_host_issue

    if any(item is None for item in raw_items):
        yield "error", "spec.egress", "egress listener may not be null"
    numbers: set[int] = set()
    sockets: set[str] = set()
    catch_all_seen = False
    listed = [item for item in raw_items if item is not None]
    raw_ports = [item.get("port") if isinstance(item, Mapping) else None for item in listed]
    for i, eg in enumerate(sc.egress):
        where = f"spec.egress[{i}]"
        if eg.port is None:
            if catch_all_seen:
                yield "error", where, "sidecar: egress can have only one listener with empty port"
                continue
            if i != len(sc.egress) - 1:
                yield (
                    "error",
                    where,
                    "sidecar: the egress listener with empty port should be the last listener in the list",
                )
            catch_all_seen = True
        else:
            found = raw_ports[i] if i < len(raw_ports) else None
            raw_port: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
            yield from _egress_port_issues(eg.port.number, eg.bind, eg.capture_mode, raw_port, where)
            if eg.port.number == 0:
                if eg.bind in sockets:
                    yield "error", where, "sidecar: unix domain socket values for listeners must be unique"
                sockets.add(eg.bind)
            else:
                if eg.port.number in numbers:
                    yield "error", where, "sidecar: ports on IP bound listeners must be unique"
                numbers.add(eg.port.number)
        if not eg.hosts:
            yield "error", where, "sidecar: egress listener must contain at least one host"
        for host in eg.hosts:
            err = egress_host_issue(host)
            if err:
                yield "error", f"{where}.hosts", err


def _egress_port_issues(
    number: int, bind: str, capture: str, raw_port: Mapping[str, Any], where: str
) -> Iterator[Issue]:
    """validateSidecarEgressPortBindAndCaptureMode: port 0 is a unix domain socket listener."""
    from diag.model.validation_rules import unix_address_error

    yield from _port_issues(raw_port, f"{where}.port", unix=number == 0)
    if number == 0:
        if not bind.startswith("unix://"):
            yield "error", where, "sidecar: ports with 0 value must have a unix domain socket bind address"
        else:
            err = unix_address_error(bind[len("unix://") :])
            if err:
                yield "error", f"{where}.bind", err
        if capture not in ("", "DEFAULT", "NONE"):
            yield "error", where, "sidecar: captureMode must be DEFAULT/NONE for unix domain socket listeners"
    elif bind and not _is_ip(bind):
        yield "error", f"{where}.bind", f"{bind} is not a valid IP"


def _policy_issues(sc: Sidecar) -> Iterator[Issue]:
    """validateSidecarOutboundTrafficPolicy."""
    from diag.model.validation_rules import fqdn_error

    policy = sc.outbound_traffic_policy
    if policy is None:
        return
    if policy.mode == "ALLOW_ANY_DYNAMIC_DNS":
        yield (
            "error",
            "spec.outboundTrafficPolicy",
            "sidecar: ALLOW_ANY_DYNAMIC_DNS mode is only supported in MeshConfig",
        )
        return
    if policy.mode not in ("ALLOW_ANY", "REGISTRY_ONLY"):
        yield "error", "spec.outboundTrafficPolicy.mode", f"unknown mode {policy.mode}"
    proxy = policy.egress_proxy
    if proxy is None:
        return
    if policy.mode != "ALLOW_ANY":
        yield "error", "spec.outboundTrafficPolicy", "sidecar: egress_proxy must be set only with ALLOW_ANY"
        return
    err = fqdn_error(proxy.host)
    if err:
        yield "error", "spec.outboundTrafficPolicy.egressProxy.host", err
    if proxy.port is None:
        yield "error", "spec.outboundTrafficPolicy", "sidecar: egress_proxy port must be non-nil"
    elif not 1 <= proxy.port <= 65535:
        where = "spec.outboundTrafficPolicy.egressProxy.port"
        yield "error", where, f"port number {proxy.port} must be in the range 1..65535"
