"""Side questions the diagnosis rules ask, answered from the snapshot's and scope's indexes.

- `candidates`: services whose host matches a name whatever their visibility, with the check that
  hides them (discoverySelectors → MP0115, exportTo → MP0104, Sidecar import → MP0105) and whether
  the port is declared (MP0102).
- `near_names`: entries for a name close to the target (MP0113): a wildcard that does not cover
  the apex (`host.Name.Matches`), a sibling under the same parent, the apex of a subdomain, a
  trailing dot (Istio does not strip it), a host written with capitals in config.
- `port_owner`: the service owning a match-all chain on `0.0.0.0:port` (MP0107; `listener.go`
  `buildListenerFromEntry`: a match-all chain captures every destination on the port).
- `bound_addresses`: where this proxy's listener for (host, port) is bound (MP0114).
- `dns_answer`, `upstream_tls`, `destination_rule_for`, `virtual_services_for`.
"""

from __future__ import annotations

from diag.model.resources import DestinationRule, VirtualService
from diag.model.snapshot import MeshService, Snapshot
from diag.predict.listeners import listeners_for_port
from diag.predict.model import Candidate, NearName, PortOwner, Source, UpstreamTls
from diag.predict.routes import destination_rule, dns_answer_for, upstream_tls_for
from diag.predict.scope import WILDCARD, mesh_virtual_services, scope_for
from diag.predict.visibility import service_visible


def candidates(
    snapshot: Snapshot, host: str, source: Source | None = None, port: int | None = None
) -> tuple[Candidate, ...]:
    """Services whose host matches `host` (exact or wildcard), visible or not, with why."""
    out: list[Candidate] = []
    seen: set[tuple[str, str]] = set()
    for svc in snapshot.services_for_host(host):
        key = (svc.ref, svc.host)
        if key in seen:
            continue
        seen.add(key)
        visible = service_visible(snapshot, svc, source.namespace, source.labels) if source else None
        out.append(
            Candidate(
                service=svc,
                host_match="wildcard" if svc.is_wildcard else "exact",
                visible=visible,
                port_declared=(svc.port(port) is not None) if port is not None else None,
            )
        )
    return tuple(out)


def _parent_index(snapshot: Snapshot) -> dict[str, list[MeshService]]:
    cached = snapshot.cache.get("parent-index")
    if isinstance(cached, dict):
        return cached
    index: dict[str, list[MeshService]] = {}
    for host, services in snapshot.exact_host.items():
        parent = host.split(".", 1)[1] if "." in host else ""
        index.setdefault(parent, []).extend(services)
    snapshot.cache["parent-index"] = index
    return index


def near_names(snapshot: Snapshot, host: str) -> tuple[NearName, ...]:
    """Entries for names close to `host`: wildcard without apex, siblings, trailing dot, apex, case."""
    name = host.lower()
    out: list[NearName] = []
    if name.endswith("."):
        out += [
            NearName(service=s, relation="trailing-dot") for s in snapshot.services_for_host(name.rstrip("."))
        ]
        name = name.rstrip(".")
    out += [NearName(service=s, relation="wildcard-not-apex") for s in snapshot.wildcard_suffix.get(name, ())]
    parent = name.split(".", 1)[1] if "." in name else ""
    if parent.count(".") >= 1:
        out += [NearName(service=s, relation="parent") for s in snapshot.exact_host.get(parent, ())]
        siblings = [s for s in _parent_index(snapshot).get(parent, ()) if s.host != name]
        out += [NearName(service=s, relation="sibling") for s in siblings[:20]]
    for svc in snapshot.services_for_host(name):
        written = [h for h in getattr(svc.resource, "hosts", ()) if h.lower() == svc.host]
        if any(h != h.lower() for h in written):
            out.append(NearName(service=svc, relation="case"))
    unique: dict[tuple[str, str, str], NearName] = {}
    for item in out:
        unique.setdefault((item.service.ref, item.service.host, item.relation), item)
    return tuple(unique.values())


def port_owner(snapshot: Snapshot, source: Source, port: int) -> PortOwner | None:
    """The service whose match-all chain owns `0.0.0.0:port` for this proxy (capture), if any."""
    scope = scope_for(snapshot, source)
    listener = listeners_for_port(scope, port).get(WILDCARD)
    if listener is None:
        return None
    chains, default = listener.finalized()
    candidates_ = [default] if default is not None else []
    candidates_ += [c for c in chains if c.match_all or _all_cidr(c.cidrs)]
    for chain in candidates_:
        if chain is None or chain.cluster is None or chain.service is None:
            continue
        svc = chain.service
        declared = svc.port(port)
        if chain.cidrs:
            reason = "cidr-all"
        elif declared is not None and declared.family == "auto":
            reason = "auto-no-address"
        else:
            reason = "tcp-no-address"
        return PortOwner(service=svc, port=port, reason=reason, cluster=chain.cluster)
    return None


def _all_cidr(cidrs: tuple[str, ...]) -> bool:
    return bool(cidrs) and all(c.startswith(("0.0.0.0", "::/")) for c in cidrs)


def bound_addresses(snapshot: Snapshot, source: Source, host: str, port: int) -> tuple[str, ...]:
    """Where the listener for (host, port) is bound for this proxy: IPs, CIDRs, or ("0.0.0.0",)."""
    scope = scope_for(snapshot, source)
    out: list[str] = []
    for svc in scope.by_host.get(host.lower(), ()):
        declared = svc.port(port)
        if declared is None:
            continue
        if declared.family == "http":
            out.append(WILDCARD)
        else:
            out.append(scope.address_for(svc))
    return tuple(dict.fromkeys(out))


def dns_answer(snapshot: Snapshot, source: Source, host: str) -> tuple[str, ...] | None:
    """What the agent's DNS proxy answers for `host` (None: no capture, or not in its table)."""
    return dns_answer_for(scope_for(snapshot, source), host)


def upstream_tls(snapshot: Snapshot, source: Source, service: MeshService, port: int) -> UpstreamTls:
    """Upstream TLS of the service's cluster on `port` (user DR wins; auto-mTLS rules)."""
    return upstream_tls_for(snapshot, scope_for(snapshot, source), service, port)


def destination_rule_for(snapshot: Snapshot, source: Source, host: str) -> DestinationRule | None:
    """The DR pilot applies for `host` from this source (client ns → service ns → root ns)."""
    return destination_rule(snapshot, scope_for(snapshot, source), host)


def virtual_services_for(snapshot: Snapshot, source: Source, host: str) -> tuple[VirtualService, ...]:
    """Mesh-bound VirtualServices visible to the source whose hosts cover `host`."""
    return tuple(mesh_virtual_services(scope_for(snapshot, source), host.lower()))
