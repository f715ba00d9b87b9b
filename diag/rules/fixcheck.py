"""Every fix is checked before it is offered: applied to the config and re-predicted.

A fix is withheld (the diagnosis keeps its message and says why there is no fix) when

- it writes an address meshprobe does not know — one neither in the input config nor given or
  observed for the call (a stand-in ClusterIP, an assumed resolution): fixes never invent facts;
- applied to the config, it changes the predicted path (verdict or Envoy decision) of another call
  — another target of the report, or a host:port the config declares that shares a host or port
  with the fix — or stops a TLS origination: a plain-HTTP call whose cluster a DestinationRule gave
  ``SIMPLE``/``MUTUAL`` upstream TLS loses it (e.g. ``tls: DISABLE`` on 443 for a host whose port 80
  a VirtualService sends to 443 with origination, as in Istio's
  ``samples/bookinfo/networking/egress-rule-google-apis.yaml``).

Calls to the fixed target's own host and port, and to the host:ports a fix registers with a new
entry (what it is written for), are not "other" calls; another port of the target's host may open
with it (the entry is the same), but must not lose a TLS origination. The report's targets are all
checked; of the declared calls, the fixed host's and the hosts the fix names come first, then the
other services on its ports, `MAX_CALLS` in all. The "before" side is the snapshot itself, whose
per-proxy caches are already built; the fixed config is an overlay of it (`diag.rules.overlay`:
only the index entries of the replaced objects change), whose proxy scope and listeners are built
anew for the calls checked. The config's addresses are collected only for a fix that writes one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from diag.model.loader import load_documents
from diag.model.resources import HTTP_FAMILY, TLS_FAMILY, Namespace, Resource, Service, ServiceEntry
from diag.model.snapshot import MeshService, Snapshot
from diag.predict.model import Call, Prediction, Source
from diag.predict.sidecar import predict
from diag.rules.base import Diagnosis, Fix
from diag.rules.overlay import overlay

ORIGINATING = ("SIMPLE", "MUTUAL", "ISTIO_MUTUAL")
MAX_CALLS = 50  # declared calls re-predicted per fix (the report's targets always count)


@dataclass(frozen=True)
class Verdict:
    """Why a fix is withheld ("" = it is safe to offer)."""

    reason: str = ""


def check_diagnoses(
    diagnoses: Sequence[Diagnosis],
    snapshot: Snapshot,
    source: Source,
    call: Call,
    *,
    known_addresses: Iterable[str] = (),
    report_calls: Sequence[Call] = (),
) -> list[Diagnosis]:
    """The diagnoses with every unsafe fix removed and the reason added to the evidence."""
    out: list[Diagnosis] = []
    checked: dict[str, Verdict] = {}
    for d in diagnoses:
        if d.fix is None:
            out.append(d)
            continue
        verdict = checked.get(d.fix.yaml)
        if verdict is None:
            verdict = checked[d.fix.yaml] = check_fix(
                d.fix, snapshot, source, call, known_addresses=known_addresses, report_calls=report_calls
            )
        if verdict.reason:
            out.append(replace(d, fix=None, evidence=(*d.evidence, f"no fix offered: {verdict.reason}")))
        else:
            out.append(d)
    return out


def check_fix(
    fix: Fix,
    snapshot: Snapshot,
    source: Source,
    call: Call,
    *,
    known_addresses: Iterable[str] = (),
    report_calls: Sequence[Call] = (),
) -> Verdict:
    """Apply `fix` to the snapshot's objects and compare predictions (see the module docstring)."""
    loaded = load_documents(fix.objects, "fix")
    if loaded.problems or not loaded.objects or any(_rejected(o) for o in loaded.objects):
        return Verdict("the change it needs does not load as a valid object")
    invented = _invented_addresses(loaded.objects, snapshot, known_addresses)
    if invented:
        return Verdict(
            f"it would need an address meshprobe does not know ({', '.join(invented)}): give the "
            "destination's real addresses (probe it from the pod, or its published ranges)"
        )
    hosts, ports = _touched(loaded.objects, snapshot)
    # The snapshot's objects are valid already and the fix's were just validated; the original
    # snapshot keeps its caches (the proxy's scope and listeners) for the "before" side, and the
    # "after" side is an overlay of it: only the index entries of the replaced objects change.
    before_snap = snapshot
    after_snap = overlay(snapshot, loaded.objects, lambda: _objects(snapshot))
    subject = {(call.host.lower(), call.port)} | _new_entries(loaded.objects, snapshot)
    for other in _calls(before_snap, after_snap, hosts, ports, report_calls, call.host.lower()):
        if (other.host.lower(), other.port) in subject:
            continue
        was = predict(before_snap, source, other)
        now = predict(after_snap, source, other)
        # Another port of the target's own host may open with it (the entry is the same); losing
        # a TLS origination is never a side effect to accept.
        same_host = other.host.lower() == call.host.lower()
        reason = _difference(other, was, now, verdicts=not same_host)
        if reason:
            return Verdict(reason)
    return Verdict()


