"""The lint checks istioctl analyze also has: MP0401 (IST0134 ServiceEntryAddressesRequired) and
MP0402 (IST0177 ConflictingServiceEntryProtocol), each evaluated on the data plane, with
``istio_code`` exactly where istioctl's analyzer reports the entry; and what istioctl adds about
entries admission rejects (its analyzers read every object, valid or not).

The analyzers' rules are re-implemented from istio/istio
``pkg/config/analysis/analyzers/serviceentry/protocoladdresses.go`` and
``conflictingserviceentries.go``; the deliberate differences are listed in `docs/lint-parity.md`
and the code pages, and tested on istioctl's own cases (`tests/diag/test_lint_parity.py`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from diag.lint.codes import finding
from diag.model.resources import TLS_FAMILY, Resource, ServiceEntry
from diag.model.snapshot import Snapshot
from diag.predict import sidecar as predict
from diag.predict.scope import scope_for
from diag.predict.sidecar import Source
from diag.rules.base import Diagnosis


def port_capture(snapshot: Snapshot) -> list[Diagnosis]:
    """MP0401 (IST0134). A TCP-family (not TLS) or protocol-less port of an entry with no address
    for a proxy binds ``0.0.0.0:port`` with a match-all chain (pilot ``listener.go``
    ``buildSidecarOutboundListeners``): non-HTTP traffic to any host on the port goes to the entry
    that owns the chain, and the traffic of every other such entry on the port goes there too. DNS
    capture + auto-allocation (default from 1.25, ``ip_autoallocation.go``) gives DNS/STATIC entries
    a VIP only on proxies that capture DNS; resolution NONE never gets one.

    Evaluated per proxy: in each namespace the entry is exported to, with and without DNS capture.
    ``istio_code`` IST0134 exactly where istioctl's ``ProtocolAddressesAnalyzer``
    (``pkg/config/analysis/analyzers/serviceentry/protocoladdresses.go``) reports: no ``addresses``,
    no ``status.addresses``, a port whose protocol is unset or TCP, and no mesh-wide
    ``ISTIO_META_DNS_CAPTURE: "true"`` with auto-allocation. Where the two disagree (istioctl silent
    on 1.25+ installs, on MONGO/MYSQL/REDIS ports and on NONE entries with a recorded allocation;
    istioctl reporting an entry no proxy sees) the finding says so (`docs/codes/MP0401.md`)."""
    out: list[Diagnosis] = []
    silenced = _mesh_allocates(snapshot)
    for se in snapshot.service_entries:
        flagged = {
            p.number for p in se.ports if p.declared == "" or p.declared.upper() == "TCP"
        } if not (se.addresses or se.status_addresses or silenced) else set()
        for port in se.ports:
            opaque = port.family in ("tcp", "auto") and port.protocol not in TLS_FAMILY
            if not opaque:
                continue
            found = _capture(snapshot, se, port.number, port.number in flagged, silenced)
            if found is not None:
                out.append(found)
    return out


ANY_NAMESPACE = "<another namespace>"  # a namespace without its own Sidecar (root Sidecar applies)


def _viewers(snapshot: Snapshot, se: ServiceEntry) -> list[str]:
    """Namespaces whose proxies the entry is exported to (`*`: its own and any other)."""
    export = se.export_to or snapshot.mesh.default_service_export_to
    out: list[str] = []
    for item in export:
        if item == "*":
            out += [se.namespace, ANY_NAMESPACE]
        elif item == ".":
            out.append(se.namespace)
        elif item != "~":
            out.append(item)
    return list(dict.fromkeys(out))


def _capture(
    snapshot: Snapshot, se: ServiceEntry, port: int, istioctl: bool, silenced: bool
) -> Diagnosis | None:
    """MP0401 for one port of one entry, or None when neither the data plane nor istioctl says so."""
    owners: dict[bool, list[str]] = {False: [], True: []}  # dns capture → owner refs seen
    for namespace in _viewers(snapshot, se):
        for dns in (False, True):
            source = Source(namespace=namespace, dns_capture=dns)
            owner = _match_all_owner(snapshot, source, se, port)
            if owner is not None:
                owners[dns].append(owner)
    captured = owners[False] or owners[True]
    if not captured:
        if not istioctl:
            return None
        why = (
            "exportTo ~" if "~" in se.export_to else "no proxy imports it or it is outside discoverySelectors"
        )
        message = (
            f"{se.ref} declares port {port} without addresses (istioctl analyze reports IST0134), but "
            f"no proxy sees it ({why}): nothing is captured today"
        )
        return finding("MP0401", message, [se.ref], istio=True, level="info")
    scope = "every proxy that sees it" if owners[True] else "proxies without DNS capture"
    owner = captured[0]
    if owner == se.ref:
        effect = "passed through" if se.resolution == "NONE" else ", ".join(se.hosts)
        message = (
            f"{se.ref} owns 0.0.0.0:{port} for {scope}: non-HTTP traffic to any host on port {port} "
            f"goes to it ({effect})"
        )
    else:
        message = (
            f"{se.ref} has no address for {scope} on port {port}: its match-all chain on 0.0.0.0:{port} "
            f"loses to {owner}'s, so non-HTTP traffic to its hosts goes to {owner}"
        )
    evidence = _istioctl_differs(se, port, istioctl, silenced)
    return finding("MP0401", message, [se.ref], istio=istioctl, evidence=evidence)


def _match_all_owner(snapshot: Snapshot, source: Source, se: ServiceEntry, port: int) -> str | None:
    """The ref owning the match-all chain on 0.0.0.0:port for this proxy, when `se` is in the
    proxy's scope with no address of its own there (None otherwise)."""
    scope = scope_for(snapshot, source)
    mine = [s for s in scope.by_port.get(port, ()) if s.resource is se]
    if not mine or not any(_unbound(scope.address_for(s)) for s in mine):
        return None
    owner = predict.port_owner(snapshot, source, port)
    return owner.ref if owner is not None else None


