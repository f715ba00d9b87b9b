"""The live path: which listener, filter chain, route/virtual host and cluster an Envoy sidecar
picks for one call, read from its own configuration (the report's ``actual``, docs/schema.md).

Input is any of the shapes the project meets: an admin ``config_dump`` (``{"configs": [...]}``
with ``dynamic_listeners[].active_state.listener``, ``dynamic_active_clusters[].cluster``,
``dynamic_route_configs[].route_config``), a bootstrap (``static_resources``), the flat
``{"listeners", "clusters", "routes"}`` the probe's sidecar evidence and the lab generator give,
and ``istioctl proxy-config -o json`` output (camelCase keys are accepted).

What is implemented is Envoy's own selection, as documented for
``envoy.config.listener.v3.FilterChainMatch`` and followed by Istio's simulator
(istio/istio ``pilot/pkg/simulation/traffic.go``, ``matchListener``/``matchFilterChain``/
``matchVirtualHost``; Envoy ``source/common/listener_manager/filter_chain_manager_impl.cc``):

1. listener: a listener bound to exactly the original destination IP:port, else the wildcard
   (``0.0.0.0``/``::``) listener on that port, else the ``use_original_dst`` listener itself
   (``virtualOutbound``; istio ``pilot/pkg/networking/core/listener_builder.go``);
2. filter chain, criterion by criterion, each time keeping the most specific matching chains or,
   when none matches, those that leave the criterion unset: destination port, destination prefix
   ranges (longest prefix), server names (exact, then the longest ``*.`` wildcard), transport
   protocol (``tls`` only with a ``tls_inspector``), application protocols (TLS ALPN, or what
   the ``http_inspector`` detects on plaintext HTTP); then ``default_filter_chain``;
3. HTTP connection manager: the route configuration (inline or RDS), the virtual host by Host
   (lower-cased; exact, then suffix wildcards, then prefix wildcards, then ``*``; port ignored
   with ``ignore_port_in_host_matching``), the first matching route, and its action (cluster,
   direct response, redirect); 4. TCP proxy: its cluster.

Also here: :func:`effective_mode` (the cluster of ``virtualOutbound-catchall-tcp``, docs/model.md),
:func:`empty_clusters` (DNS/EDS clusters ``/clusters`` shows without hosts) and
:func:`rejected_updates` (``lds``/``cds`` ``update_rejected`` counters and listener error states).
The module is longer than most because these steps only make sense together.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

HCM = "http_connection_manager"
REDIRECT_CODES = {
    "MOVED_PERMANENTLY": 301,
    "FOUND": 302,
    "SEE_OTHER": 303,
    "TEMPORARY_REDIRECT": 307,
    "PERMANENT_REDIRECT": 308,
}
TCP_PROXY = "tcp_proxy"
CATCHALL_CHAIN = "virtualOutbound-catchall-tcp"
VIRTUAL_OUTBOUND = "virtualOutbound"
BLACKHOLE = "BlackHoleCluster"
PASSTHROUGH = "PassthroughCluster"

Json = Mapping[str, Any]


# ------------------------------------------------------------------------------------------
# The call and the result
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveCall:
    """One connection as the sidecar sees it after iptables redirected it.

    ``address`` is the destination IP the client dialled (None: unknown, only wildcard listeners
    can match); ``transport`` is ``raw_buffer`` or ``tls``; ``http_version`` is ``1.0``/``1.1``/
    ``2`` for plaintext HTTP and None for opaque bytes (TLS, TCP); ``path`` (with its query),
    ``method`` and ``headers`` (lower-case names, besides Host) are what route matches read.
    """

    port: int
    address: str | None = None
    transport: str = "raw_buffer"
    sni: str | None = None
    alpn: tuple[str, ...] = ()
    host: str | None = None
    http_version: str | None = None
    path: str = "/"
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_call(cls, call: Any) -> LiveCall:
        """Build from ``diag.predict.Call`` (duck-typed: host, port, protocol, sni, address,
        http_version). ``https`` is TLS from the sidecar's point of view (passthrough)."""
        if isinstance(call, LiveCall):
            return call
        protocol = str(getattr(call, "protocol", "tcp")).lower()
        host = str(getattr(call, "host", "") or "").lower()
        port = int(call.port)
        address = getattr(call, "address", None) or None
        version = getattr(call, "http_version", None)
        sni = getattr(call, "sni", None)
        if protocol in ("https", "tls"):
            if sni is None and host and not _is_ip(host):
                sni = host
            alpn: tuple[str, ...] = ()
            if protocol == "https":
                alpn = ("h2", "http/1.1") if str(version or "") == "2" else ("http/1.1",)
            return cls(port, address, "tls", sni.lower() if sni else None, alpn, None, None)
        if protocol == "http":
            extra = tuple((str(k).lower(), str(v)) for k, v in getattr(call, "headers", ()) or ())
            header = next((v for k, v in extra if k == "host"), host if port == 80 else f"{host}:{port}")
            return cls(
                port,
                address,
                "raw_buffer",
                None,
                (),
                header,
                str(version or "1.1"),
                str(getattr(call, "path", "/") or "/"),
                str(getattr(call, "method", "GET") or "GET").upper(),
                tuple((k, v) for k, v in extra if k != "host"),
            )
        return cls(port, address, "raw_buffer")


