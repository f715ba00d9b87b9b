"""Which egress gateway a sidecar's cluster leads to, who the caller is at that gateway, and how the
sidecar talks to it.

- `gateway_for_cluster`: a cluster `outbound|<port>|<subset>|<host>` leads to an egress gateway when
  `<host>` is a Kubernetes Service whose pods a Gateway selects (the Gateway's `selector` within
  the pods' labels: the Service selector, or a loaded Pod's labels), or Istio's default
  `istio-egressgateway.istio-system` (with the default labels `istio: egressgateway`); without a
  Service object in the input the gateway is *inferred*;
- `service_account`: the caller's service account (its SPIFFE identity's last part): given
  (`--like`, the probe pod), a loaded Pod of the source, else the namespace's `default`;
- `port_servers` / `pick_server`: the Gateway servers on the port the sidecar dials (the first
  server's kind owns the port) and the one that takes the sidecar's bytes;
- `sidecar_tls`: the TLS of the sidecar's cluster toward the gateway
  (`pilot/pkg/networking/core/cluster_tls.go`): a DestinationRule's subset, then top-level tls
  (port-level first) wins; else auto-mTLS, only toward pods labelled
  `security.istio.io/tlsMode: istio` (gateway pods are not, unless labelled so); ISTIO_MUTUAL
  without `sni` sends `outbound_.<port>_.<subset>_.<host>`;
- `as_configured`: a server on an HTTP-family port is plaintext whatever its `tls` block
  (`pkg/config/gateway/gateway.go` `IsTLSServer`: an `httpsRedirect` server is not a TLS server);
  `https_redirect` reads that server's `tls.httpsRedirect`;
- `endpoint_ports`: a gateway exposed by a ServiceEntry whose endpoint is the proxy's own address
  (pilot finds it among the proxy's service targets): server port → that port's targetPort, the
  first entry that is not labelled `experimental.istio.io/disable-gateway-port-translation`
  (`pilot/pkg/model/gateway.go` `resolvePorts`, legacy selector: one port, else the port as is).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from diag.model.resources import Gateway, GatewayServer, Service
from diag.model.snapshot import Snapshot
from diag.predict.gateway_model import GatewayWorkload
from diag.predict.gateway_routes import server_covers
from diag.predict.model import Call, Source
from diag.predict.routes import destination_rule
from diag.predict.scope import scope_for

DEFAULT = ("istio-egressgateway", "istio-system")
DEFAULT_LABELS = {"istio": "egressgateway", "app": "istio-egressgateway"}
MTLS = ("ISTIO_MUTUAL", "AUTO_ISTIO_MUTUAL")
TERMINATING = ("SIMPLE", "MUTUAL", "ISTIO_MUTUAL", "OPTIONAL_MUTUAL")
NO_TRANSLATION = "experimental.istio.io/disable-gateway-port-translation"


def as_configured(gw: Gateway) -> Gateway:
    """`gw` with its HTTP-family servers plaintext (see the module docstring)."""
    servers = tuple(replace(s, tls_mode="") if s.port.family == "http" else s for s in gw.servers)
    return gw if servers == gw.servers else replace(gw, servers=servers)


def https_redirect(gw: Gateway, server: GatewayServer) -> bool:
    """The server's `tls.httpsRedirect` (read from the Gateway as written)."""
    if server not in gw.servers:
        return False
    spec: Any = gw.raw.get("spec")
    items = spec.get("servers") if isinstance(spec, dict) else None
    index = gw.servers.index(server)
    item = items[index] if isinstance(items, list) and index < len(items) else None
    tls = item.get("tls") if isinstance(item, dict) else None
    return isinstance(tls, dict) and tls.get("httpsRedirect") is True


def endpoint_ports(snapshot: Snapshot, ips: tuple[str, ...]) -> dict[int, int]:
    """Service port → target port of the ServiceEntries with an endpoint at one of `ips`
    (see the module docstring); the first entry wins a port."""
    ports: dict[int, int] = {}
    for se in snapshot.service_entries:
        endpoint = next((e for e in se.endpoints if e.address in ips), None)
        if NO_TRANSLATION in se.labels or endpoint is None:
            continue
        for p in se.ports:
            ports.setdefault(p.number, endpoint.ports.get(p.name) or p.target_port or p.number)
    return ports


def _selects(gw: Gateway, labels: dict[str, str]) -> bool:
    return bool(gw.selector) and all(labels.get(k) == v for k, v in gw.selector.items())


