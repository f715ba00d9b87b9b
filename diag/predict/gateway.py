"""The second hop: what an egress gateway does with a call a sidecar sends to it.

`gateway_for_cluster(snapshot, cluster)` (`diag.predict.gateway_workload`) says whether a sidecar cluster
(`outbound|<port>|<subset>|<host>`) leads to an egress gateway — a Kubernetes Service selecting the
pods a Gateway selects, or Istio's default `istio-egressgateway.istio-system` (then *inferred* when
no such Service is in the input). `predict_gateway(snapshot, gateway, call, source, cluster=...)`
follows the hop as istiod configures it and Envoy runs it, stopping at the first failure:

1. the sidecar's cluster: a subset needs a DestinationRule defining it, else the sidecar has no
   such cluster (`pilot/pkg/networking/core/cluster.go` builds subset clusters from the DR only):
   503 NC; the port must be a port of the gateway Service (istioctl analyze IST0162);
2. a Gateway server on that port (the listener is `0.0.0.0_<target port>`,
   `pilot/pkg/networking/core/gateway.go` `buildGatewayListeners`);
3. sidecar→gateway TLS (`pilot/pkg/networking/core/cluster_tls.go`: a DestinationRule's tls wins;
   auto-mTLS only toward endpoints labelled `security.istio.io/tlsMode: istio`, which gateway pods
   are not unless labelled so; ISTIO_MUTUAL without `sni` sends `outbound_.<port>_.<subset>_.<host>`)
   against the server's tls mode: an ISTIO_MUTUAL server takes only Istio mTLS whose SNI a server
   host covers; a plaintext or PASSTHROUGH server takes the app's own bytes;
4. AuthorizationPolicies selecting the gateway (`diag.predict.gateway_authz`), against the
   caller's identity `<trust domain>/ns/<ns>/sa/<service account>` when the server terminates
   Istio mTLS;
5. the gateway's route (`diag.predict.gateway_routes`) and the service behind its cluster
   (resolution NONE: no endpoints).

`with_gateway(snapshot, source, call, prediction)` returns the sidecar prediction with this hop in
`Prediction.gateway` (None when the path does not go through a gateway); the sidecar's own
`verdict` stays the sidecar's.
"""

from __future__ import annotations

from dataclasses import replace

from diag.model.snapshot import Snapshot
from diag.predict.gateway_authz import Request, evaluate, policies_for
from diag.predict.gateway_model import GatewayHop, GatewayWorkload
from diag.predict.gateway_routes import GatewayRoute, destination, http_route, l4_route
from diag.predict.gateway_workload import (
    MTLS,
    TERMINATING,
    as_configured,
    gateway_for_cluster,
    https_redirect,
    pick_server,
    port_servers,
    service_account,
    sidecar_tls,
)
from diag.predict.model import Call, Prediction, Source
from diag.predict.routes import destination_rule
from diag.predict.scope import scope_for

LOCAL, RELAYED = "local-sidecar", "via-route"
# What an HTTP client sees per failure, and from which hop (TLS/TCP clients see a closed connection).
HTTP_SEEN = {
    "subset-missing": ("ENVOY_503_NO_CLUSTER", LOCAL),
    "port-not-on-service": ("ENVOY_503_NO_CLUSTER", LOCAL),
    "no-server": ("ENVOY_503_UPSTREAM", LOCAL),
    "tls-mismatch": ("ENVOY_503_UPSTREAM", LOCAL),
    "no-filter-chain": ("ENVOY_503_UPSTREAM", LOCAL),
    "no-vhost": ("ENVOY_404_NR", RELAYED),
    "no-route": ("ENVOY_404_NR", RELAYED),
    "no-cluster": ("ENVOY_503_NO_CLUSTER", RELAYED),
    "no-endpoints": ("ENVOY_503_UPSTREAM", RELAYED),
    "denied": ("ENVOY_403_RBAC", RELAYED),
    "tls-redirect": ("HTTP_STATUS", RELAYED),  # the gateway's 301 to https
}


