"""Fast paths for `diag.model.validation`: the common well-formed ServiceEntry and Sidecar,
recognised in one pass with few calls.

Each check answers True only when the careful checks (`validation_rules.service_entry_issues`,
`validation_sidecar.sidecar_issues`) would find nothing at all, no error and no warning; on any
shape it does not recognise it answers False and the careful checks run, so the messages are
theirs. `tests/diag/test_model_validation_fast.py` compares the two on well-formed and malformed
objects.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from diag.model.resources import HTTP_FAMILY, KNOWN_PROTOCOLS, TLS_FAMILY, ServiceEntry, Sidecar
from diag.model.validation_rules import _domain_ok, egress_host_issue, is_label

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
# A dotted quad without leading zeros (and a prefix length 0-32): every full match is what
# `ipaddress` parses; a text that does not match is left to the careful checks.
IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
IPV4_CIDR = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}/(?:3[0-2]|[12]?[0-9])")
_NOT_OPAQUE = HTTP_FAMILY | TLS_FAMILY
_ip = IPV4.fullmatch
_cidr = IPV4_CIDR.fullmatch


def service_entry_clean(se: ServiceEntry) -> bool:
    """True only when `service_entry_issues(se)` yields nothing: no workload selector, FQDN (or,
    where allowed, `*.`-prefixed) hosts, IPv4 addresses and endpoints, distinct well-formed ports,
    endpoints without labels, exportTo entries that are distinct and not mixed with `*` or `~`."""
    resolution = se.resolution
    dns = resolution == "DNS" or resolution == "DNS_ROUND_ROBIN"
    if not (dns or resolution == "NONE" or resolution == "STATIC") or se.workload_selector is not None:
        return False
    hosts, endpoints = se.hosts, se.endpoints
    if not hosts:
        return False
    fqdn_only = dns and not endpoints  # then every host must be an FQDN, no wildcard
    for host in hosts:
        if not _domain_ok(host[2:] if not fqdn_only and host.startswith("*.") else host):
            return False
    for address in se.addresses:
        if "/" in address:
            if not (resolution == "NONE" or resolution == "STATIC") or not _cidr(address):
                return False
        elif not _ip(address):
            return False
    ports = se.ports
    names: set[str] = set()
    numbers: set[int] = set()
    for port in ports:
        name, number, target, declared = port.name, port.number, port.target_port, port.declared
        if name in names or number in numbers or not 1 <= number <= 65535 or not is_label(name):
            return False
        if (target is not None and not 1 <= target <= 65535) or (
            declared and declared.upper() not in KNOWN_PROTOCOLS
        ):
            return False
        names.add(name)
        numbers.add(number)
    if len(hosts) > 1 and resolution != "NONE":
        for port in ports:
            if port.protocol not in _NOT_OPAQUE:
                return False
    if endpoints:
        if resolution == "NONE" or (resolution == "DNS_ROUND_ROBIN" and len(endpoints) > 1):
            return False
        for ep in endpoints:
            address = ep.address
            if not (_ip(address) or (dns and _domain_ok(address))) or ep.labels:
                return False
            if ep.ports and not _endpoint_ports_ok(ep.ports, names):
                return False
    export_to = se.export_to
    if len(export_to) == 1:
        entry = export_to[0]
        return entry == "." or entry == "*" or entry == "~" or is_label(entry)
    return not export_to or _export_list_ok(se.namespace, export_to)


def _export_list_ok(namespace: str, export_to: tuple[str, ...]) -> bool:
    """Several exportTo entries: distinct namespaces (`.` is the object's own), neither `*` nor `~`."""
    keys = {namespace if entry == "." else entry for entry in export_to}
    if len(keys) != len(export_to) or "*" in keys or "~" in keys:
        return False
    return all(entry == "." or is_label(entry) for entry in export_to)


def _endpoint_ports_ok(ports: Mapping[str, int], names: set[str]) -> bool:
    if type(ports) is not dict:
        return False
    for name, number in ports.items():
        if name not in names or not is_label(name) or not 1 <= number <= 65535:
            return False
    return True


def sidecar_clean(sc: Sidecar) -> bool:
    """True only when `sidecar_issues(sc)` yields nothing: a workload selector (if any) with
    labels and no wildcard, no ingress or inbound pool, one egress listener without a port and
    with well-formed hosts, an outbound policy of ALLOW_ANY or REGISTRY_ONLY without a proxy."""
    raw = sc.raw
    spec: Any = raw.get("spec") if type(raw) is dict else None
    selector = sc.workload_selector
    if type(spec) is not dict or (selector is not None and not _selector_ok(selector)):
        return False
    if spec.get("ingress") or spec.get("inboundConnectionPool") is not None:
        return False
    egress = sc.egress
    raw_egress = spec.get("egress")
    if len(egress) != 1 or type(raw_egress) is not list or len(raw_egress) != 1 or raw_egress[0] is None:
        return False
    listener = egress[0]
    if listener.port is not None or not listener.hosts:
        return False
    for host in listener.hosts:
        if egress_host_issue(host) is not None:
            return False
    policy = sc.outbound_traffic_policy
    return policy is None or (
        policy.egress_proxy is None and (policy.mode == "REGISTRY_ONLY" or policy.mode == "ALLOW_ANY")
    )


def _selector_ok(selector: Mapping[str, str]) -> bool:
    """Labels set, none with an empty key or a `*` (what `selector_issues` accepts silently)."""
    return bool(selector) and all(
        key and "*" not in key and "*" not in value for key, value in selector.items()
    )