def _unbound(address: str) -> bool:
    return address == "0.0.0.0" or address.startswith(("0.0.0.0/", "::/"))


def _istioctl_differs(se: ServiceEntry, port: int, istioctl: bool, silenced: bool) -> list[str]:
    if istioctl:
        return []
    declared = next((p for p in se.ports if p.number == port), None)
    if se.status_addresses and se.resolution == "NONE":
        why = "status.addresses is set, but istiod never uses an allocated address for resolution NONE"
    elif se.status_addresses:
        why = "status.addresses is set, but proxies without DNS capture ignore the allocated address"
    elif silenced:
        why = "the mesh turns on DNS capture and auto-allocation, but a proxy can turn capture off"
    elif se.addresses:
        why = "the entry has addresses, but an all-covering CIDR binds nothing"
    elif declared is not None:
        why = f"istioctl looks only at ports with protocol TCP or unset, not {declared.protocol}"
    else:
        why = "its rule differs"
    return [f"istioctl analyze (IST0134) is silent here: {why}"]


def _mesh_allocates(snapshot: Snapshot) -> bool:
    """istioctl's test, to the letter: ``ISTIO_META_DNS_CAPTURE`` is ``"true"`` and
    ``ISTIO_META_DNS_AUTO_ALLOCATE`` or ``PILOT_ENABLE_IP_AUTOALLOCATE`` is ``"true"``."""
    meta = snapshot.mesh.default_config.proxy_metadata
    capture = str(meta.get("ISTIO_META_DNS_CAPTURE", "")) == "true"
    keys = ("ISTIO_META_DNS_AUTO_ALLOCATE", "PILOT_ENABLE_IP_AUTOALLOCATE")
    allocate = any(str(meta.get(k, "")) == "true" for k in keys)
    return capture and allocate


def conflicting_protocols(snapshot: Snapshot) -> list[Diagnosis]:
    """MP0402 (IST0177). Entries visible in one namespace that declare the same host and port with
    different protocols conflict: pilot keeps one listener shape for the port (``listener.go``
    conflict handling). Scopes come from ``exportTo`` (``*`` overlaps every namespace; the mesh's
    ``defaultServiceExportTo`` for entries without one; ``~`` is seen by nobody), hosts compare
    without letter case (Envoy lower-cases them).

    ``istio_code`` IST0177 exactly where istioctl's ``ConflictingServiceEntryProtocolAnalyzer``
    (``pkg/config/analysis/analyzers/serviceentry/conflictingserviceentries.go``) reports an entry:
    hosts compared as written, an empty ``exportTo`` counted as ``*`` whatever the mesh default, and
    ``~`` a scope of its own. An entry istioctl reports but no namespace sees in conflict is an info
    finding saying so; a conflict istioctl misses (hosts differing only in case, a mesh default)
    carries no ``istio_code`` (`docs/codes/MP0402.md`)."""
    istioctl = _istioctl_conflicts(snapshot.service_entries)
    by_key: dict[tuple[str, int], list[tuple[str, ServiceEntry]]] = defaultdict(list)
    for se in snapshot.service_entries:
        for host in dict.fromkeys(h.lower() for h in se.hosts):
            for port in se.ports:
                by_key[(host, port.number)].append((port.protocol or "(unset)", se))
    out = []
    reported: set[str] = set()
    for (host, number), declared in sorted(by_key.items()):
        clashing = {
            (pa, a.ref)
            for pa, a in declared
            for pb, b in declared
            if pa != pb and _scopes_overlap(_scope(snapshot, a), _scope(snapshot, b))
        }
        if not clashing:
            continue
        shown = ", ".join(f"{p} ({r})" for p, r in sorted(clashing))
        message = f"{host}:{number} is declared with several protocols: {shown}"
        refs = sorted({r for _, r in clashing})
        reported.update(refs)
        agreed = [r for r in refs if r in istioctl]
        missed = [r for r in refs if r not in istioctl]
        if agreed:
            out.append(finding("MP0402", message, agreed, istio=True))
        if missed:
            evidence = [
                "istioctl analyze (IST0177) does not report "
                f"{', '.join(missed)}: it compares hosts as written and counts an entry without "
                "exportTo as exported everywhere"
            ]
            out.append(finding("MP0402", message, missed, evidence=evidence))
    for ref, (host, number, protocols) in sorted(istioctl.items()):
        if ref in reported:
            continue
        message = (
            f"istioctl analyze reports {host}:{number} of {ref} as declared with several protocols "
            f"({protocols}), but no namespace sees those entries together: no conflict on any proxy"
        )
        out.append(finding("MP0402", message, [ref], istio=True, level="info"))
    return out