def gateway_for_cluster(snapshot: Snapshot, cluster: str | None) -> GatewayWorkload | None:
    """The egress gateway an `outbound|P|S|host` cluster leads to, or None (see the module docstring)."""
    parts = (cluster or "").split("|")
    if len(parts) != 4 or parts[0] != "outbound":
        return None
    host, suffix = parts[3].lower(), snapshot.mesh.domain_suffix
    for svc in (m.resource for m in snapshot.exact_host.get(host, ()) if isinstance(m.resource, Service)):
        labels = dict(svc.selector)
        for pod in snapshot.pods:
            if (
                pod.namespace == svc.namespace
                and labels
                and all(pod.labels.get(k) == v for k, v in labels.items())
            ):
                labels = {**pod.labels}
                break
        gws = tuple(g.ref for g in snapshot.gateways if _selects(g, labels))
        if not gws and (svc.name, svc.namespace) != DEFAULT and labels.get("istio") != "egressgateway":
            return None
        return GatewayWorkload(
            name=f"{svc.name}.{svc.namespace}",
            namespace=svc.namespace,
            host=host,
            labels=labels or DEFAULT_LABELS,
            service_ref=svc.ref,
            ports={p.number: p.target_port or p.number for p in svc.ports},
            gateways=gws,
        )
    name, _, rest = host.partition(".")
    namespace = rest.partition(".")[0]
    if host == f"{DEFAULT[0]}.{DEFAULT[1]}.svc.{suffix}" or "egressgateway" in name:
        gws = tuple(g.ref for g in snapshot.gateways if _selects(g, DEFAULT_LABELS))
        return GatewayWorkload(
            name=f"{name}.{namespace}",
            namespace=namespace,
            host=host,
            labels=DEFAULT_LABELS,
            gateways=gws,
            inferred=True,
        )
    return None


def service_account(snapshot: Snapshot, source: Source) -> tuple[str, str]:
    """(service account, how it is known): given, a loaded Pod of the source, else "default"."""
    if source.service_account:
        return source.service_account, "given"
    for pod in snapshot.pods:
        if (
            pod.namespace == source.namespace
            and source.labels
            and pod.service_account
            and all(pod.labels.get(k) == v for k, v in source.labels.items())
        ):
            return pod.service_account, pod.ref
    return "default", "assumed (the namespace's default ServiceAccount)"


def sidecar_tls(
    snapshot: Snapshot,
    source: Source,
    gateway: GatewayWorkload,
    port: int,
    subset: str,
) -> tuple[str, str, str | None]:
    """(mode, SNI sent, the DestinationRule deciding) of the sidecar's cluster toward the gateway."""
    dr = destination_rule(snapshot, scope_for(snapshot, source), gateway.host)
    auto_sni = f"outbound_.{port}_.{subset}_.{gateway.host}"
    if dr is not None:
        for sub in dr.subsets:
            tls = sub.traffic_policy.tls_for_port(port) if sub.name == subset and sub.traffic_policy else None
            if tls is not None:
                return tls.mode, tls.sni or auto_sni, dr.ref
        tls = dr.traffic_policy.tls_for_port(port) if dr.traffic_policy is not None else None
        if tls is not None:
            return tls.mode, tls.sni or auto_sni, dr.ref
    if snapshot.mesh.enable_auto_mtls and gateway.labels.get("security.istio.io/tlsMode") == "istio":
        return "AUTO_ISTIO_MUTUAL", auto_sni, None
    return "DISABLE", "", dr.ref if dr is not None else None


def _server_class(server: GatewayServer) -> str:
    if server.tls_mode:
        return "tls"
    return "http" if server.port.family == "http" else "tcp"


def port_servers(gws: list[Gateway], port: int) -> list[tuple[Gateway, int, GatewayServer]]:
    """The servers on `port`, in Gateway order; the first one's kind (plaintext HTTP, plain TCP, or
    TLS) owns the port and servers of another kind are dropped (`pilot/pkg/model/gateway.go`
    `MergeGateways`); a plain TCP server has no route name, so a second one on the port is skipped
    too, even from a same-named Gateway of another namespace (istio/istio#21394)."""
    servers = [(g, i, s) for g in gws for i, s in enumerate(g.servers) if s.port.number == port]
    if not servers:
        return []
    owner = _server_class(servers[0][2])
    if owner == "tcp":
        return servers[:1]
    return [item for item in servers if _server_class(item[2]) == owner]


def pick_server(
    servers: list[tuple[Gateway, int, GatewayServer]], call: Call, mode: str, sni: str
) -> tuple[tuple[Gateway, int, GatewayServer] | None, str]:
    """The server taking the sidecar's bytes, or (None, why not)."""
    if mode in MTLS:
        fit = [s for s in servers if s[2].tls_mode == "ISTIO_MUTUAL"]
        hit = [s for s in fit if "*" in s[2].hosts or server_covers(s[2], s[0], sni)]
        if hit:
            return hit[0], ""
        return None, (
            f"the sidecar sends Istio mTLS with SNI {sni}, which no ISTIO_MUTUAL server host covers"
            if fit
            else "the sidecar sends Istio mTLS to a server that does not terminate it"
        )
    if any(s[2].tls_mode == "ISTIO_MUTUAL" for s in servers) and not any(
        s[2].tls_mode in ("", "PASSTHROUGH") for s in servers
    ):
        return (
            None,
            "the server expects Istio mTLS (ISTIO_MUTUAL) but the sidecar's cluster does not originate it",
        )
    tls_call = call.protocol in ("https", "tls")
    for s in servers:
        if tls_call and s[2].tls_mode in ("PASSTHROUGH", "AUTO_PASSTHROUGH"):
            return s, ""
        if not tls_call and s[2].tls_mode == "" and (call.protocol == "tcp") == (s[2].port.family == "tcp"):
            return s, ""
    wanted = "TLS passthrough" if tls_call else ("TCP" if call.protocol == "tcp" else "plaintext HTTP")
    return None, f"the client's {call.protocol.upper()} reaches no {wanted} server on this port"
