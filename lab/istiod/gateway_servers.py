"""Gateway objects → the merged servers of one gateway proxy (pilot's ``MergedGateway``).

Pilot sources:
- ``pilot/pkg/model/push_context.go`` ``mergeGateways``: every Gateway (any namespace; only the
  proxy's with ``PILOT_SCOPE_GATEWAY_TO_NAMESPACE``) whose ``selector`` is a subset of the proxy's
  labels (no selector: every gateway proxy) applies, with the proxy's service targets.
- ``pilot/pkg/model/gateway.go`` ``mergeGateways``: ``sanitizeServerHostNamespace`` (``./h`` → the
  Gateway's namespace, ``*/h`` → ``h``); ``resolvePorts`` (legacy selector: the first Service port
  equal to the server port gives its ``targetPort``, else the server port as is; Services labelled
  ``experimental.istio.io/disable-gateway-port-translation`` are skipped);
  ``gatewayRDSRouteName`` (``http.<listener port>`` for HTTP servers,
  ``https.<server port>.<port name>.<gateway>.<namespace>`` for HTTPS servers terminating TLS, none
  otherwise); plain HTTP servers on one port merge, TLS servers share a port by SNI, duplicate TLS
  hosts on a port (``CheckDuplicates``) and other conflicts are skipped.
- ``pkg/config/gateway/gateway.go`` ``IsPassThroughServer``/``IsHTTPSServerWithTLSTermination``;
  ``GetSNIHostsForServer`` (hosts without the namespace, sorted).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lab.istiod.meta import ObjectMeta, parse_meta, strs

HTTP_FAMILY = frozenset({"HTTP", "HTTP2", "GRPC", "GRPC-WEB", "HTTP_PROXY"})
PASSTHROUGH_MODES = frozenset({"PASSTHROUGH", "AUTO_PASSTHROUGH"})
NO_TRANSLATION = "experimental.istio.io/disable-gateway-port-translation"


@dataclass(frozen=True, eq=False)
class Server:
    """One Gateway server, hosts sanitised (``ns/host`` or ``host``); compared by identity, as pilot
    keys its per-server maps by pointer."""

    gateway: str  # "namespace/name"
    meta: ObjectMeta
    number: int
    port_name: str
    protocol: str  # upper case
    hosts: tuple[str, ...]
    tls: Mapping[str, Any] | None
    name: str = ""
    bind: str = ""

    @property
    def tls_mode(self) -> str:
        return str((self.tls or {}).get("mode") or "SIMPLE") if self.tls is not None else ""

    @property
    def passthrough(self) -> bool:
        return self.tls is not None and self.tls_mode in PASSTHROUGH_MODES

    @property
    def terminates_https(self) -> bool:
        """``IsHTTPSServerWithTLSTermination``."""
        return self.protocol == "HTTPS" and self.tls is not None and not self.passthrough

    def sni_hosts(self) -> list[str]:
        """``GetSNIHostsForServer``."""
        return sorted({h.split("/", 1)[1] if "/" in h else h for h in self.hosts})


@dataclass
class ServerPort:
    """Servers sharing one listener port (``MergedServers``)."""

    number: int  # the port the listener binds (after targetPort translation)
    protocol: str
    bind: str
    servers: list[Server] = field(default_factory=list)
    route_name: str = ""  # plain HTTP servers' route configuration

    @property
    def plain_http(self) -> bool:
        return self.protocol in HTTP_FAMILY


@dataclass
class MergedGateway:
    ports: list[ServerPort] = field(default_factory=list)
    route_names: dict[Server, str] = field(default_factory=dict)  # HTTPS (terminating) servers


def _sanitise(host: str, namespace: str) -> str:
    if "/" not in host:
        return host
    ns, name = host.split("/", 1)
    if ns == ".":
        return f"{namespace}/{name}"
    if ns == "*":
        return name
    return host


def parse_gateway(obj: Mapping[str, Any]) -> tuple[ObjectMeta, Mapping[str, str] | None, list[Server]]:
    meta = parse_meta(obj, "Gateway")
    spec = obj.get("spec") or {}
    selector = spec.get("selector")
    labels = None if selector is None else {str(k): str(v) for k, v in selector.items()}
    servers = []
    for raw in spec.get("servers") or ():
        port = raw.get("port")
        if not port:
            continue
        hosts = tuple(_sanitise(h, meta.namespace) for h in strs(raw.get("hosts")))
        if "*" in hosts and any(h == "*/*" for h in strs(raw.get("hosts"))):
            hosts = ("*",)
        tls = raw.get("tls")
        servers.append(Server(
            gateway=f"{meta.namespace}/{meta.name}", meta=meta, number=int(port["number"]),
            port_name=str(port.get("name") or ""), protocol=str(port.get("protocol") or "").upper(),
            hosts=hosts, tls=dict(tls) if isinstance(tls, Mapping) else None,
            name=str(raw.get("name") or ""), bind=str(raw.get("bind") or "")))
    return meta, labels, servers


def _entry_target_ports(obj: Mapping[str, Any], ips: Sequence[str]) -> list[tuple[int, int]]:
    """A ServiceEntry endpoint at one of the proxy's addresses makes the entry's ports service
    targets; the target port is the endpoint's port for that port name, else ``targetPort``, else
    the port (``serviceentry/conversion.go`` ``convertServiceEntryToInstances``)."""
    spec = obj.get("spec") or {}
    out = []
    for ep in spec.get("endpoints") or ():
        if str(ep.get("address") or "") not in ips:
            continue
        for p in spec.get("ports") or ():
            number = int(p["number"])
            named = (ep.get("ports") or {}).get(str(p.get("name") or ""))
            target = named or p.get("targetPort") or number
            out.append((number, int(target)))
    return out


def service_target_ports(objects: Sequence[Mapping[str, Any]], namespace: str, labels: Mapping[str, str],
                         ips: Sequence[str] = ()) -> list[tuple[int, int]]:
    """(service port, target port) of the proxy's ``ServiceTargets``: the Services in ``namespace``
    selecting the gateway's labels (a named targetPort is kept as the port number, not resolved),
    then the ServiceEntries in ``namespace`` with an endpoint at one of the proxy's ``ips``
    (``serviceentry/controller.go`` ``GetProxyServiceTargets``: same namespace only)."""
    out = []
    entries: list[tuple[int, int]] = []
    for obj in objects:
        md = obj.get("metadata") or {}
        if str(md.get("namespace") or "default") != namespace or NO_TRANSLATION in (md.get("labels") or {}):
            continue
        if obj.get("kind") == "ServiceEntry" and ips:
            entries += _entry_target_ports(obj, ips)
        if obj.get("kind") != "Service":
            continue
        spec = obj.get("spec") or {}
        selector = spec.get("selector") or {}
        if not selector or any(labels.get(str(k)) != str(v) for k, v in selector.items()):
            continue
        for p in spec.get("ports") or ():
            target = p.get("targetPort")
            number = int(p["port"])
            out.append((number, int(target) if str(target or "").isdigit() else number))
    return out + entries


def resolve_port(number: int, targets: Sequence[tuple[int, int]]) -> int:
    """``resolvePorts`` for a selector-based Gateway: the first matching Service port's target."""
    return next((t for p, t in targets if p == number), number)


