"""MP0112's fixes: the smallest patch of the object on the failing leg of the egress-gateway hop
(the host added to the Gateway's servers on the port, `tls.httpsRedirect` removed from its servers
on the port that hold the host, the subset added to the gateway's
DestinationRule or a new one as the egress-gateway tasks write it, the DR's TLS toward the gateway,
`resolution: DNS` on the entry). None where the object is not the application's (the gateway
Service). Istio behaviour: `diag/rules/mp0112.py`.
"""

from __future__ import annotations

import re
from typing import Any

from diag.model.resources import Gateway
from diag.model.snapshot import Snapshot, host_matches
from diag.predict.gateway_model import GatewayHop
from diag.rules import fixes
from diag.rules.base import Fix, RuleContext


def not_on_gateway(hop: GatewayHop) -> bool:
    """No VS bound to the Gateway has a host on the port (the `blackhole` vhost), or none covers the host."""
    return hop.reason == "no-vhost" or (
        hop.reason == "no-route" and (hop.vhost or "").startswith("blackhole:")
    )


def gateway_fix(snapshot: Snapshot | None, ctx: RuleContext, hop: GatewayHop) -> Fix | None:
    """Add the host to the Gateway, the subset to the DR, Istio mTLS to the DR's subset, or
    resolution DNS to the entry; none where the fix is not ours to write (the gateway Service)."""
    if snapshot is None:
        return None
    host = ctx.call.host.lower()
    if not_on_gateway(hop) and hop.gateway_ref:
        gw = next((g for g in snapshot.gateways if g.ref == hop.gateway_ref), None)
        if gw is not None:
            obj = fixes.patched(gw.raw, lambda o: _add_host(o, hop.port, host))
            return fixes.make_fix(f"add {host} to the port {hop.port} servers of {gw.ref}", [obj])
    if hop.reason == "tls-redirect" and hop.gateway_ref:
        found = _redirect_fix(snapshot, hop, host)
        if found is not None:
            return found
    dr = next((d for d in snapshot.destination_rules if d.ref == hop.destination_rule), None)
    if hop.reason == "subset-missing" and dr is not None:
        obj = fixes.patched(
            dr.raw, lambda o: o["spec"].setdefault("subsets", []).append({"name": hop.subset})
        )
        return fixes.make_fix(f"define subset {hop.subset} in {dr.ref}", [obj])
    if hop.reason == "subset-missing" and hop.destination_rule is None and hop.subset:
        obj = _gateway_rule(snapshot, ctx, hop)
        return fixes.make_fix(f"define subset {hop.subset} for {hop.service}: a new DestinationRule", [obj])
    if hop.reason == "tls-mismatch" and dr is not None and hop.server_tls == "ISTIO_MUTUAL":
        obj = fixes.patched(
            dr.raw, lambda o: _port_tls(o, hop.subset, hop.port, {"mode": "ISTIO_MUTUAL", "sni": host})
        )
        return fixes.make_fix(f"send Istio mTLS (SNI {host}) to the gateway: {dr.ref}", [obj])
    if hop.reason == "tls-mismatch" and dr is not None and hop.server_tls in ("", "PASSTHROUGH"):
        obj = fixes.patched(dr.raw, lambda o: _port_tls(o, hop.subset, hop.port, {"mode": "DISABLE"}))
        return fixes.make_fix(f"send the app's own bytes to the gateway's port {hop.port}: {dr.ref}", [obj])
    if hop.reason == "no-endpoints":
        se = next((s for s in snapshot.service_entries if s.ref == hop.destination), None)
        if se is not None:
            obj = fixes.patched(se.raw, lambda o: o["spec"].__setitem__("resolution", "DNS"))
            return fixes.make_fix(f"resolve {host} by DNS at the gateway: {se.ref}", [obj])
    return None