@dataclass(frozen=True)
class LivePath:
    """What Envoy chose. ``outcome`` is one of: ``cluster``, ``direct_response``, ``redirect``,
    ``no_listener``, ``no_filter_chain``, ``no_route_config``, ``no_vhost``, ``no_route``,
    ``tls_redirect`` (301: a plaintext request to a virtual host with ``require_tls: ALL``),
    ``protocol_error`` (non-HTTP bytes into an HTTP connection manager), ``http10_rejected``
    (426), ``unknown_filter``, ``invalid_config`` (the config is not shaped like Envoy's).
    ``route`` is the route configuration's name (pilot's ``"80"``), ``route_entry`` the route's
    own name inside the virtual host."""

    outcome: str
    listener: str | None = None
    filter_chain: str | None = None
    route: str | None = None
    vhost: str | None = None
    cluster: str | None = None
    route_entry: str | None = None
    direct_status: int | None = None  # a direct response's status, or a redirect's code
    via_original_dst: bool = False
    cluster_known: bool | None = None
    notes: tuple[str, ...] = ()
    weighted: tuple[tuple[str, int], ...] = ()  # (cluster, weight) of a weighted route

    @property
    def local_status(self) -> int | None:
        """The status the sidecar answers with itself: 404 (no route or virtual host), a direct
        response's, a redirect's; None when the request is routed (or not HTTP)."""
        if self.outcome in ("no_route", "no_vhost"):
            return 404
        if self.outcome in ("direct_response", "redirect", "tls_redirect"):
            return self.direct_status
        return None

    @property
    def envoy(self) -> str:
        """The one-word decision (docs/schema.md): the vhost for a direct response, else the cluster."""
        if self.outcome == "direct_response" and self.vhost:
            return self.vhost
        return self.cluster or self.outcome

    def as_dict(self) -> dict[str, str | None]:
        """The report's ``actual`` object (docs/schema.md)."""
        return {
            "listener": self.listener,
            "filter_chain": self.filter_chain,
            "route": self.route,
            "vhost": self.vhost,
            "cluster": self.cluster,
        }


# ------------------------------------------------------------------------------------------
# Reading the configuration
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnvoyConfig:
    """Listeners, clusters and route configurations of one proxy, whatever shape they came in.
    ``rejected`` names resources in an error state (a NACKed update)."""

    listeners: tuple[Json, ...] = ()
    clusters: tuple[Json, ...] = ()
    routes: Mapping[str, Json] = field(default_factory=dict)
    rejected: tuple[str, ...] = ()

    def cluster(self, name: str) -> Json | None:
        return next((c for c in self.clusters if c.get("name") == name), None)

    def listener(self, name: str) -> Json | None:
        return next((li for li in self.listeners if li.get("name") == name), None)


_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


def _snake(value: Any) -> Any:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            key = str(k)
            if not key.startswith("@") and "." not in key and "-" not in key:
                key = _CAMEL.sub(r"_\1", key).lower() if key[:1].islower() else key
            out[key] = v if key in ("filter_metadata", "typed_filter_metadata") else _snake(v)
        return out
    if isinstance(value, list | tuple):
        return [_snake(v) for v in value]
    return value


def load_config(source: Any) -> EnvoyConfig:
    """Normalise any supported shape (see module docstring) into an :class:`EnvoyConfig`."""
    if isinstance(source, EnvoyConfig):
        return source
    if not isinstance(source, Mapping):
        config = getattr(source, "config", None)
        if isinstance(config, Mapping):  # probes.model.SidecarEvidence
            return load_config(config)
        source = {
            "listeners": list(getattr(source, "listeners", []) or []),
            "clusters": list(getattr(source, "clusters", []) or []),
            "routes": list(getattr(source, "routes", []) or []),
        }
    acc = _Accumulator()
    acc.add(_snake(source))
    return EnvoyConfig(
        tuple(acc.listeners.values()),
        tuple(acc.clusters.values()),
        dict(acc.routes),
        tuple(sorted(set(acc.rejected))),
    )