def _istioctl_conflicts(entries: Sequence[ServiceEntry]) -> dict[str, tuple[str, int, str]]:
    """The entries istioctl's IST0177 analyzer reports, each with (host, port, protocols)."""
    index: dict[tuple[str, str, int], list[tuple[str, ServiceEntry]]] = defaultdict(list)
    for se in entries:
        export = se.export_to
        scopes = {"*"} if not export or "*" in export else {se.namespace if e == "." else e for e in export}
        for scope in scopes:
            for host in se.hosts:
                for port in se.ports:
                    index[(scope, host, port.number)].append((port.declared.upper(), se))
    out: dict[str, tuple[str, int, str]] = {}
    for (scope, host, number), entries_ in sorted(index.items(), key=lambda kv: kv[0]):
        merged = entries_ + (index.get(("*", host, number), []) if scope != "*" else [])
        protocols = sorted({p for p, _ in merged})
        if len(protocols) < 2:
            continue
        for _, se in merged:
            out.setdefault(se.ref, (host, number, ", ".join(p or '""' for p in protocols)))
    return out


def _scope(snapshot: Snapshot, se: ServiceEntry) -> frozenset[str]:
    export = se.export_to or snapshot.mesh.default_service_export_to
    return frozenset(se.namespace if item == "." else item for item in export if item != "~")


def _scopes_overlap(a: frozenset[str], b: frozenset[str]) -> bool:
    return bool(a and b) and ("*" in a or "*" in b or bool(a & b))


def istioctl_on_rejected(snapshot: Snapshot, objects: Sequence[Resource]) -> list[Diagnosis]:
    """What istioctl analyze adds about entries admission rejects: its analyzers run on every
    object it reads, valid or not, so a rejected entry still gets IST0134, and it (and the entries
    it would conflict with) IST0177. Such an entry never reaches a proxy (MP0403 says why), so
    meshprobe repeats istioctl's message at level info only."""
    rejected_refs = {m.ref for m in snapshot.invalid}
    rejected = [o for o in objects if isinstance(o, ServiceEntry) and o.ref in rejected_refs]
    if not rejected:
        return []
    out = []
    silenced = _mesh_allocates(snapshot)
    for se in rejected:
        tcp = [p.number for p in se.ports if p.declared == "" or p.declared.upper() == "TCP"]
        if tcp and not (se.addresses or se.status_addresses or silenced):
            message = (
                f"{se.ref} declares port(s) {', '.join(map(str, tcp))} without addresses (istioctl analyze "
                "reports IST0134), but admission rejects the entry (MP0403): it never reaches a proxy"
            )
            out.append(finding("MP0401", message, [se.ref], istio=True, level="info"))
    valid = set(_istioctl_conflicts(snapshot.service_entries))
    every = _istioctl_conflicts([*snapshot.service_entries, *rejected])
    for ref, (host, number, protocols) in sorted(every.items()):
        if ref in valid:
            continue
        message = (
            f"istioctl analyze reports {host}:{number} of {ref} as declared with several protocols "
            f"({protocols}) counting an entry admission rejects (MP0403): no conflict on any proxy"
        )
        out.append(finding("MP0402", message, [ref], istio=True, level="info"))
    return out
