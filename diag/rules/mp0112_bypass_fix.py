"""MP0112's bypass fix: the smallest patch of the VirtualService that sends this call through the
egress gateway the way its existing mesh route sends the host's other calls.

Istio behaviour relied on: a sidecar applies a VirtualService only when it is bound to `mesh`
(`gateways` empty or listing `mesh`), and a route's match item only when its port fits the call
and its own `gateways` include `mesh` or, listing none, its source labels and namespace fit the
caller (`pilot/pkg/networking/core/route/route.go` `sourceMatchHTTP` for http
routes; `pilot/pkg/networking/core/tls.go` `matchTLS` and `matchTCP` for tls routes, which also
need the SNI among `sniHosts`, and tcp routes). Match items of one rule are ORed
(`route.go` `BuildHTTPRoutesForVirtualService` builds a route per item), so one more item on the
mesh rule that already targets the gateway sends the call to the same egress-gateway Service,
subset and port, with the rule's other settings, and changes no call that matched before.

The patches tried, smallest first: `mesh` added to `gateways` (when a match item names `mesh`
but the VirtualService is not bound to it), then a match item for the call's port (with
`sniHosts: [host]` for a tls rule, and `gateways: [mesh]` when the VirtualService is also bound
to a Gateway) on each mesh rule of the call's protocol family (the section the port's declared
protocol selects: http, tls or tcp) that targets an egress gateway's Service. Each is applied to
the config and re-predicted: it is offered only when the call is then predicted through the
gateway, allowed there, and every other declared port of the host keeps its prediction or now goes
through the gateway too. Otherwise no fix, and the diagnosis says why.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from diag.model.loader import load_documents
from diag.model.resources import HTTP_FAMILY, TLS_FAMILY, Resource, RouteRule, VirtualService
from diag.model.snapshot import Snapshot
from diag.predict.gateway import with_gateway
from diag.predict.gateway_workload import gateway_for_cluster
from diag.predict.model import Call, Prediction, Source
from diag.predict.scope import resolve_short_host
from diag.predict.sidecar import predict
from diag.rules import fixes
from diag.rules.base import Fix
from diag.rules.fixcheck import _objects as fixcheck_objects
from diag.rules.overlay import overlay

NOT_THROUGH = "re-predicts this call through the gateway"
FAMILY = {"http": "http", "https": "tls", "tls": "tls", "tcp": "tcp"}
"""The VirtualService section a sidecar matches a call of each protocol against."""


@dataclass(frozen=True)
class BypassFix:
    """The fix, or None with why none is offered."""

    fix: Fix | None
    why: str = ""


@dataclass(frozen=True)
class _Candidate:
    vs: VirtualService
    summary: str
    obj: dict[str, Any]


def bypass_fix(snapshot: Snapshot, source: Source, call: Call, bound: list[VirtualService]) -> BypassFix:
    """The first candidate patch (smallest first) that re-predicts the call through the gateway."""
    family = _family(snapshot, call)
    candidates = list(_candidates(snapshot, call, bound, family))
    if not candidates:
        if not any(_gateway_rules(snapshot, vs, kind) for vs in bound for kind in ("http", "tls", "tcp")):
            return BypassFix(None, "no mesh route of the VirtualService targets the egress gateway to copy")
        return BypassFix(None, f"no {family} mesh route of the VirtualService targets the egress gateway "
                               f"to copy for this {call.protocol} call")  # fmt: skip
    changes = []
    for cand in candidates:
        problem = _problem(snapshot, source, call, cand.obj)
        if not problem:
            return BypassFix(fixes.make_fix(cand.summary, [cand.obj]))
        changes += [problem] if problem != NOT_THROUGH else []
    if changes:
        return BypassFix(None, f"the patch that sends this call through the gateway {changes[-1]}")
    return BypassFix(None, f"no patch of the VirtualService {NOT_THROUGH}")


def _candidates(
    snapshot: Snapshot, call: Call, bound: list[VirtualService], family: str
) -> Iterator[_Candidate]:
    host = call.host.lower()
    for vs in bound:
        add_mesh = not vs.binds_mesh
        rules = _gateway_rules(snapshot, vs, family)
        if add_mesh and any(_names_mesh(rule) for _, rule in rules):
            obj = fixes.patched(vs.raw, _add_mesh)
            yield _Candidate(vs, f"bind {vs.ref} to mesh: its mesh route then applies to sidecars", obj)
        for index, rule in rules:
            if not rule.match:  # it matches every call of the VS already: nothing to add
                continue
            item = _match_item(vs, family, call.port, host)
            obj = fixes.patched(
                vs.raw, partial(_add_item, family=family, index=index, item=item, add_mesh=add_mesh)
            )
            where = f"{family}[{index}]" + (f" ({rule.name})" if rule.name else "")
            also = " and bind it to mesh" if add_mesh else ""
            yield _Candidate(vs, f"route port {call.port} of {host} through the egress gateway like "
                                 f"{vs.ref} {where}: one more mesh match{also}", obj)  # fmt: skip


def _family(snapshot: Snapshot, call: Call) -> str:
    """The section the sidecar matches the call against: by the protocol the host declares for the
    port (an HTTP port's http routes, a TLS/HTTPS port's tls routes, else tcp), else the call's."""
    declared = {p.protocol for s in snapshot.services_for_host(call.host.lower()) for p in s.ports
                if p.number == call.port}  # fmt: skip
    return _section(declared.pop() if len(declared) == 1 else "", call)