class _Accumulator:
    """Collects resources from nested dump sections; the first resource with a name wins."""

    def __init__(self) -> None:
        self.listeners: dict[str, Json] = {}
        self.clusters: dict[str, Json] = {}
        self.routes: dict[str, Json] = {}
        self.rejected: list[str] = []

    def add(self, doc: Json) -> None:
        for section in _items(doc.get("configs")):
            if isinstance(section, Mapping):
                self.add(section)
        for key in ("static_resources", "bootstrap"):
            if isinstance(doc.get(key), Mapping):
                self.add(doc[key])
        for key in ("listeners", "static_listeners", "dynamic_listeners"):
            for item in _items(doc.get(key)):
                self._listener(item)
        for key in ("clusters", "static_clusters", "dynamic_active_clusters"):
            for item in _items(doc.get(key)):
                self._put(self.clusters, _unwrap(item, "cluster"))
                if isinstance(item, Mapping) and item.get("error_state"):
                    self.rejected.append(f"cluster {item.get('name') or _name(item.get('cluster'))}")
        for key in ("routes", "route_configs", "static_route_configs", "dynamic_route_configs"):
            for item in _items(doc.get(key)):
                self._put(self.routes, _unwrap(item, "route_config"))

    def _listener(self, item: Any) -> None:
        if not isinstance(item, Mapping):
            return
        if item.get("error_state"):
            self.rejected.append(f"listener {item.get('name', '?')}")
        if "active_state" in item or "warming_state" in item or "error_state" in item:
            active = item.get("active_state")
            self._put(self.listeners, active.get("listener") if isinstance(active, Mapping) else None)
            return
        self._put(self.listeners, _unwrap(item, "listener"))

    @staticmethod
    def _put(target: dict[str, Json], resource: Any) -> None:
        if isinstance(resource, Mapping) and resource.get("name") is not None:
            target.setdefault(str(resource["name"]), resource)


def _items(value: Any) -> list[Any]:
    """A list from a dump section that should be one (anything else: nothing)."""
    return list(value) if isinstance(value, list | tuple) else []


def _unwrap(item: Any, key: str) -> Any:
    if isinstance(item, Mapping) and isinstance(item.get(key), Mapping):
        return item[key]
    return item


def _name(resource: Any) -> str:
    return str(resource.get("name", "?")) if isinstance(resource, Mapping) else "?"


# ------------------------------------------------------------------------------------------
# Matching
# ------------------------------------------------------------------------------------------


class InvalidConfig(Exception):
    """A where Envoy itself would reject (wrong type, a port out of range, a regex RE2 refuses):
    the message names the where. Anything else raised while matching is a bug here, not bad input."""


def _mapping(value: Any, where: str) -> Json:
    """A message where: absent → empty; anything but a mapping → :class:`InvalidConfig`."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidConfig(f"{where}: expected an object, got {type(value).__name__}")
    return value


def _seq(value: Any, where: str) -> list[Any]:
    """A repeated where: absent → empty; anything but a list → :class:`InvalidConfig`."""
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise InvalidConfig(f"{where}: expected a list, got {type(value).__name__}")
    return list(value)


def _messages(value: Any, where: str) -> list[Json]:
    """A repeated message where (every item an object)."""
    items = _seq(value, where)
    for item in items:
        if not isinstance(item, Mapping):
            raise InvalidConfig(f"{where}: expected objects, got {type(item).__name__}")
    return items


def _number(value: Any, where: str, default: int = 0) -> int:
    """A uint32 (JSON number, numeric string, or a wrapper ``{"value": n}``)."""
    if isinstance(value, Mapping):
        value = value.get("value")
    if value is None:
        return default
    if isinstance(value, bool):
        raise InvalidConfig(f"{where}: expected a number, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise InvalidConfig(f"{where}: expected a number, got {value!r}"[:120])


def _text(value: Any, where: str) -> str:
    """A string where (absent → "")."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidConfig(f"{where}: expected a string, got {type(value).__name__}")
    return value


def trace(config: Any, call: Any) -> LivePath:
    """The full decision for one call (see the module docstring for Envoy's order). Config Envoy
    would reject (a field of the wrong type or value, in a truncated or hand-edited dump) gives
    outcome ``invalid_config`` naming the field; any other exception is a bug and propagates."""
    try:
        return _trace(config, call)
    except InvalidConfig as exc:
        return LivePath("invalid_config", notes=(f"Envoy would reject this config: {exc}",))


def _trace(config: Any, call: Any) -> LivePath:
    cfg = load_config(config)
    live = LiveCall.from_call(call)
    listener, via_original_dst, notes = _select_listener(cfg.listeners, live)
    if listener is None:
        return LivePath("no_listener", notes=tuple(notes))
    name = _text(listener.get("name"), "listener.name")
    if listener.get("filter_chain_matcher"):
        notes.append(
            "listener uses filter_chain_matcher (unified matcher): not evaluated, filter_chain_match used"
        )
    sni, alpn, transport = _detected(listener, live)
    chain = _select_chain(listener, live, sni, alpn, transport)
    if chain is None:
        return LivePath(
            "no_filter_chain",
            name,
            via_original_dst=via_original_dst,
            notes=(*notes, "no filter chain matched and no default chain: Envoy closes"),
        )
    base = LivePath(
        "cluster", name, chain_label(chain), via_original_dst=via_original_dst, notes=tuple(notes)
    )
    result = _run_filters(cfg, listener, chain, live, base)
    if result.cluster and cfg.clusters:
        known = cfg.cluster(result.cluster) is not None
        extra = () if known else (f"cluster {result.cluster} is not in the config (503 NC / close)",)
        result = _replace(result, cluster_known=known, notes=(*result.notes, *extra))
    return result


