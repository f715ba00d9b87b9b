"""`meshprobe lint`: static findings (codes MP04xx, `docs/codes/README.md`) over a snapshot, with
``istio_code`` where ``istioctl analyze`` reports the same condition, and SARIF 2.1.0.

One check per code, each a function whose docstring states the Istio behaviour and its source:

- MP0401 PortCapturedForProxies (IST0134) and MP0402 ConflictingProtocols (IST0177): in
  `diag.lint.istioctl`, on the data plane, with istioctl's rule for ``istio_code``
  (`docs/lint-parity.md`);
- MP0403 InvalidEntry (IST0106): what admission would reject (wildcard + DNS without endpoints,
  ``hosts: ["*"]``, ...), left out of predictions, and objects that cannot be read
  (`load_findings`): lint goes on with the rest (`lint_loaded`);
- MP0404 MixedCaseHost: upper case in a host of SE/DR/VS/Sidecar;
- MP0405 MeshInternalExternalHost (note): ``location: MESH_INTERNAL`` on an external DNS host;
- MP0406 DoubleTlsConfig: a DestinationRule originates TLS on a TLS/HTTPS port;
- MP0407 ExportHidesOwnNamespace: ``exportTo`` excludes the entry's own namespace;
- MP0408 OverBroadEgress: bare-TLD wildcards, NONE without addresses on TCP ports, ``0.0.0.0/0``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from diag.lint.codes import CODES, LintCode, finding
from diag.lint.istioctl import conflicting_protocols, istioctl_on_rejected, port_capture
from diag.model.loader import LoadResult, Problem
from diag.model.resources import TLS_FAMILY, MeshConfig, Resource, ServiceEntry
from diag.model.snapshot import Snapshot, host_matches
from diag.rules.base import Diagnosis


def static_findings(snapshot: Snapshot, objects: Iterable[Resource] = ()) -> list[Diagnosis]:
    """All lint findings, sorted and de-duplicated (see `diag.report.sorted_findings`)."""
    from diag.report import sorted_findings

    objects = list(objects)
    out: list[Diagnosis] = []
    for check in CHECKS:
        out.extend(check(snapshot))
    out.extend(invalid_entries(snapshot, objects))
    out.extend(istioctl_on_rejected(snapshot, objects))
    return sorted_findings(out)


def lint_loaded(
    loaded: LoadResult, mesh: MeshConfig | None = None
) -> tuple[Snapshot, list[Diagnosis], list[Problem]]:
    """Lint what the loader read: (snapshot, findings, file problems).

    An object the loader could not read is a finding (`load_findings`), like one Istio's validation
    rejects (`invalid_entries`), and the rest is linted; only what is not an object — an unreadable
    file, a document that is not YAML — is left for the caller to report as bad input."""
    snapshot = Snapshot.build(loaded.objects, mesh if mesh is not None else loaded.mesh)
    findings = static_findings(snapshot, loaded.objects) + load_findings(loaded.problems)
    from diag.report import sorted_findings

    fatal = [p for p in loaded.problems if p.level == "error" and not is_object_problem(p)]
    return snapshot, sorted_findings(findings), fatal


def invalid_entries(snapshot: Snapshot, objects: Sequence[Resource]) -> list[Diagnosis]:
    """MP0403 (IST0106). Istio's validating webhook rejects these (``pkg/config/validation/
    validation.go``, e.g. ``ValidateServiceEntry``: wildcard hosts with DNS resolution need endpoints,
    ``hosts: ["*"]`` is not allowed); meshprobe leaves them out of predictions."""
    del objects
    return [
        finding(
            "MP0403",
            f"{m.ref}: {_invalid_text(m.message)} (rejected at admission; left out of predictions)",
            [m.ref],
            istio=True,
        )
        for m in snapshot.invalid
    ]


_FQDN_RULE = re.compile(
    r"hosts must be FQDN or contain only prefix wildcards if no endpoints are provided for "
    r"resolution mode (?P<mode>\w+), (?P<detail>.*)"
)


def _invalid_text(message: str) -> str:
    """Validation's message, except where its wording contradicts itself: for DNS resolution
    without endpoints ``ValidateServiceEntry`` says hosts must be "FQDN or contain only prefix
    wildcards", yet checks them with ``ValidateFQDN``, which rejects every ``*`` label — so a
    prefix wildcard such as ``*.example.com`` is exactly what it refuses (istio/istio
    ``pkg/config/validation/validation.go``)."""
    found = _FQDN_RULE.fullmatch(message)
    if found is None:
        return message
    return (
        f"with resolution {found['mode']} and no endpoints, every host must be a fully qualified "
        f"name, and a wildcard (even a prefix one) is not: {found['detail']}; list exact hosts, "
        "give the entry endpoints, or use resolution NONE"
    )


ISTIO_KINDS = frozenset(
    {"ServiceEntry", "Sidecar", "DestinationRule", "VirtualService", "Gateway", "WorkloadEntry"}
)


def is_object_problem(problem: Problem) -> bool:
    """A load problem about one object (named ``Kind ns/name``), not a whole file or document."""
    kind = problem.object.split(" ", 1)[0]
    return problem.level == "error" and " " in problem.object and kind not in ("document", "")


def load_findings(problems: Iterable[Problem]) -> list[Diagnosis]:
    """MP0403 for each object the loader could not read (a field of the wrong type, a null list
    item, a missing required number): the API server or Istio's validation rejects it, so lint
    reports it and goes on with the rest. ``istio_code`` IST0106 where istioctl analyze's schema
    validation says so — a null or missing item of an Istio kind, which ``ValidateServiceEntry``
    and friends reject (``service entry port may not be null``; port 0 is out of range:
    istio/istio ``pkg/config/validation/validation.go``); a value of the wrong type never reaches
    that validation (the CRD schema rejects it first), so it carries no ``istio_code``."""
    out = []
    for problem in problems:
        if not is_object_problem(problem):
            continue
        kind = problem.object.split(" ", 1)[0]
        validated = kind in ISTIO_KINDS and problem.message.endswith(": missing")
        out.append(
            finding(
                "MP0403",
                f"{problem.object}: {problem.message} (the object is rejected; left out)",
                [problem.object],
                istio=validated,
                evidence=[f"loaded from {problem.path}"],
            )
        )
    return out


def mixed_case(snapshot: Snapshot) -> list[Diagnosis]:
    """MP0404. Envoy lower-cases Host and SNI, but Istio passes config hosts through: VS/DR host
    selection was case-sensitive before istio/istio#56090, duplicate domains differing in case get
    RDS NACKed (#49638), VS ``authority`` matches are case-sensitive (#56801).

    A warning for a ServiceEntry (its hosts become cluster names, SNI ``server_names`` and DNS
    names as written) and for any object whose host is spelled another way elsewhere in the config;
    otherwise (one spelling everywhere, e.g. a gateway-only VirtualService and its Gateway, as in
    Istio's ``samples/multicluster/expose-istiod-https.yaml``) an info: nothing mismatches."""
    out = []
    items: list[tuple[Resource, Iterable[str]]] = []
    for se in snapshot.service_entries:
        items.append((se, se.hosts))
    for dr in snapshot.destination_rules:
        items.append((dr, (dr.host,)))
    for vs in snapshot.virtual_services:
        items.append((vs, vs.hosts))
    for sc in snapshot.sidecars:
        items.append((sc, [h.split("/", 1)[-1] for eg in sc.egress for h in eg.hosts]))
    gateway_hosts = [
        h.split("/", 1)[-1] for gw in snapshot.gateways for server in gw.servers for h in server.hosts
    ]
    spellings: dict[str, set[str]] = {}
    for host in [*gateway_hosts, *(h for _, hosts in items for h in hosts)]:
        spellings.setdefault(host.lower(), set()).add(host)
    for obj, hosts in items:
        upper = sorted({h for h in hosts if h != h.lower()})
        if not upper:
            continue
        mixed = any(len(spellings.get(h.lower(), ())) > 1 for h in upper)
        level = "warning" if isinstance(obj, ServiceEntry) or mixed else "info"
        message = (
            f"{obj.ref} has upper case in {', '.join(upper)}: write hosts in lower case (matching is "
            "not case-insensitive everywhere in Istio)"
        )
        if mixed:
            message += "; the same host is spelled another way elsewhere in the config"
        out.append(finding("MP0404", message, [obj.ref], level=level))
    return out


def mesh_internal(snapshot: Snapshot) -> list[Diagnosis]:
    """MP0405 (note). ``location: MESH_INTERNAL`` alone does not cause mTLS (auto-mTLS needs endpoints
    labelled ``tlsMode: istio``, ``cluster_tls.go``), but it changes telemetry and ambient handling
    (istio/istio ``pilot/pkg/networking/core/cluster_tls.go``)."""
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
    (istio/istio#36377).

    An info instead of a warning when a mesh VirtualService sends plain HTTP of the host to that
    port: the setting is the TLS origination of that route (Istio's
    ``samples/bookinfo/networking/egress-rule-google-apis.yaml``), and only clients that speak TLS
    to the port directly are hurt."""
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
                    routes = _origination_routes(snapshot, se, port.number)
                    message = (
                        f"{dr.ref} originates TLS ({tls.mode}) for {se.ref} port "
                        f"{port.number}, which is declared {port.protocol}: TLS inside TLS"
                    )
                    if routes:
                        message += (
                            f" for clients that speak TLS to port {port.number}; it is the TLS "
                            f"origination of {', '.join(routes)}, which sends plain HTTP there"
                        )
                    level = "info" if routes else None
                    out.append(finding("MP0406", message, [dr.ref, se.ref], level=level))
    return out


def _origination_routes(snapshot: Snapshot, se: ServiceEntry, port: int) -> list[str]:
    """Mesh VirtualServices for the entry's hosts with an http route to `port` of one of them."""
    hosts = {h.lower() for h in se.hosts}
    out = []
    for vs in snapshot.virtual_services:
        if not vs.binds_mesh or not hosts & {h.lower() for h in vs.hosts}:
            continue
        for rule in vs.http:
            if any(d.port == port and d.host.lower() in hosts for d in rule.destinations):
                out.append(vs.ref)
                break
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
    (or protocol-less) port with resolution NONE and no addresses (a match-all chain on
    ``0.0.0.0:port``: any destination on the port passes, even under REGISTRY_ONLY: ORIGINAL_DST),
    a ``0.0.0.0/0`` address. HTTPS/TLS ports with resolution NONE are not over-broad: their chain on
    ``0.0.0.0`` matches the entry's hosts by SNI (``server_names``), so only those names pass
    (istio/istio ``pilot/pkg/networking/core/tls.go`` ``buildSidecarOutboundTLSFilterChainOpts``)."""
    out = []
    for se in snapshot.service_entries:
        for host in se.hosts:
            if host.startswith("*.") and host.count(".") == 1:
                out.append(
                    finding("MP0408", f"{se.ref} registers every host under {host[2:]!r} ({host})", [se.ref])
                )
        opaque = [p for p in se.ports if p.family in ("tcp", "auto") and p.protocol not in TLS_FAMILY]
        if se.resolution == "NONE" and not se.addresses and opaque:
            ports = ", ".join(str(p.number) for p in opaque)
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


__all__ = [
    "CODES",
    "LintCode",
    "conflicting_protocols",
    "finding",
    "is_object_problem",
    "lint_loaded",
    "load_findings",
    "port_capture",
    "sarif",
    "static_findings",
]
