"""`meshprobe lint`: static findings (codes MP04xx, SPEC §4 "lint adds codes MP04xx") over a
snapshot, with ``istio_code`` where ``istioctl analyze`` reports the same condition, and SARIF 2.1.0.

One check per code, each a function whose docstring states the Istio behaviour and its source:

- MP0401 PortCapturedForProxies (IST0134): a TCP/protocol-less entry (or ExternalName Service, or an
  all-covering CIDR) owns ``0.0.0.0:port`` for proxies — evaluated per proxy, with and without DNS
  capture; IST0134 goes silent once ``status.addresses`` is allocated (1.25+), the capture does not;
- MP0402 ConflictingProtocols (IST0177): one host and port declared with different protocols;
- MP0403 InvalidEntry (IST0106): what admission would reject (wildcard + DNS without endpoints,
  ``hosts: ["*"]``, ...), left out of predictions;
- MP0404 MixedCaseHost: upper case in a host of SE/DR/VS/Sidecar;
- MP0405 MeshInternalExternalHost (note): ``location: MESH_INTERNAL`` on an external DNS host;
- MP0406 DoubleTlsConfig: a DestinationRule originates TLS on a TLS/HTTPS port;
- MP0407 ExportHidesOwnNamespace: ``exportTo`` excludes the entry's own namespace;
- MP0408 OverBroadEgress: bare-TLD wildcards, NONE without addresses on TCP ports, ``0.0.0.0/0``.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from diag import predict
from diag.predict import Source
from diag.resources import TLS_FAMILY, Resource, ServiceEntry
from diag.rules.base import Diagnosis
from diag.snapshot import Snapshot, host_matches


@dataclass(frozen=True)
class LintCode:
    code: str
    name: str
    level: str
    summary: str
    istio_code: str | None = None


CODES: dict[str, LintCode] = {
    c.code: c
    for c in (
        LintCode(
            "MP0401",
            "PortCapturedForProxies",
            "warning",
            "an entry captures a whole port for proxies",
            "IST0134",
        ),
        LintCode(
            "MP0402", "ConflictingProtocols", "warning", "one host and port, several protocols", "IST0177"
        ),
        LintCode("MP0403", "InvalidEntry", "error", "Istio's validation rejects the object", "IST0106"),
        LintCode("MP0404", "MixedCaseHost", "warning", "a host with upper-case letters in config"),
        LintCode("MP0405", "MeshInternalExternalHost", "info", "MESH_INTERNAL on an external host"),
        LintCode(
            "MP0406", "DoubleTlsConfig", "warning", "TLS origination on a port that already carries TLS"
        ),
        LintCode(
            "MP0407", "ExportHidesOwnNamespace", "warning", "exportTo excludes the entry's own namespace"
        ),
        LintCode("MP0408", "OverBroadEgress", "warning", "an entry opens far more than one destination"),
    )
}


def finding(
    code: str,
    message: str,
    resources: Sequence[str],
    *,
    istio: bool = False,
    evidence: Sequence[str] = (),
    level: str | None = None,
) -> Diagnosis:
    spec = CODES[code]
    return Diagnosis(
        code,
        spec.name,
        level or spec.level,
        message,
        tuple(resources),
        tuple(evidence),
        None,
        spec.istio_code if istio else None,
    )


def static_findings(snapshot: Snapshot, objects: Iterable[Resource] = ()) -> list[Diagnosis]:
    """All lint findings, sorted and de-duplicated (see `diag.report.sorted_findings`)."""
    from diag.report import sorted_findings

    out: list[Diagnosis] = []
    for check in CHECKS:
        out.extend(check(snapshot))
    out.extend(invalid_entries(snapshot, list(objects)))
    return sorted_findings(out)


def port_capture(snapshot: Snapshot) -> list[Diagnosis]:
    """MP0401 (IST0134). A TCP/protocol-less port of an entry with no address for the proxy binds
    ``0.0.0.0:port`` match-all (pilot ``listener.go`` ``buildSidecarOutboundListeners``); DNS capture +
    auto-allocation (default from 1.25, ``ip_autoallocation.go``) gives DNS/STATIC entries a VIP only
    on proxies that capture DNS. istioctl's ``ProtocolAddressesAnalyzer`` skips entries with
    ``status.addresses``, so it is silent on 1.25+ where sidecars without DNS capture still capture
    (``reference/istio-review.md`` §3.3)."""
    out: list[Diagnosis] = []
    seen: set[tuple[str, int]] = set()
    for svc in snapshot.mesh_services:
        for port in svc.ports:
            if port.family not in ("tcp", "auto") or (svc.ref, port.number) in seen:
                continue
            without = predict.port_owner(
                snapshot, Source(namespace=svc.namespace, dns_capture=False), port.number
            )
            if without is None or without.service.resource is not svc.resource:
                continue
            seen.add((svc.ref, port.number))
            with_dns = predict.port_owner(
                snapshot, Source(namespace=svc.namespace, dns_capture=True), port.number
            )
            captured_with_dns = with_dns is not None and with_dns.service.resource is svc.resource
            scope = "every proxy that sees it" if captured_with_dns else "proxies without DNS capture"
            resource = svc.resource
            same_as_istioctl = (
                isinstance(resource, ServiceEntry)
                and not resource.status_addresses
                and (not resource.addresses)
                and not _mesh_allocates(snapshot)
            )
            evidence = [f"reason: {without.reason}"]
            if isinstance(resource, ServiceEntry) and resource.status_addresses:
                evidence.append(
                    "istioctl analyze (IST0134) is silent here: status.addresses is set, but proxies "
                    "without DNS capture ignore the allocated address"
                )
            message = (
                f"{svc.ref} owns 0.0.0.0:{port.number} for {scope}: non-HTTP traffic to any host on port "
                f"{port.number} goes to it ({'passed through' if svc.resolution == 'NONE' else svc.host})"
            )
            out.append(finding("MP0401", message, [svc.ref], istio=same_as_istioctl, evidence=evidence))
    return out


def _mesh_allocates(snapshot: Snapshot) -> bool:
    meta = snapshot.mesh.default_config.proxy_metadata
    capture = str(meta.get("ISTIO_META_DNS_CAPTURE", "")).lower() == "true"
    allocate = any(
        str(meta.get(k, "")).lower() == "true"
        for k in ("ISTIO_META_DNS_AUTO_ALLOCATE", "PILOT_ENABLE_IP_AUTOALLOCATE")
    )
    return capture and allocate


def conflicting_protocols(snapshot: Snapshot) -> list[Diagnosis]:
    """MP0402 (IST0177). Entries visible in one namespace that declare the same host and port with
    different protocols conflict; pilot keeps one listener shape (``listener.go`` conflict
    handling). Like istioctl's ``ConflictingServiceEntryProtocolAnalyzer``, scopes come from
    ``exportTo`` (``*`` overlaps every namespace)."""
    by_key: dict[tuple[str, int], list[tuple[str, ServiceEntry]]] = defaultdict(list)
    for se in snapshot.service_entries:
        for host in se.hosts:
            for port in se.ports:
                by_key[(host.lower(), port.number)].append((port.protocol or "(unset)", se))
    out = []
    for (host, number), declared in sorted(by_key.items()):
        clashing = {
            (pa, a.ref)
            for pa, a in declared
            for pb, b in declared
            if pa != pb and _scopes_overlap(_scope(snapshot, a), _scope(snapshot, b))
        }
        if clashing:
            shown = ", ".join(f"{p} ({r})" for p, r in sorted(clashing))
            out.append(
                finding(
                    "MP0402",
                    f"{host}:{number} is declared with several protocols: {shown}",
                    sorted({r for _, r in clashing}),
                    istio=True,
                )
            )
    return out


def _scope(snapshot: Snapshot, se: ServiceEntry) -> frozenset[str]:
    export = se.export_to or snapshot.mesh.default_service_export_to
    return frozenset(se.namespace if item == "." else item for item in export if item != "~")


def _scopes_overlap(a: frozenset[str], b: frozenset[str]) -> bool:
    return bool(a and b) and ("*" in a or "*" in b or bool(a & b))


def invalid_entries(snapshot: Snapshot, objects: Sequence[Resource]) -> list[Diagnosis]:
    """MP0403 (IST0106). Istio's validating webhook rejects these (``pkg/config/validation/
    validation.go``, e.g. ``ValidateServiceEntry``: wildcard hosts with DNS resolution need endpoints,
    ``hosts: ["*"]`` is not allowed); meshprobe leaves them out of predictions."""
    del objects
    return [
        finding(
            "MP0403",
            f"{m.ref}: {m.message} (rejected at admission; left out of predictions)",
            [m.ref],
            istio=True,
        )
        for m in snapshot.invalid
    ]


def mixed_case(snapshot: Snapshot) -> list[Diagnosis]:
    """MP0404. Envoy lower-cases Host and SNI, but Istio passes config hosts through: VS/DR host
    selection was case-sensitive before istio/istio#56090, duplicate domains differing in case get
    RDS NACKed (#49638), VS ``authority`` matches are case-sensitive (#56801)."""
    out = []
    items: list[tuple[Resource, Iterable[str]]] = []
    for se in snapshot.service_entries:
        items.append((se, se.hosts))
    for dr in snapshot.destination_rules:
        items.append((dr, (dr.host,)))
    for vs in snapshot.virtual_services:
        items.append((vs, vs.hosts))
    for sc in snapshot.sidecars:
        items.append((sc, [h for eg in sc.egress for h in eg.hosts]))
    for obj, hosts in items:
        upper = sorted({h for h in hosts if h != h.lower()})
        if upper:
            out.append(
                finding(
                    "MP0404",
                    f"{obj.ref} has upper case in {', '.join(upper)}: write hosts in lower "
                    "case (matching is not case-insensitive everywhere in Istio)",
                    [obj.ref],
                )
            )
    return out


def mesh_internal(snapshot: Snapshot) -> list[Diagnosis]:
    """MP0405 (note). ``location: MESH_INTERNAL`` alone does not cause mTLS (auto-mTLS needs endpoints
    labelled ``tlsMode: istio``, ``cluster_tls.go``), but it changes telemetry and ambient handling
    (``reference/istio-review.md`` §3.1)."""
    out = []
    for se in snapshot.service_entries:
        if (
            se.location == "MESH_INTERNAL"
            and se.resolution in ("DNS", "DNS_ROUND_ROBIN")
            and not se.endpoints
        ):
            out.append(
                finding(
                    "MP0405",
                    f"{se.ref} marks external DNS host(s) {', '.join(se.hosts)} as "
                    "MESH_INTERNAL: use MESH_EXTERNAL (no mTLS happens either way)",
                    [se.ref],
                )
            )
    return out


def double_tls(snapshot: Snapshot) -> list[Diagnosis]:
    """MP0406. A DestinationRule's SIMPLE/MUTUAL/ISTIO_MUTUAL becomes the upstream TLS of a port whose
    clients already speak TLS (``cluster_tls.go`` user TLS wins): TLS in TLS, ``wrong version number``
    (istio/istio#36377)."""
    out = []
    for dr in snapshot.destination_rules:
        if dr.traffic_policy is None:
            continue
        for se in snapshot.service_entries:
            if not any(host_matches(dr.host, h) or dr.host.lower() == h.lower() for h in se.hosts):
                continue
            for port in se.ports:
                tls = dr.traffic_policy.tls_for_port(port.number)
                if port.protocol in TLS_FAMILY and tls is not None and tls.mode in ("SIMPLE", "MUTUAL"):
                    out.append(
                        finding(
                            "MP0406",
                            f"{dr.ref} originates TLS ({tls.mode}) for {se.ref} port "
                            f"{port.number}, which is declared {port.protocol}: TLS inside TLS",
                            [dr.ref, se.ref],
                        )
                    )
    return out


def export_hides_own(snapshot: Snapshot) -> list[Diagnosis]:
    """MP0407. ``exportTo`` without ``.``, ``*`` or the entry's own namespace hides it from workloads
    next to it (``push_context.go`` ``IsServiceVisible``); ``~`` hides it from everyone."""
    out = []
    for obj in [*snapshot.service_entries, *snapshot.destination_rules, *snapshot.virtual_services]:
        export = tuple(getattr(obj, "export_to", ()) or ())
        if export and not ({".", "*", obj.namespace} & set(export)):
            out.append(
                finding(
                    "MP0407",
                    f"{obj.ref} exportTo {list(export)} hides it from its own namespace {obj.namespace}",
                    [obj.ref],
                )
            )
    return out


def over_broad(snapshot: Snapshot) -> list[Diagnosis]:
    """MP0408. Entries that open far more than a destination: a bare-TLD wildcard (``*.com``), a TCP
    port with resolution NONE and no addresses (any destination on the port passes, even under
    REGISTRY_ONLY: ORIGINAL_DST), a ``0.0.0.0/0`` address (``reference/istio-review.md`` §3.3, §3.5)."""
    out = []
    for se in snapshot.service_entries:
        for host in se.hosts:
            if host.startswith("*.") and host.count(".") == 1:
                out.append(
                    finding("MP0408", f"{se.ref} registers every host under {host[2:]!r} ({host})", [se.ref])
                )
        if (
            se.resolution == "NONE"
            and not se.addresses
            and any(p.family in ("tcp", "auto") for p in se.ports)
        ):
            ports = ", ".join(str(p.number) for p in se.ports if p.family in ("tcp", "auto"))
            out.append(
                finding(
                    "MP0408",
                    f"{se.ref} has resolution NONE and no addresses on TCP port(s) {ports}: any "
                    "destination on those ports is allowed",
                    [se.ref],
                )
            )
        for address in se.addresses:
            try:
                if ipaddress.ip_network(address, strict=False).prefixlen == 0:
                    out.append(finding("MP0408", f"{se.ref} lists {address}: every address", [se.ref]))
            except ValueError:
                continue
    return out


CHECKS: tuple[Callable[[Snapshot], list[Diagnosis]], ...] = (
    port_capture,
    conflicting_protocols,
    mixed_case,
    mesh_internal,
    double_tls,
    export_hides_own,
    over_broad,
)

_SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def sarif(findings: Sequence[Diagnosis], origins: Mapping[str, str], version: str) -> dict[str, Any]:
    """SARIF 2.1.0: one run, one rule per MP04xx code, one result per finding; ``origins`` maps a
    resource ref to ``file.yaml#N`` (where it was loaded from)."""
    used = sorted({f.code for f in findings} | set(CODES))
    rules = [
        {
            "id": code,
            "name": CODES[code].name,
            "shortDescription": {"text": CODES[code].summary},
            "helpUri": f"docs/codes/{code}.md",
            "defaultConfiguration": {"level": _SARIF_LEVEL[CODES[code].level]},
        }
        for code in used
        if code in CODES
    ]
    results = []
    for f in findings:
        result: dict[str, Any] = {
            "ruleId": f.code,
            "level": _SARIF_LEVEL.get(f.level, "note"),
            "message": {"text": f.message},
            "locations": [_location(ref, origins.get(ref, "")) for ref in sorted(set(f.resources))],
        }
        if f.istio_code:
            result["properties"] = {"istio_code": f.istio_code}
        results.append(result)
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "meshprobe", "version": version, "rules": rules}},
                "results": results,
            }
        ],
    }


def _location(ref: str, origin: str) -> dict[str, Any]:
    path, _, _doc = origin.partition("#")
    location: dict[str, Any] = {"logicalLocations": [{"name": ref, "kind": "resource"}]}
    if path:
        location["physicalLocation"] = {"artifactLocation": {"uri": path}}
    return location


__all__ = ["CODES", "sarif", "static_findings"]