def match(config: Any, call: Any) -> LivePath:
    """Which listener/chain/route/vhost/cluster Envoy picks (the report's ``actual``); the result has
    the attributes of ``diag.predict.EnvoyPath`` plus the outcome and notes."""
    return trace(config, call)


def _replace(path: LivePath, **changes: Any) -> LivePath:
    values = {f: getattr(path, f) for f in path.__dataclass_fields__}
    values.update(changes)
    return LivePath(**values)


def _socket(address: Any, where: str) -> tuple[str, int, bool] | None:
    """(address, port, ipv4_compat) of an ``Address`` with a ``socket_address`` (else None)."""
    sock = _mapping(_mapping(address, where).get("socket_address"), f"{where}.socket_address")
    if not sock:
        return None
    port = _number(sock.get("port_value"), f"{where}.socket_address.port_value")
    if not 0 <= port <= 65535:
        raise InvalidConfig(f"{where}.socket_address.port_value: {port} is not a port")
    ip = _text(sock.get("address"), f"{where}.socket_address.address")
    return ip, port, bool(sock.get("ipv4_compat"))


def _addresses(listener: Json) -> list[tuple[str, int, bool]]:
    found: list[tuple[str, int, bool]] = []
    extra = _messages(listener.get("additional_addresses"), "listener.additional_addresses")
    for addr, where in [
        (listener.get("address"), "listener.address"),
        *[(a.get("address"), "listener.additional_addresses.address") for a in extra],
    ]:
        sock = _socket(addr, where)
        if sock:
            found.append(sock)
    return found


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def _select_listener(listeners: Sequence[Json], call: LiveCall) -> tuple[Json | None, bool, list[str]]:
    notes: list[str] = []
    version = ipaddress.ip_address(call.address).version if call.address and _is_ip(call.address) else 4
    if call.address:
        for li in listeners:
            if any(ip == call.address and port == call.port for ip, port, _ in _addresses(li)):
                return li, True, notes
    else:
        notes.append("destination address unknown: only wildcard listeners considered")
    for li in listeners:
        for ip, port, compat in _addresses(li):
            wildcard = ip == "0.0.0.0" if version == 4 else ip == "::"
            if port == call.port and (wildcard or (version == 4 and ip == "::" and compat)):
                return li, True, notes
    for li in listeners:
        if li.get("use_original_dst") and li.get("name") == VIRTUAL_OUTBOUND:
            return li, False, notes
    origdst = [li for li in listeners if li.get("use_original_dst")]
    if origdst:
        return origdst[0], False, notes
    notes.append(f"no listener for port {call.port} and no use_original_dst listener (interception NONE?)")
    return None, False, notes


def _listener_filter_on(listener: Json, kind: str, port: int) -> bool:
    for lf in _messages(listener.get("listener_filters"), "listener.listener_filters"):
        typed = _mapping(lf.get("typed_config"), "listener_filters.typed_config")
        type_url = _text(typed.get("@type"), "listener_filters.typed_config.@type")
        name = _text(lf.get("name"), "listener_filters.name")
        if kind in name or kind.replace("_", "") in type_url.lower():
            return not _predicate(lf.get("filter_disabled"), port)
    return False


def _predicate(rule: Any, port: int) -> bool:
    """Envoy ListenerFilterChainMatchPredicate, the parts pilot uses (port ranges, and/or/not)."""
    rule = _mapping(rule, "filter_disabled")
    if not rule:
        return False
    if "destination_port_range" in rule:
        rng = _mapping(rule["destination_port_range"], "filter_disabled.destination_port_range")
        start = _number(rng.get("start"), "destination_port_range.start")
        return start <= port < _number(rng.get("end"), "destination_port_range.end")
    for key, combine in (("or_match", any), ("and_match", all)):
        if key in rule:
            rules = _seq(_mapping(rule[key], f"filter_disabled.{key}").get("rules"), f"{key}.rules")
            return combine(_predicate(r, port) for r in rules)
    if "not_match" in rule:
        return not _predicate(rule["not_match"], port)
    return bool(rule.get("any_match"))


def _detected(listener: Json, call: LiveCall) -> tuple[str | None, tuple[str, ...], str]:
    """What listener filters learn: (SNI, application protocols, transport protocol)."""
    tls_inspector = _listener_filter_on(listener, "tls_inspector", call.port)
    http_inspector = _listener_filter_on(listener, "http_inspector", call.port)
    if call.transport == "tls":
        if tls_inspector:
            return call.sni, call.alpn, "tls"
        return None, (), "raw_buffer"
    if http_inspector and call.http_version is not None:
        alpn = {"1.0": "http/1.0", "2": "h2c"}.get(call.http_version, "http/1.1")
        return None, (alpn,), "raw_buffer"
    return None, (), "raw_buffer"