def _rejected(obj: Resource) -> bool:
    from diag.model.validation import validate

    return any(m.level == "error" for m in validate(obj))


def _new_entries(objects: Sequence[Resource], snapshot: Snapshot) -> set[tuple[str, int]]:
    """The host:ports a fix registers with a *new* entry: what it is written for (e.g. the blocked
    host of a redirect), so their change is the point, not a side effect."""
    existing = {o.ref for o in snapshot.service_entries}
    return {
        (h.lower(), p.number)
        for o in objects
        if isinstance(o, ServiceEntry) and o.ref not in existing
        for h in o.hosts
        for p in o.ports
    }


def _difference(call: Call, was: Prediction, now: Prediction, *, verdicts: bool = True) -> str:
    what = f"{call.protocol}://{call.host}:{call.port}"
    if verdicts and (was.verdict, was.envoy) != (now.verdict, now.envoy):
        return f"it would also change {what} from {was.verdict} ({was.envoy}) to {now.verdict} ({now.envoy})"
    before_tls = was.upstream_tls.mode if was.upstream_tls else "NONE"
    after_tls = now.upstream_tls.mode if now.upstream_tls else "NONE"
    if call.protocol == "http" and before_tls in ORIGINATING and after_tls != before_tls:
        by = was.upstream_tls.decided_by if was.upstream_tls else None
        return (
            f"it would break the TLS origination of {what} ({before_tls} upstream TLS from {by}, "
            f"routed to {was.envoy})"
        )
    return ""


def _objects(snapshot: Snapshot) -> list[Resource]:
    return [
        *snapshot.service_entries,
        *snapshot.services,
        *snapshot.sidecars,
        *snapshot.destination_rules,
        *snapshot.virtual_services,
        *snapshot.gateways,
        *snapshot.namespaces.values(),
        *snapshot.pods,
        *snapshot.proxy_configs,
        *snapshot.envoy_filters,
        *snapshot.wasm_plugins,
        *snapshot.control_planes,
    ]


def _invented_addresses(objects: Sequence[Resource], snapshot: Snapshot, known: Iterable[str]) -> list[str]:
    """Addresses a fix writes that are neither in the input config nor known for the call."""
    written = [
        a
        for obj in objects
        if isinstance(obj, ServiceEntry)
        for a in (*obj.addresses, *(ep.address for ep in obj.endpoints))
        if _is_address(a)
    ]
    if not written:  # most fixes write none: the config's addresses are not needed
        return []
    allowed = {_ip_text(a) for a in known} | _config_addresses(snapshot)
    return sorted({a for a in written if _ip_text(a) not in allowed})


def _config_addresses(snapshot: Snapshot) -> set[str]:
    """Every address and endpoint address of the input's entries, in one spelling (once per snapshot)."""
    cached = snapshot.cache.get("fixcheck-addresses")
    if isinstance(cached, set):
        return cached
    found: set[str] = set()
    for se in snapshot.service_entries:
        found.update(_ip_text(a) for a in se.addresses)
        found.update(_ip_text(ep.address) for ep in se.endpoints)
    snapshot.cache["fixcheck-addresses"] = found
    return found


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def _ip_text(text: str) -> str:
    """An IP or CIDR in one spelling (`1.2.3.4/32` is `1.2.3.4`)."""
    try:
        net = ipaddress.ip_network(text.strip("[]"), strict=False)
    except ValueError:
        return text
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


