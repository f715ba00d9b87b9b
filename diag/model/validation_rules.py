"""Per-kind admission checks (Istio's validating webhook), used by `diag.model.validation`.

Re-implemented from istio/istio `pkg/config/validation/validation.go` (`ValidateServiceEntry`,
`ValidateDestinationRule`,
`validateExportTo`, `ValidateProtocol`, `ValidatePortName`) and
`pkg/config/validation/agent/validation.go` (`ValidateWildcardDomain`, `ValidateFQDN`,
`ValidatePartialWildCard`, `ValidateNamespaceSlashWildcardHostname`, `ValidateIPSubnet`,
`ValidatePort`), read at 86c9f01f. Each check returns (level, field, message); level "error"
means the webhook rejects the object, "warning" that it is admitted with a warning. Sidecar checks
live in `diag.model.validation_sidecar` (re-exported here as `sidecar_issues`).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterator, Mapping

from diag.model.resources import (
    HTTP_FAMILY,
    KNOWN_PROTOCOLS,
    TLS_FAMILY,
    DestinationRule,
    Port,
    ServiceEntry,
    VirtualService,
    WorkloadEndpoint,
)
from diag.model.validation_sidecar import sidecar_issues

Issue = tuple[str, str, str]  # (level, field, message)

__all__ = ["sidecar_issues"]

_LABEL = re.compile(r"^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$")
_WILD_LABEL = re.compile(r"^(\*|(\*|\*-)?[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?)$")
RESOLUTIONS = ("NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN", "DYNAMIC_DNS")
TLS_MODES = ("DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL")


_DOMAIN = re.compile(
    r"^(?:[a-zA-Z0-9](?:[-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?\.)*[a-zA-Z0-9](?:[-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?\.?$"
)


@functools.lru_cache(maxsize=4096)
def is_label(text: str) -> bool:
    """labels.IsDNS1123Label."""
    return len(text) <= 63 and bool(_LABEL.match(text))


def _domain_ok(name: str) -> bool:
    """Fast path: every label DNS-1123 and the top-level label not all-numeric."""
    if len(name) > 255 or not _DOMAIN.match(name):
        return False
    return not name.rsplit(".", 1)[-1].isdigit()


def _labels_ok(domain: str) -> str | None:
    parts = domain.split(".")
    if parts[-1].isdigit():
        return f"domain name {domain!r} invalid (top level domain {parts[-1]!r} cannot be all-numeric)"
    for i, label in enumerate(parts):
        if i == len(parts) - 1 and label == "":
            return None
        if not is_label(label):
            return f"domain name {domain!r} invalid (label {label!r} invalid)"
    return None


def fqdn_error(name: str) -> str | None:
    """ValidateFQDN."""
    if _domain_ok(name):
        return None
    if not name:
        return "empty domain name not allowed"
    if len(name) > 255:
        return f"domain name {name!r} too long (max 255)"
    return _labels_ok(name)


def wildcard_domain_error(name: str) -> str | None:
    """ValidateWildcardDomain: a wildcard only in the first label."""
    if _domain_ok(name[2:] if name.startswith("*.") else name):
        return None
    if not name:
        return "empty domain name not allowed"
    if len(name) > 255:
        return f"domain name {name!r} too long (max 255)"
    first, _, rest = name.partition(".")
    if not _WILD_LABEL.match(first):
        return f"domain name {name!r} invalid (label {first!r} invalid)"
    return _labels_ok(rest) if rest else None


def partial_wildcard(name: str) -> bool:
    """ValidatePartialWildCard: `*` anywhere but a leading `*.` label."""
    return "*" in name and len(name) != 1 and not name.startswith("*.")


def _ip_or_cidr_error(text: str) -> str | None:
    try:
        if text.count("/") == 1:
            ipaddress.ip_network(text, strict=False)
        else:
            ipaddress.ip_address(text)
    except ValueError:
        return f"{text} is not a valid IP address or CIDR block"
    return None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def export_to_issues(namespace: str, export_to: tuple[str, ...], service_entry: bool) -> Iterator[Issue]:
    """validateExportTo (duplicates, `*`/`~` alone, namespace names)."""
    seen: set[str] = set()
    for entry in export_to:
        key = namespace if entry == "." else entry
        if key in seen:
            yield "error", "exportTo", f"duplicate entries in exportTo for entry {entry}"
            continue
        seen.add(key)
        if entry == "~" and not service_entry:
            yield "error", "exportTo", "exportTo ~ (none) is not allowed for Istio configuration objects"
        elif entry not in (".", "*", "~") and not is_label(entry):
            yield "error", "exportTo", "only .,*, or a valid DNS 1123 label is allowed as exportTo entry"
    if "*" in seen and len(export_to) > 1:
        yield "error", "exportTo", "cannot have both public (*) and non-public exportTo values for a resource"
    if "~" in seen and len(export_to) > 1:
        yield "error", "exportTo", "cannot export service entry to no one (~) and someone"


def _port_issues(ports: tuple[Port, ...]) -> Iterator[Issue]:
    names: set[str] = set()
    numbers: set[int] = set()
    for i, port in enumerate(ports):
        where = f"spec.ports[{i}]"
        if port.name in names:
            yield "error", where, f"service entry port name {port.name!r} already defined"
        if port.number in numbers:
            yield "error", where, f"service entry port {port.number} already defined"
        names.add(port.name)
        numbers.add(port.number)
        if port.target_port is not None and not 1 <= port.target_port <= 65535:
            yield "error", where, f"port number {port.target_port} must be in the range 1..65535"
        if not is_label(port.name):
            yield "error", where, f"invalid port name: {port.name}"
        if port.declared and port.declared.upper() not in KNOWN_PROTOCOLS:
            yield "error", where, f"unsupported protocol: {port.declared}"
        if not 1 <= port.number <= 65535:
            yield "error", where, f"port number {port.number} must be in the range 1..65535"


def selector_issues(selector: Mapping[str, str] | None, where: str) -> Iterator[Issue]:
    """ValidateAlphaWorkloadSelector: no empty key, no `*` in a key or value."""
    for key, value in (selector or {}).items():
        if key == "":
            yield "error", where, f"empty key is not supported in selector: {key}={value}"
        if "*" in key or "*" in value:
            yield "error", where, f"wildcard is not supported in selector: {key}={value}"


def service_entry_issues(se: ServiceEntry) -> Iterator[Issue]:
    """ValidateServiceEntry."""
    yield from selector_issues(se.workload_selector, "spec.workloadSelector")
    if se.workload_selector is not None and se.endpoints:
        yield "error", "spec", "only one of WorkloadSelector or Endpoints is allowed in Service Entry"
    if se.workload_selector is not None and not se.workload_selector:
        yield "warning", "spec.workloadSelector", "workload selector specified without labels"
    if not se.hosts:
        yield "error", "spec.hosts", "service entry must have at least one host"
    for host in se.hosts:
        if host == "*":
            yield "error", "spec.hosts", "invalid host *"
            continue
        err = wildcard_domain_error(host)
        if err:
            yield "error", "spec.hosts", err
        if se.resolution != "DYNAMIC_DNS" and partial_wildcard(host):
            yield "warning", "spec.hosts", f"partial wildcard {host!r} not allowed"
    for addr in se.addresses:
        err = _ip_or_cidr_error(addr)
        if err:
            yield "error", "spec.addresses", err
    if any("/" in a for a in se.addresses) and se.resolution not in ("NONE", "STATIC"):
        yield "error", "spec.addresses", "CIDR addresses are allowed only for NONE/STATIC resolution types"
    yield from _port_issues(se.ports)
    yield from _resolution_issues(se)
    opaque = any(p.protocol not in HTTP_FAMILY and p.protocol not in TLS_FAMILY for p in se.ports)
    if se.resolution != "NONE" and len(se.hosts) > 1 and opaque:
        yield "error", "spec.hosts", "multiple hosts provided with non-HTTP, non-TLS ports"
    yield from export_to_issues(se.namespace, se.export_to, service_entry=True)


def _resolution_issues(se: ServiceEntry) -> Iterator[Issue]:
    port_names = {p.name for p in se.ports}
    res = se.resolution
    if res not in RESOLUTIONS:
        yield "error", "spec.resolution", f"unsupported resolution type {res}"
    elif res == "NONE":
        if se.endpoints:
            yield "error", "spec.endpoints", "no endpoints should be provided for resolution type none"
        if se.workload_selector is not None:
            yield (
                "warning",
                "spec.workloadSelector",
                "workloadSelector should not be set when resolution mode is NONE",
            )
    elif res == "STATIC":
        for ep in se.endpoints:
            yield from _workload_entry_issues(ep, port_names)
    elif res in ("DNS", "DNS_ROUND_ROBIN"):
        if not se.endpoints:
            bad = next((h for h in se.hosts if fqdn_error(h)), None)
            if bad is not None:
                yield (
                    "error",
                    "spec.hosts",
                    "hosts must be FQDN or contain only prefix wildcards if no endpoints are provided for "
                    f"resolution mode {res}, {fqdn_error(bad)}",
                )
        if res == "DNS_ROUND_ROBIN" and len(se.endpoints) > 1:
            yield "error", "spec.endpoints", f"there must only be 0 or 1 endpoint for resolution mode {res}"
        for ep in se.endpoints:
            if not _is_ip(ep.address) and fqdn_error(ep.address):
                yield (
                    "error",
                    "spec.endpoints",
                    f"endpoint address {ep.address!r} is not a valid FQDN or an IP address",
                )
            yield from label_issues(ep.labels, "spec.endpoints")
            yield from _endpoint_port_issues(ep.ports, port_names)
    else:  # DYNAMIC_DNS (1.28+)
        if any(not h.startswith("*") for h in se.hosts):
            yield "error", "spec.hosts", f"host must be wildcarded for resolution mode {res}"
        if se.addresses:
            yield "error", "spec.addresses", f"addresses cannot be set for resolution type {res}"
        if se.endpoints:
            yield "error", "spec.endpoints", f"endpoints cannot be set for resolution type {res}"
        if any(p.protocol not in ("HTTP", "TLS", "GRPC", "HTTP2") for p in se.ports):
            yield (
                "error",
                "spec.ports",
                f"only HTTP, TLS, GRPC, and HTTP2 protocols are supported for resolution type {res}",
            )
        waypoint = se.labels.get("istio.io/use-waypoint", "")
        if se.location == "MESH_INTERNAL" and waypoint and waypoint.lower() != "none":
            yield (
                "error",
                "spec.location",
                f"location MESH_INTERNAL with resolution type {res} is not supported when using waypoints",
            )


def _endpoint_port_issues(ports: Mapping[str, int] | object, names: set[str]) -> Iterator[Issue]:
    if not isinstance(ports, Mapping):
        return
    for name, number in ports.items():
        if name not in names:
            yield "error", "spec.endpoints", f"endpoint port {number} is not defined by the service entry"
        if not is_label(name):
            yield "error", "spec.endpoints", f"invalid port name: {name}"
        if not 1 <= number <= 65535:
            yield "error", "spec.endpoints", f"port number {number} must be in the range 1..65535"


def unix_address_error(path: str) -> str | None:
    """ValidateUnixAddress (the part after ``unix://``): not empty; an abstract ``@name`` or an
    absolute path that does not end in ``/``."""
    if not path:
        return "unix address must not be empty"
    if path.startswith("@"):
        return None
    if not path.startswith("/") or path.endswith("/"):
        return f"{path} is not an absolute path to a file"
    return None


def _workload_entry_issues(ep: WorkloadEndpoint, port_names: set[str]) -> Iterator[Issue]:
    """validateWorkloadEntry for a STATIC entry's endpoint (no FQDN addresses)."""
    where = "spec.endpoints"
    if not ep.address:
        if not ep.network:
            yield "error", where, "address is required"
            return
        yield "warning", where, f"address is unset with network {ep.network!r}"
    elif ep.address.startswith("unix://"):
        err = unix_address_error(ep.address[len("unix://") :])
        if err:
            yield "error", where, err
        if ep.ports:
            yield "error", where, f"unix endpoint {ep.address} must not include ports"
        if len(port_names) != 1:
            yield "error", where, "exactly 1 service port required for unix endpoints"
    elif not _is_ip(ep.address):
        yield "error", where, f"endpoint address {ep.address!r} is not a valid IP address"
    yield from _endpoint_port_issues(ep.ports, port_names)
    yield from label_issues(ep.labels, where)


_LABEL_VALUE = re.compile(r"^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def label_issues(labels: Mapping[str, str], where: str) -> Iterator[Issue]:
    """labels.Instance.Validate: keys are qualified names (an optional DNS-1123 subdomain prefix
    and ``/``, then a name of at most 63 characters), values at most 63 characters of
    ``[A-Za-z0-9-_.]`` starting and ending alphanumeric."""
    for key, value in labels.items():
        prefix, _, name = key.rpartition("/")
        bad_prefix = bool(prefix) and (len(prefix) > 253 or fqdn_error(prefix) is not None)
        if not name or len(name) > 63 or not _LABEL_NAME.match(name) or bad_prefix or key.count("/") > 1:
            yield "error", where, f"invalid label key: {key!r}"
        if len(value) > 63 or not _LABEL_VALUE.match(value):
            yield "error", where, f"invalid label value: {value!r}"


@functools.lru_cache(maxsize=4096)
def egress_host_issue(host: str) -> str | None:
    """ValidateNamespaceSlashWildcardHostname for a Sidecar."""
    if host.count("/") < 1:
        return "host must be of form namespace/dnsName"
    ns, _, name = host.partition("/")
    if not ns or not name:
        return "config namespace and dnsName in host entry cannot be empty"
    bare = ns[1:] if ns.startswith("~") else ns
    if bare not in ("", "*", ".") and not is_label(bare):
        return f"invalid namespace value {ns!r} in sidecar"
    if name != "*" and "." not in name:
        return "short names (non FQDN) are not allowed"
    err = wildcard_domain_error(name)
    if err:
        return err
    if partial_wildcard(name):
        return f"partial wildcard {name!r} not allowed"
    return None


def destination_rule_issues(dr: DestinationRule) -> Iterator[Issue]:
    """ValidateDestinationRule (host, subsets, TLS modes, exportTo)."""
    err = wildcard_domain_error(dr.host)
    if err:
        yield "error", "spec.host", err
    names: set[str] = set()
    for sub in dr.subsets:
        if not sub.name:
            yield "error", "spec.subsets", "subset name is required"
        if sub.name in names:
            yield "error", "spec.subsets", f"duplicate subset names: {sub.name}"
        names.add(sub.name)
    policies = [dr.traffic_policy, *(s.traffic_policy for s in dr.subsets)]
    for policy in policies:
        if policy is None:
            continue
        modes = [policy.tls, *(p.tls for p in policy.port_level)]
        for tls in modes:
            if tls is not None and tls.mode not in TLS_MODES:
                yield "error", "spec.trafficPolicy.tls.mode", f"unknown TLS mode {tls.mode}"
    yield from export_to_issues(dr.namespace, dr.export_to, service_entry=False)
    if dr.workload_selector is not None and dr.export_to and set(dr.export_to) - {".", dr.namespace}:
        yield (
            "error",
            "spec.exportTo",
            "destination rule with workload selector cannot have exportTo beyond current namespace",
        )


def virtual_service_issues(vs: VirtualService) -> Iterator[Issue]:
    """The host and exportTo parts of validateVirtualService."""
    if not vs.http and not vs.tcp and not vs.tls:
        yield "error", "spec", "http, tcp or tls must be provided in virtual service"
    for host in vs.hosts:
        if host == "*" and vs.binds_mesh:
            yield (
                "error",
                "spec.hosts",
                "wildcard host * is not allowed for virtual services bound to the mesh gateway",
            )
        elif host != "*" and not _is_ip(host):
            err = wildcard_domain_error(host)
            if err:
                yield "error", "spec.hosts", err
    yield from export_to_issues(vs.namespace, vs.export_to, service_entry=False)