def _select_chain(
    listener: Json, call: LiveCall, sni: str | None, alpn: tuple[str, ...], transport: str
) -> Json | None:
    chains = _messages(listener.get("filter_chains"), "listener.filter_chains")
    for chain in chains:
        _check_chain_match(_mapping(chain.get("filter_chain_match"), "filter_chain_match"))
    steps = (
        ("destination_port", lambda v: 1 if _number(v, "destination_port") == call.port else None),
        ("prefix_ranges", lambda v: _prefix_score(v, call.address)),
        ("server_names", lambda v: _sni_score(v, sni)),
        ("transport_protocol", lambda v: 1 if v == transport else None),
        ("application_protocols", lambda v: 1 if any(p in v for p in alpn) else None),
    )
    for key, score in steps:
        chains = _narrow(chains, key, score)
    if chains:
        return chains[0]
    default = _mapping(listener.get("default_filter_chain"), "listener.default_filter_chain")
    return default or None


def _check_chain_match(fcm: Json) -> None:
    """The FilterChainMatch fields the selection reads, shaped as Envoy requires."""
    for rng in _messages(fcm.get("prefix_ranges"), "filter_chain_match.prefix_ranges"):
        _text(rng.get("address_prefix"), "prefix_ranges.address_prefix")
        _number(rng.get("prefix_len"), "prefix_ranges.prefix_len")
    for key in ("server_names", "application_protocols"):
        for item in _seq(fcm.get(key), f"filter_chain_match.{key}"):
            _text(item, f"filter_chain_match.{key}")
    _text(fcm.get("transport_protocol"), "filter_chain_match.transport_protocol")


def _narrow(chains: list[Json], key: str, score: Any) -> list[Json]:
    """Keep the best-scoring chains that set ``key``; if none matches, those that leave it unset."""

    def value(chain: Json) -> Any:
        return _mapping(chain.get("filter_chain_match"), "filter_chain_match").get(key)

    scored = [(score(value(c)), c) for c in chains if value(c) not in (None, [], "")]
    scored = [(s, c) for s, c in scored if s is not None]
    if scored:
        best = max(s for s, _ in scored)
        return [c for s, c in scored if s == best]
    return [c for c in chains if value(c) in (None, [], "")]


def _uint(value: Any) -> Any:
    return value.get("value", 0) if isinstance(value, Mapping) else value


def _prefix_score(ranges: Any, address: str | None) -> int | None:
    if not address or not _is_ip(address):
        return None
    ip = ipaddress.ip_address(address)
    best: int | None = None
    for rng in ranges:
        prefix = _text(rng.get("address_prefix"), "prefix_ranges.address_prefix")
        length = _number(rng.get("prefix_len"), "prefix_ranges.prefix_len")
        try:
            net = ipaddress.ip_network(f"{prefix}/{length}", strict=False)
        except ValueError:
            raise InvalidConfig(
                f"prefix_ranges: address_prefix/prefix_len {prefix}/{length} is not a CIDR range"
            ) from None
        if ip.version == net.version and ip in net:
            best = max(best or 0, net.prefixlen)
    return best


def _sni_score(names: Any, sni: str | None) -> int | None:
    if not sni:
        return None
    sni = sni.lower()
    best: int | None = None
    for name in names:
        name = str(name).lower()
        if name == sni:
            return 10_000
        if name.startswith("*.") and sni.endswith(name[1:]) and len(sni) > len(name) - 1:
            best = max(best or 0, len(name))
    return best


def chain_label(chain: Json) -> str:
    """A filter chain's name, or (unnamed, as pilot leaves most outbound chains) its match
    criteria in a fixed order, e.g. ``{server_names=github.com}`` or ``{}``."""
    if chain.get("name"):
        return str(chain["name"])
    fcm = _mapping(chain.get("filter_chain_match"), "filter_chain_match")
    parts: list[str] = []
    for key in (
        "destination_port",
        "prefix_ranges",
        "server_names",
        "transport_protocol",
        "application_protocols",
    ):
        val = fcm.get(key)
        if val in (None, [], ""):
            continue
        if key == "prefix_ranges":
            val = [f"{r.get('address_prefix')}/{_uint(r.get('prefix_len', 0))}" for r in _messages(val, key)]
        parts.append(f"{key}={'|'.join(map(str, val)) if isinstance(val, list) else _uint(val)}")
    return "{" + ",".join(parts) + "}"


# ------------------------------------------------------------------------------------------
# Network filters: HTTP connection manager and TCP proxy
# ------------------------------------------------------------------------------------------


def _network_filter(chain: Json, kind: str) -> Json | None:
    for flt in _messages(chain.get("filters"), "filter_chain.filters"):
        typed = _mapping(flt.get("typed_config"), "filters.typed_config")
        type_url = _text(typed.get("@type"), "filters.typed_config.@type").lower()
        if kind in _text(flt.get("name"), "filters.name") or kind.replace("_", "") in type_url:
            return typed
    return None