def predict_gateway(
    snapshot: Snapshot,
    gateway: GatewayWorkload,
    call: Call,
    source: Source,
    *,
    cluster: str | None = None,
    mesh_vs: str | None = None,
    client_tls: tuple[str, str] | None = None,
) -> GatewayHop:
    """The gateway hop for `call`, sent by `source`'s sidecar to `cluster` (None: the cluster the
    sidecar is predicted to pick; see the module docstring). `client_tls`: (mode, SNI) of a caller
    that is no sidecar (its own TLS instead of the sidecar cluster's)."""
    if cluster is None:
        from diag.predict.sidecar import predict

        sidecar = predict(snapshot, source, call)
        cluster = sidecar.path.cluster or f"outbound|{call.port}||{gateway.host}"
        mesh_vs = mesh_vs or next((m for m in sidecar.matched if m.startswith("VirtualService ")), None)
    _, port_text, subset, _ = cluster.split("|")
    port = int(port_text) if port_text.isdigit() else call.port
    hop = GatewayHop(
        gateway=gateway.name,
        service=gateway.host,
        port=port,
        subset=subset,
        verdict="allowed",
        inferred=gateway.inferred,
        mesh_virtual_service=mesh_vs,
    )
    if client_tls is not None:
        (mode, sni), dr = client_tls, None
    else:
        mode, sni, dr = sidecar_tls(snapshot, source, gateway, port, subset)
    hop = replace(hop, sidecar_tls=mode)
    gw_dr = destination_rule(snapshot, scope_for(snapshot, source), gateway.host)
    if subset and (gw_dr is None or subset not in {s.name for s in gw_dr.subsets}):
        where = (
            f"{gw_dr.ref} defines no subset {subset!r}" if gw_dr else f"no DestinationRule for {gateway.host}"
        )
        return _fail(
            hop,
            call,
            "subset-missing",
            f"{cluster}: {where}, so the sidecar has no such cluster",
            destination_rule=gw_dr.ref if gw_dr else None,
        )
    if gateway.service_ref and port not in gateway.ports:
        return _fail(
            hop,
            call,
            "port-not-on-service",
            f"{gateway.service_ref} has no port {port} (ports {sorted(gateway.ports)})",
        )
    target = gateway.ports.get(port, port)
    hop = replace(hop, listener=f"0.0.0.0_{target}")
    gws = sorted(
        (as_configured(g) for g in snapshot.gateways if g.ref in gateway.gateways),
        key=lambda g: (g.created or "", g.name, g.namespace),
    )
    servers = port_servers(gws, port)
    if not servers:
        if not gws:
            return _without_gateway(snapshot, gateway, call, hop)
        return _fail(
            hop,
            call,
            "no-server",
            f"no server of {', '.join(g.ref for g in gws)} is on port {port}",
            gateway_ref=gws[0].ref,
        )
    picked, why = pick_server(servers, call, mode, sni)
    if picked is None:
        g, i, s = servers[0]
        return _fail(
            hop,
            call,
            "tls-mismatch",
            why,
            gateway_ref=g.ref,
            server=f"{g.ref} servers[{i}]",
            server_tls=s.tls_mode,
            destination_rule=dr,
        )
    gw, index, server = picked
    hop = replace(hop, gateway_ref=gw.ref, server=f"{gw.ref} servers[{index}]", server_tls=server.tls_mode)
    http = server.port.family == "http" or (
        server.tls_mode in TERMINATING and server.port.protocol == "HTTPS"
    )
    if http and not server.tls_mode:  # every Gateway's plaintext HTTP servers share http.<port>
        shared = [(g, s) for g, _, s in servers if not s.tls_mode and s.port.family == "http"]
    else:
        shared = [(g, s) for g, _, s in servers if g is gw and s.tls_mode == server.tls_mode]
    if http:
        route = http_route(snapshot, shared, call, dict(gateway.labels), target, https_redirect)
    else:
        # A TLS server that terminates (SIMPLE/MUTUAL/ISTIO_MUTUAL) forwards with tcp routes; only
        # a passthrough server matches tls routes by SNI (`gateway.go` createGatewayTCPFilterChainOpts).
        terminated = server.tls_mode in TERMINATING
        kind = "tls" if server.tls_mode and not terminated else "tcp"
        route = l4_route(snapshot, gw, [s for _, s in shared], call.effective_sni, kind)
        if terminated and not route.reason:  # its chain matches the server's hosts as SNI
            route = replace(route, filter_chain=f"{{server_names={call.effective_sni}}}")
        if route.reason and kind == "tcp" and len(servers) == len(shared):
            # a TCP listener left without filter chains is dropped (`buildGatewayListeners`)
            message = f"{route.note}: the listener has no filter chain, so pilot drops it"
            return _fail(replace(hop, listener=None), call, "no-server", message, gateway_ref=gw.ref)
    hop = replace(
        hop,
        route=route.route,
        vhost=route.vhost,
        filter_chain=route.filter_chain,
        virtual_service=route.virtual_service,
    )
    if route.reason and not http:  # no filter chain: nothing, not even the RBAC filter, runs
        return _fail(hop, call, route.reason, route.note)
    denied = _authorize(snapshot, gateway, call, source, hop, http, target, mode)  # RBAC before the router
    if denied.reason or route.reason:
        return denied if denied.reason else _fail(denied, call, route.reason, route.note)
    return _upstream(snapshot, gateway, call, replace(denied, cluster=route.cluster), route)