def _section(declared: str, call: Call) -> str:
    """http for an HTTP-family port, tls for HTTPS/TLS, tcp for any other declared protocol; the
    call's own protocol decides for an undeclared one."""
    if not declared:
        return FAMILY.get(call.protocol, "tcp")
    return "http" if declared in HTTP_FAMILY else "tls" if declared in TLS_FAMILY else "tcp"


def _gateway_rules(snapshot: Snapshot, vs: VirtualService, kind: str) -> list[tuple[int, RouteRule]]:
    """The VS's rules of `kind` meant for the mesh (a match item naming `mesh`, or none naming a
    gateway in a VS bound to mesh) whose destinations include an egress gateway's Service."""
    rules = {"http": vs.http, "tls": vs.tls, "tcp": vs.tcp}[kind]
    out = []
    for index, rule in enumerate(rules):
        for_mesh = _names_mesh(rule) or (
            vs.binds_mesh and (not rule.match or any(not m.get("gateways") for m in rule.match))
        )
        if for_mesh and rule.destinations and any(_to_gateway(snapshot, vs, d) for d in rule.destinations):
            out.append((index, rule))
    return out


def _names_mesh(rule: RouteRule) -> bool:
    return any("mesh" in (m.get("gateways") or ()) for m in rule.match)


def _to_gateway(snapshot: Snapshot, vs: VirtualService, dest: Any) -> bool:
    name = resolve_short_host(dest.host, vs.namespace, snapshot.mesh.domain_suffix)
    return gateway_for_cluster(snapshot, f"outbound|{dest.port or 80}||{name}") is not None


def _match_item(vs: VirtualService, family: str, port: int, host: str) -> dict[str, Any]:
    item: dict[str, Any] = {}
    if any(g != "mesh" for g in vs.gateways):  # keep the item off the Gateway's own routes
        item["gateways"] = ["mesh"]
    item["port"] = port
    if family == "tls":
        item["sniHosts"] = [host]
    return item


def _add_mesh(obj: dict[str, Any]) -> None:
    gateways = obj["spec"].setdefault("gateways", [])
    if "mesh" not in gateways:
        gateways.append("mesh")


def _add_item(obj: dict[str, Any], *, family: str, index: int, item: dict[str, Any], add_mesh: bool) -> None:
    if add_mesh:
        _add_mesh(obj)
    rule = obj["spec"][family][index]
    rule.setdefault("match", []).append(copy.deepcopy(item))


def _problem(snapshot: Snapshot, source: Source, call: Call, obj: dict[str, Any]) -> str:
    """ "" when the call is re-predicted through an egress gateway that lets it out and every other
    declared port of its host keeps its prediction or now goes through the gateway as well; else
    what goes wrong."""
    loaded = load_documents([obj], "fix")
    if loaded.problems or not loaded.objects:
        return NOT_THROUGH
    after = overlay(snapshot, loaded.objects, lambda: _objects(snapshot))
    if not _through(after, source, call):
        return NOT_THROUGH
    ports = {p.number: p.protocol for s in snapshot.services_for_host(call.host.lower()) for p in s.ports}
    for port, declared in sorted(ports.items()):
        if port == call.port:
            continue
        protocol = {"http": "http", "tls": "https", "tcp": "tcp"}[_section(declared, call)]
        other = Call(host=call.host, port=port, protocol=protocol, address=call.address)
        was, now = predict(snapshot, source, other), predict(after, source, other)
        if (was.verdict, was.envoy) != (now.verdict, now.envoy) and not _through(after, source, other, now):
            return f"would also change port {port} of {call.host} from {was.envoy} to {now.envoy}"
    return ""


def _through(snapshot: Snapshot, source: Source, call: Call, prediction: Prediction | None = None) -> bool:
    found = with_gateway(snapshot, source, call, prediction or predict(snapshot, source, call))
    hop = found.gateway
    return found.verdict == "allowed" and hop is not None and hop.verdict == "allowed" and not hop.reason


def _objects(snapshot: Snapshot) -> list[Resource]:
    return fixcheck_objects(snapshot)