def _run_filters(cfg: EnvoyConfig, listener: Json, chain: Json, call: LiveCall, base: LivePath) -> LivePath:
    tcp = _network_filter(chain, TCP_PROXY)
    hcm = _network_filter(chain, HCM)
    if chain.get("transport_socket"):  # the chain terminates TLS (inbound, gateways; never sidecar outbound)
        if call.transport != "tls":
            return _replace(
                base,
                outcome="protocol_error",
                notes=(*base.notes, "plaintext into a TLS-terminating filter chain"),
            )
        call = LiveCall(
            call.port,
            call.address,
            "raw_buffer",
            None,
            (),
            call.host or call.sni,
            "2" if "h2" in call.alpn[:1] else "1.1",
            call.path,
        )
    if hcm is not None:
        return _through_hcm(cfg, hcm, call, base)
    if tcp is not None:
        return _replace(base, cluster=_tcp_cluster(tcp))
    return _replace(
        base,
        outcome="unknown_filter",
        notes=(*base.notes, "chain has neither an HTTP connection manager nor a TCP proxy"),
    )


def _tcp_cluster(tcp: Json) -> str | None:
    if tcp.get("cluster"):
        return _text(tcp["cluster"], "tcp_proxy.cluster")
    weighted = _mapping(tcp.get("weighted_clusters"), "tcp_proxy.weighted_clusters")
    return _heaviest(_messages(weighted.get("clusters"), "weighted_clusters.clusters"))


def _heaviest(weighted: Sequence[Json]) -> str | None:
    """The cluster with the largest weight (the first of equals)."""
    best: tuple[int, str] | None = None
    for item in weighted:
        weight = _number(item.get("weight"), "weighted_clusters.clusters.weight")
        name = _text(item.get("name"), "weighted_clusters.clusters.name")
        if best is None or weight > best[0]:
            best = (weight, name)
    return best[1] if best else None


def _weights(weighted: Sequence[Json]) -> tuple[tuple[str, int], ...]:
    return tuple(
        (_text(c.get("name"), "clusters.name"), _number(c.get("weight"), "clusters.weight")) for c in weighted
    )


def _through_hcm(cfg: EnvoyConfig, hcm: Json, call: LiveCall, base: LivePath) -> LivePath:
    if call.http_version is None:
        return _replace(
            base,
            outcome="protocol_error",
            notes=(*base.notes, "non-HTTP bytes reach an HTTP connection manager"),
        )
    opts = _mapping(hcm.get("http_protocol_options"), "http_connection_manager.http_protocol_options")
    if call.http_version == "1.0" and not opts.get("accept_http_10"):
        return _replace(base, outcome="http10_rejected", notes=(*base.notes, "HTTP/1.0 gets 426"))
    rc = _mapping(hcm.get("route_config"), "http_connection_manager.route_config") or None
    if rc is None:
        rds = _mapping(hcm.get("rds"), "http_connection_manager.rds")
        name = _text(rds.get("route_config_name"), "rds.route_config_name")
        rc = cfg.routes.get(name)
        if rc is None:
            return _replace(
                base,
                outcome="no_route_config",
                route=name or None,
                notes=(*base.notes, f"route configuration {name!r} not in the config"),
            )
    host = _host_for_matching(call, hcm, rc)
    vhosts = _messages(rc.get("virtual_hosts"), "route_config.virtual_hosts")
    for vh in vhosts:
        for domain in _seq(vh.get("domains"), "virtual_hosts.domains"):
            _text(domain, "virtual_hosts.domains")
    vhost = match_vhost(vhosts, host)
    with_rc = _replace(base, route=_text(rc.get("name"), "route_config.name") or None)
    if vhost is None:
        return _replace(with_rc, outcome="no_vhost")
    with_vh = _replace(with_rc, vhost=_text(vhost.get("name"), "virtual_hosts.name"))
    if vhost.get("require_tls") == "ALL" and call.transport == "raw_buffer":
        # Envoy's router answers a plaintext request on such a vhost with a 301 to https before any
        # route is matched (pilot sets it for a Gateway server's httpsRedirect, gateway.go).
        return _replace(with_vh, outcome="tls_redirect", direct_status=301)
    return _route_action(vhost, call, with_vh)


def _host_for_matching(call: LiveCall, hcm: Json, rc: Json) -> str:
    host = (call.host or "").lower()
    if host.startswith("["):
        bare, _, port = host[1:].partition("]")
        port = port.lstrip(":")
    elif host.count(":") == 1:
        bare, _, port = host.partition(":")
    else:
        bare, port = host, ""
    strip = bool(rc.get("ignore_port_in_host_matching")) or bool(hcm.get("strip_any_host_port"))
    strip = strip or (bool(hcm.get("strip_matching_host_port")) and port == str(call.port))
    return bare if (strip or not port) else host


def match_vhost(vhosts: Iterable[Json], host: str) -> Json | None:
    """Envoy's virtual-host lookup: exact, then ``*suffix`` (longest), ``prefix*`` (longest), ``*``."""
    listed = [v for v in vhosts if isinstance(v, Mapping)]
    host = host.lower()
    for vh in listed:
        if any(str(d).lower() == host for d in vh.get("domains", []) or []):
            return vh
    for wildcard_first in (True, False):
        best: tuple[int, Json] | None = None
        for vh in listed:
            for d in (str(x).lower() for x in vh.get("domains", []) or []):
                if d == "*" or len(d) < 2:
                    continue
                if wildcard_first and d.startswith("*") and host.endswith(d[1:]) and len(host) > len(d) - 1:
                    best = best if best and best[0] >= len(d) else (len(d), vh)
                if (
                    not wildcard_first
                    and d.endswith("*")
                    and host.startswith(d[:-1])
                    and len(host) > len(d) - 1
                ):
                    best = best if best and best[0] >= len(d) else (len(d), vh)
        if best:
            return best[1]
    return next((vh for vh in listed if "*" in (vh.get("domains") or [])), None)