def _touched(objects: Sequence[Resource], snapshot: Snapshot) -> tuple[set[str], set[int]]:
    """Hosts and ports a fix can affect: the hosts it names (entries, DestinationRule, Sidecar
    imports, a Namespace's services) and every port those hosts declare."""
    hosts: set[str] = set()
    for obj in objects:
        raw_spec = obj.raw.get("spec") if isinstance(obj.raw, Mapping) else None
        spec: Mapping[str, Any] = raw_spec if isinstance(raw_spec, Mapping) else {}
        hosts.update(str(h).lower() for h in spec.get("hosts") or () if isinstance(h, str))
        if isinstance(spec.get("host"), str):
            hosts.add(spec["host"].lower())
        for egress in spec.get("egress") or ():
            if isinstance(egress, Mapping):
                hosts.update(str(h).split("/", 1)[-1].lower() for h in egress.get("hosts") or ())
        if isinstance(obj, Namespace):
            hosts.update(s.host for s in snapshot.mesh_services if s.namespace == obj.name)
    ports: set[int] = set()
    for obj in objects:
        if isinstance(obj, (ServiceEntry, Service)):
            ports.update(p.number for p in obj.ports)
    for host in list(hosts):
        for svc in snapshot.services_for_host(host) if "*" not in host else ():
            ports.update(p.number for p in svc.ports)
    return hosts, ports


def _calls(
    before: Snapshot,
    after: Snapshot,
    hosts: set[str],
    ports: set[int],
    report_calls: Sequence[Call],
    target_host: str,
) -> list[Call]:
    """The report's other targets, then each declared host:port of the affected part: the target's
    own host and the hosts the fix names first, then the other services on its ports (capped)."""
    out: list[Call] = list(report_calls)
    seen: set[tuple[str, int, str]] = {(c.host.lower(), c.port, c.protocol) for c in out}
    close_hosts = hosts | {target_host}
    named: list[Call] = []
    # The named hosts' services come from the host index (in the snapshot's order); a "close" and
    # an "other" call never share a key, so the two lists are filled apart, and the scan for the
    # others stops once the cap is reached.
    for snap in (before, after):
        found = [s for h in close_hosts for s in snap.exact_host.get(h, ())]
        order = _positions(snap) if len(close_hosts) > 1 else {}
        for svc in sorted(found, key=lambda s: order.get(id(s), 0)):
            named += _declared_calls(svc, None, seen)
    others: list[Call] = []
    for snap in (before, after):
        for svc in snap.mesh_services:
            if len(others) >= MAX_CALLS - len(named):
                break
            if svc.host not in close_hosts:
                others += _declared_calls(svc, ports, seen)
    return out + (named + others)[:MAX_CALLS]


def _declared_calls(svc: MeshService, ports: set[int] | None, seen: set[tuple[str, int, str]]) -> list[Call]:
    """A call per declared port of ``svc`` (of ``ports`` unless None) and protocol not seen yet."""
    if svc.is_wildcard or svc.resolution == "ALIAS":
        return []
    made: list[Call] = []
    for port in svc.ports:
        if ports is not None and port.number not in ports:
            continue
        for protocol in _protocols(port.protocol):
            key = (svc.host, port.number, protocol)
            if key in seen:
                continue
            seen.add(key)
            address = svc.ip_addresses[0] if svc.ip_addresses and not svc.assumed_address else None
            made.append(Call(host=svc.host, port=port.number, protocol=protocol, address=address))
    return made


def _positions(snapshot: Snapshot) -> dict[int, int]:
    """Each service's place in the snapshot's order (once per snapshot)."""
    cached = snapshot.cache.get("fixcheck-positions")
    if not isinstance(cached, dict):
        cached = {id(s): i for i, s in enumerate(snapshot.mesh_services)}
        snapshot.cache["fixcheck-positions"] = cached
    return cached


def _protocols(protocol: str) -> tuple[str, ...]:
    """What clients of a declared port speak: HTTP-family → http; TLS/HTTPS → https; else tcp."""
    if protocol in HTTP_FAMILY:
        return ("http",)
    if protocol in TLS_FAMILY:
        return ("https",)
    if protocol == "":
        return ("http", "tcp")
    return ("tcp",)