def _authorize(
    snapshot: Snapshot,
    gateway: GatewayWorkload,
    call: Call,
    source: Source,
    hop: GatewayHop,
    http: bool,
    target: int,
    mode: str,
) -> GatewayHop:
    policies = policies_for(snapshot, gateway.namespace, gateway.labels)
    if not policies:
        return hop
    account, known = service_account(snapshot, source)
    trust = str(snapshot.mesh.raw.get("trustDomain") or "cluster.local")
    identity = f"{trust}/ns/{source.namespace}/sa/{account}"
    peer = identity if hop.server_tls == "ISTIO_MUTUAL" and mode in MTLS else None
    req = Request(
        principal=peer,
        host=call.host,
        port=target,
        http=http,
        method=call.method,
        path=call.path,
        sni=call.effective_sni,
    )
    decision = evaluate(policies, req)
    notes = [
        f"caller identity {identity} (service account {known})"
        if peer
        else "the gateway does not know the caller's identity: its server does not terminate Istio mTLS"
    ]
    notes += [f"not evaluated: {u}" for u in dict.fromkeys(decision.uncertain)]
    hop = replace(
        hop,
        policies=decision.applied,
        policy=decision.policy,
        principal=peer or None,
        notes=(*hop.notes, *notes),
    )
    if decision.allowed:
        return hop
    who = f"service account {account} ({identity})" if peer else "a caller without a mesh identity"
    return _fail(hop, call, "denied", f"{decision.policy} denies {who}: {decision.reason}")


def _upstream(
    snapshot: Snapshot, gateway: GatewayWorkload, call: Call, hop: GatewayHop, route: GatewayRoute
) -> GatewayHop:
    parts = (route.cluster or "").split("|")
    if len(parts) != 4 or not route.host:
        return hop
    dport = int(parts[1]) if parts[1].isdigit() else call.port
    svc = destination(snapshot, route.host, dport, gateway.namespace)
    if svc is None:
        return _fail(
            hop,
            call,
            "no-cluster",
            f"{route.cluster}: no service {route.host} with port {dport} "
            f"is visible to the gateway's namespace {gateway.namespace}",
        )
    hop = replace(hop, destination=svc.ref)
    if svc.kind == "ServiceEntry" and svc.resolution == "NONE":
        return _fail(
            hop,
            call,
            "no-endpoints",
            f"{svc.ref} has resolution NONE: a gateway cannot use ORIGINAL_DST, its cluster has no endpoints",
        )
    dr = destination_rule(snapshot, scope_for(snapshot, Source(namespace=gateway.namespace)), route.host)
    tls = dr.traffic_policy.tls_for_port(dport) if dr is not None and dr.traffic_policy is not None else None
    if dr is not None and tls is not None and tls.mode in ("SIMPLE", "MUTUAL"):
        hop = replace(
            hop,
            notes=(*hop.notes, f"the gateway originates TLS ({tls.mode}) to {route.host}:{dport}: {dr.ref}"),
        )
    if parts[2] and (dr is None or parts[2] not in {s.name for s in dr.subsets}):
        message = f"{route.cluster}: no DestinationRule defines subset {parts[2]!r}"
        return _fail(hop, call, "no-cluster", message, destination_rule=dr.ref if dr else None)
    return hop


def _without_gateway(snapshot: Snapshot, gateway: GatewayWorkload, call: Call, hop: GatewayHop) -> GatewayHop:
    """No Gateway selects the workload in the input: its routes are unknown; assume it sends the call
    on to the host asked for, so an entry with resolution NONE still means no endpoints."""
    hop = replace(hop, verdict="unknown", notes=(f"no Gateway selecting {gateway.name} in the input",))
    svc = destination(snapshot, call.host.lower(), call.port, gateway.namespace)
    if svc is not None and svc.kind == "ServiceEntry" and svc.resolution == "NONE":
        message = (
            f"{svc.ref} has resolution NONE: a gateway cannot use ORIGINAL_DST, its cluster has no "
            f"endpoints (assumed: the gateway routes {call.host} to that entry)"
        )
        return _fail(replace(hop, destination=svc.ref), call, "no-endpoints", message)
    return hop


def _fail(
    hop: GatewayHop,
    call: Call,
    reason: str,
    message: str,
    *,
    gateway_ref: str | None = None,
    server: str | None = None,
    server_tls: str | None = None,
    destination_rule: str | None = None,
) -> GatewayHop:
    """The hop failing for `reason`, with what the client sees (`HTTP_SEEN`; TLS/TCP: a closed
    connection) and the objects to name."""
    seen: tuple[str, str | None] = HTTP_SEEN[reason]
    if call.protocol != "http":
        seen = ("TCP_CLOSED_AFTER_CONNECT" if call.protocol == "tcp" else "RESET_BEFORE_RESPONSE"), None
    return replace(
        hop,
        verdict="blocked",
        reason=reason,
        message=message,
        signature=seen[0],
        origin=seen[1],
        gateway_ref=gateway_ref or hop.gateway_ref,
        server=server or hop.server,
        server_tls=hop.server_tls if server_tls is None else server_tls,
        destination_rule=destination_rule or hop.destination_rule,
    )


def with_gateway(
    snapshot: Snapshot, source: Source, call: Call, prediction: Prediction, cluster: str | None = None
) -> Prediction:
    """`prediction` with its gateway hop (`cluster`: the live sidecar's, else the predicted one)."""
    cluster = cluster or prediction.path.cluster
    gateway = gateway_for_cluster(snapshot, cluster)
    if gateway is None or cluster is None:
        return prediction
    mesh_vs = next((m for m in prediction.matched if m.startswith("VirtualService ")), None)
    hop = predict_gateway(snapshot, gateway, call, source, cluster=cluster, mesh_vs=mesh_vs)
    return replace(prediction, gateway=hop)