def route_name(server: Server, listener_port: int) -> str:
    """``gatewayRDSRouteName``."""
    bind = f".{server.bind}" if server.bind else ""
    if server.protocol in HTTP_FAMILY:
        return f"http.{listener_port}{bind}"
    if server.terminates_https:
        return f"https.{server.number}.{server.port_name}.{server.meta.name}.{server.meta.namespace}{bind}"
    return ""


def select_gateways(objects: Sequence[Mapping[str, Any]], namespace: str, labels: Mapping[str, str],
                    scope_to_namespace: bool) -> list[tuple[ObjectMeta, list[Server]]]:
    """The Gateways applying to the proxy, oldest first."""
    found = []
    for obj in objects:
        api = str(obj.get("apiVersion") or "")
        if obj.get("kind") != "Gateway" or not api.startswith("networking.istio.io/"):
            continue
        meta, selector, servers = parse_gateway(obj)
        if scope_to_namespace and meta.namespace != namespace:
            continue
        if selector is not None and any(labels.get(k) != v for k, v in selector.items()):
            continue
        found.append((meta, servers))
    found.sort(key=lambda g: (g[0].created, g[0].name, g[0].namespace))
    return found


def merge_gateways(gateways: Sequence[tuple[ObjectMeta, list[Server]]], targets: Sequence[tuple[int, int]],
                   notes: list[str]) -> MergedGateway:
    """``mergeGateways`` (bind addresses other than the wildcard are kept but not otherwise modelled)."""
    merged = MergedGateway()
    by_key: dict[tuple[int, str], ServerPort] = {}
    tls_hosts: dict[int, dict[str, str]] = {}
    for _, servers in gateways:
        for s in servers:
            port = resolve_port(s.number, targets)
            name = route_name(s, port)
            where = f"Gateway {s.gateway} server port {s.number}"
            if s.tls is not None:
                known = tls_hosts.setdefault(port, {})
                dup = [h for h in s.hosts if known.get(h) == s.bind]
                if dup:
                    notes.append(f"{where}: duplicate hosts {dup} on port {port}: skipped (as pilot)")
                    continue
                known.update({h: s.bind for h in s.hosts})
            current = by_key.get((port, s.bind))
            if current is None:
                sp = ServerPort(number=port, protocol=s.protocol, bind=s.bind, servers=[s],
                                route_name=name if s.protocol in HTTP_FAMILY else "")
                by_key[(port, s.bind)] = sp
                merged.ports.append(sp)
            elif current.plain_http or s.protocol in HTTP_FAMILY:
                if not (current.plain_http and s.protocol in HTTP_FAMILY):
                    notes.append(f"{where}: protocol {s.protocol} conflicts with {current.protocol} on "
                                 f"port {port}: skipped (as pilot)")
                    continue
                current.servers.append(s)
            elif s.tls is None or any(x.tls is None for x in current.servers):
                notes.append(f"{where}: a second non-TLS server on port {port}: skipped (as pilot)")
                continue
            else:
                current.servers.append(s)
            if s.terminates_https:
                merged.route_names[s] = name
    return merged