def _route_action(vhost: Json, call: LiveCall, base: LivePath) -> LivePath:
    """The first route whose match holds, and its action (no route: 404 NR)."""
    for route in _messages(vhost.get("routes"), "virtual_hosts.routes"):
        if not _route_matches(_mapping(route.get("match"), "routes.match"), call):
            continue
        entry = _text(route.get("name"), "routes.name") or None
        direct = _mapping(route.get("direct_response"), "routes.direct_response")
        if direct:
            status = _number(direct.get("status"), "direct_response.status")
            if not 200 <= status <= 599:
                raise InvalidConfig(f"direct_response.status: {status} is not in [200, 600)")
            return _replace(base, outcome="direct_response", route_entry=entry, direct_status=status)
        redirect = _mapping(route.get("redirect"), "routes.redirect")
        if redirect:
            named = redirect.get("response_code") or "MOVED_PERMANENTLY"
            if isinstance(named, int) and not isinstance(named, bool) and 0 <= named < len(REDIRECT_CODES):
                named = list(REDIRECT_CODES)[named]  # the enum's number
            code = REDIRECT_CODES.get(named) if isinstance(named, str) else None
            if code is None:
                raise InvalidConfig(f"redirect.response_code: {redirect.get('response_code')!r}")
            return _replace(base, outcome="redirect", route_entry=entry, direct_status=code)
        action = _mapping(route.get("route"), "routes.route")
        weighted = _messages(
            _mapping(action.get("weighted_clusters"), "route.weighted_clusters").get("clusters"),
            "weighted_clusters.clusters",
        )
        cluster = _text(action.get("cluster"), "route.cluster") or _heaviest(weighted)
        notes = base.notes
        if len(weighted) > 1:
            notes = (*notes, "weighted: " + ", ".join(f"{c} {w}" for c, w in _weights(weighted)))
        if cluster is None and action.get("cluster_header"):
            notes = (*notes, f"cluster from header {action['cluster_header']}")
        return _replace(base, route_entry=entry, cluster=cluster, notes=notes, weighted=_weights(weighted))
    return _replace(base, outcome="no_route")


def _route_matches(rule: Json, call: LiveCall) -> bool:
    """Envoy ``RouteMatch``: the path specifier (``path``/``safe_regex`` on the path without its
    query, ``prefix`` on the start of ``:path``; ``case_sensitive`` false compares path and prefix
    case-insensitively), then every header and query-parameter matcher."""
    path = call.path or "/"
    bare = path.split("?", 1)[0].split("#", 1)[0]
    sensitive = _flag(rule.get("case_sensitive"), True)
    if "prefix" in rule and not _starts(path, str(rule["prefix"]), sensitive):
        return False
    exact = _text(rule.get("path"), "match.path") if "path" in rule else None
    if exact is not None and not (bare == exact if sensitive else bare.lower() == exact.lower()):
        return False
    if "safe_regex" in rule and not _regex_full(rule["safe_regex"], bare):
        return False
    if "path_separated_prefix" in rule:
        pfx = str(rule["path_separated_prefix"])
        if not (bare == pfx or _starts(bare, pfx.rstrip("/") + "/", sensitive)):
            return False
    headers = {
        **dict(call.headers),
        ":authority": call.host or "",
        ":path": path,
        ":method": call.method,
        ":scheme": "http",
    }
    if not all(_header_matches(h, headers) for h in _list_of(rule.get("headers"), "headers")):
        return False
    query = dict(parse_qsl(path.partition("?")[2], keep_blank_values=True))
    return all(_query_matches(q, query) for q in _list_of(rule.get("query_parameters"), "query_parameters"))


def _flag(value: Any, default: bool) -> bool:
    """A protobuf BoolValue as JSON (a bare bool, or ``{"value": bool}``)."""
    if isinstance(value, Mapping):
        value = value.get("value", default)
    return default if value is None else bool(value)


def _starts(value: str, prefix: str, sensitive: bool) -> bool:
    return value.startswith(prefix) if sensitive else value.lower().startswith(prefix.lower())


def _list_of(value: Any, name: str) -> list[Json]:
    if value is None:
        return []
    if not isinstance(value, list | tuple) or not all(isinstance(v, Mapping) for v in value):
        raise InvalidConfig(f"{name}: expected a list of matchers")
    return list(value)


def _regex_full(rule: Any, value: str) -> bool:
    """RE2 full match; a pattern that does not compile is config Envoy rejects."""
    pattern = rule.get("regex", "") if isinstance(rule, Mapping) else None
    if not isinstance(pattern, str):
        raise InvalidConfig("safe_regex: no regex")
    try:
        return re.fullmatch(pattern, value) is not None
    except re.error as exc:
        raise InvalidConfig(f"safe_regex {pattern!r}: {exc}") from None