def _gateway_rule(snapshot: Snapshot, ctx: RuleContext, hop: GatewayHop) -> dict[str, Any]:
    """The DestinationRule the egress-gateway tasks write for the gateway Service: the subset, and
    Istio mTLS with the host as SNI on the port when the Gateway's server there is ISTIO_MUTUAL."""
    host = ctx.call.host.lower()
    namespace = (hop.mesh_virtual_service or "").rpartition(" ")[2].partition("/")[0] or ctx.source.namespace
    subset: dict[str, Any] = {"name": hop.subset}
    mtls = any(
        s.port.number == hop.port
        and s.tls_mode == "ISTIO_MUTUAL"
        and any(host_matches(h.rpartition("/")[2], host) for h in s.hosts)
        for g in snapshot.gateways
        for s in g.servers
    )
    if mtls:
        tls = {"mode": "ISTIO_MUTUAL", "sni": host}
        subset["trafficPolicy"] = {"portLevelSettings": [{"port": {"number": hop.port}, "tls": tls}]}
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {
            "name": f"egressgateway-for-{re.sub(r'[^a-z0-9]+', '-', host).strip('-')[:40]}",
            "namespace": namespace,
        },
        "spec": {"host": hop.service, "subsets": [subset]},
    }


def _add_host(obj: dict[str, Any], port: int, host: str) -> None:
    for server in obj["spec"]["servers"]:
        if (server.get("port") or {}).get("number") == port and host not in server.setdefault("hosts", []):
            server["hosts"].append(host)


def redirecting(snapshot: Snapshot, hop: GatewayHop, host: str) -> list[Gateway]:
    """The Gateways selecting the hop's gateway (its Gateway's selector: the plaintext servers of a
    port share one route configuration) with a server on the port that holds the host and redirects."""
    first = next((g for g in snapshot.gateways if g.ref == hop.gateway_ref), None)
    if first is None:
        return []
    same = [g for g in snapshot.gateways if g is first or (g.selector and g.selector == first.selector)]
    return [g for g in same if _without_redirect(g, hop.port, host) != fixes.clean(g.raw)]


def _without_redirect(gw: Gateway, port: int, host: str) -> dict[str, Any]:
    return fixes.patched(gw.raw, lambda o: _drop_redirect(o, port, host))


def _redirect_fix(snapshot: Snapshot, hop: GatewayHop, host: str) -> Fix | None:
    """Each redirecting Gateway with `httpsRedirect` removed from those servers."""
    gws = redirecting(snapshot, hop, host)
    if not gws:
        return None
    refs = ", ".join(g.ref for g in gws)
    summary = f"stop redirecting plaintext HTTP to https for {host} on port {hop.port}: {refs}"
    return fixes.make_fix(summary, [_without_redirect(g, hop.port, host) for g in gws])


def _holds(server: dict[str, Any], host: str) -> bool:
    names = [str(h).rpartition("/")[2].lower() for h in server.get("hosts") or ()]
    return any(host_matches(n, host) or host_matches(host, n) for n in names)


def _drop_redirect(obj: dict[str, Any], port: int, host: str) -> None:
    for server in obj["spec"]["servers"]:
        tls = server.get("tls")
        on_port = (server.get("port") or {}).get("number") == port
        if not on_port or not isinstance(tls, dict) or not _holds(server, host):
            continue
        tls.pop("httpsRedirect", None)
        if not tls:
            del server["tls"]


def _port_tls(obj: dict[str, Any], subset: str, port: int, tls: dict[str, str]) -> None:
    """`tls` for the port on the subset (or on the whole DR without a subset)."""
    spec = obj["spec"]
    subsets = spec.get("subsets") or []
    target = next((s for s in subsets if s.get("name") == subset), None) if subset else None
    holder = target if target is not None else spec
    policy = holder.setdefault("trafficPolicy", {})
    levels = [p for p in policy.get("portLevelSettings") or [] if (p.get("port") or {}).get("number") != port]
    levels.append({"port": {"number": port}, "tls": tls})
    policy["portLevelSettings"] = levels