def _header_matches(rule: Json, headers: Mapping[str, str]) -> bool:
    """Envoy ``HeaderMatcher``: present/string match, ``invert_match``, and
    ``treat_missing_header_as_empty`` (a missing header is then matched as "")."""
    value = headers.get(str(rule.get("name", "")).lower())
    if value is None and rule.get("treat_missing_header_as_empty"):
        value = ""
    if "present_match" in rule:
        ok = (value is not None) == bool(rule["present_match"])
    elif value is None:
        ok = False
    else:
        ok = _string_matches(rule.get("string_match") or {"exact": rule.get("exact_match", value)}, value)
    return ok != bool(rule.get("invert_match"))


def _query_matches(rule: Json, query: Mapping[str, str]) -> bool:
    """Envoy ``QueryParameterMatcher``: present, or a string match on the parameter's value."""
    value = query.get(str(rule.get("name", "")))
    if value is None:
        return False
    if rule.get("present_match"):
        return True
    matcher = rule.get("string_match")
    return _string_matches(matcher, value) if isinstance(matcher, Mapping) else True


def _string_matches(rule: Json, value: str) -> bool:
    if rule.get("ignore_case"):
        value = value.lower()
        rule = {k: (v.lower() if isinstance(v, str) else v) for k, v in rule.items()}
    if "exact" in rule:
        return value == str(rule["exact"])
    if "prefix" in rule:
        return value.startswith(str(rule["prefix"]))
    if "suffix" in rule:
        return value.endswith(str(rule["suffix"]))
    if "contains" in rule:
        return str(rule["contains"]) in value
    if "safe_regex" in rule:
        return _regex_full(rule["safe_regex"], value)
    return False


# ------------------------------------------------------------------------------------------
# Whole-proxy facts
# ------------------------------------------------------------------------------------------


def catchall_cluster(config: Any) -> str | None:
    """The cluster of the ``virtualOutbound-catchall-tcp`` chain (None: no virtualOutbound)."""
    cfg = load_config(config)
    outbound = cfg.listener(VIRTUAL_OUTBOUND)
    if outbound is None:
        return None
    for chain in _messages(outbound.get("filter_chains"), "virtualOutbound.filter_chains"):
        if chain.get("name") == CATCHALL_CHAIN:
            tcp = _network_filter(chain, TCP_PROXY)
            return _tcp_cluster(tcp) if tcp is not None else None
    return None


def effective_mode(config: Any) -> str:
    """The proxy's effective outbound mode from its catch-all (istio
    ``pilot/pkg/networking/core/listener_builder.go`` builds that chain):
    ``REGISTRY_ONLY`` (BlackHoleCluster), ``ALLOW_ANY`` (PassthroughCluster), ``EGRESS_PROXY``
    (a Sidecar ``outboundTrafficPolicy.egressProxy`` cluster) or ``UNKNOWN`` (no virtualOutbound,
    e.g. interception NONE, or a filtered dump without it)."""
    try:
        cluster = catchall_cluster(config)
    except InvalidConfig:
        cluster = None
    if cluster is None:
        return "UNKNOWN"
    if cluster == BLACKHOLE:
        return "REGISTRY_ONLY"
    if cluster == PASSTHROUGH:
        return "ALLOW_ANY"
    return "EGRESS_PROXY"


_DNS_TYPES = {"STRICT_DNS", "LOGICAL_DNS", "EDS"}


def empty_clusters(config: Any, memberships: Iterable[Any]) -> tuple[str, ...]:
    """Clusters that ``/clusters`` lists without hosts and that should have some (DNS or EDS
    clusters; ORIGINAL_DST and the BlackHole/Passthrough clusters never list hosts). A cluster
    missing from ``config`` counts when its name is an ``outbound|...`` service cluster."""
    cfg = load_config(config)
    empty: list[str] = []
    for member in memberships:
        name = str(getattr(member, "cluster", "") or "")
        if not name or tuple(getattr(member, "hosts", ()) or ()):
            continue
        cluster = cfg.cluster(name)
        kind = (
            str(cluster.get("type", "EDS" if cluster.get("eds_cluster_config") else "STATIC"))
            if cluster
            else ("EDS" if name.startswith("outbound|") else "STATIC")
        )
        if kind in _DNS_TYPES:
            empty.append(name)
    return tuple(sorted(set(empty)))


def rejected_updates(config: Any = None, counters: Mapping[str, int] | None = None) -> tuple[str, ...]:
    """Evidence of NACKed config: ``update_rejected`` counters above zero and resources in an
    error state (MP0120; the counters are in Istio's default stats inclusion list)."""
    found = [f"{k}={v}" for k, v in sorted((counters or {}).items()) if "update_rejected" in k and int(v) > 0]
    if config is not None:
        found.extend(f"{r} in error state" for r in load_config(config).rejected)
    return tuple(found)
