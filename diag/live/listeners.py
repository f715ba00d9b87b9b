"""Envoy's listener and filter-chain selection for one call (``envoy.config.listener.v3.FilterChainMatch``,
as Istio's simulator follows it: ``pilot/pkg/simulation/traffic.go`` ``matchListener``/
``matchFilterChain``; Envoy ``source/common/listener_manager/filter_chain_manager_impl.cc``).

1. listener: a listener bound to exactly the original destination IP:port, else the wildcard
   (``0.0.0.0``/``::``) listener on that port, else the ``use_original_dst`` listener itself
   (``virtualOutbound``; istio ``pilot/pkg/networking/core/listener_builder.go``);
2. what the listener filters learn (SNI and ALPN with a ``tls_inspector``, the HTTP version with
   an ``http_inspector``);
3. filter chain, criterion by criterion, each time keeping the most specific matching chains or,
   when none matches, those that leave the criterion unset: destination port, destination prefix
   ranges (longest prefix), server names (exact, then the longest ``*.`` wildcard), transport
   protocol, application protocols; then ``default_filter_chain``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

from diag.live.call import LiveCall, is_ip
from diag.live.fields import InvalidConfig, Json, as_list, as_mapping, as_messages, as_number, as_text

VIRTUAL_OUTBOUND = "virtualOutbound"


def _socket(address: Any, where: str) -> tuple[str, int, bool] | None:
    """(address, port, ipv4_compat) of an ``Address`` with a ``socket_address`` (else None)."""
    sock = as_mapping(as_mapping(address, where).get("socket_address"), f"{where}.socket_address")
    if not sock:
        return None
    port = as_number(sock.get("port_value"), f"{where}.socket_address.port_value")
    if not 0 <= port <= 65535:
        raise InvalidConfig(f"{where}.socket_address.port_value: {port} is not a port")
    ip = as_text(sock.get("address"), f"{where}.socket_address.address")
    return ip, port, bool(sock.get("ipv4_compat"))


def _addresses(listener: Json) -> list[tuple[str, int, bool]]:
    found: list[tuple[str, int, bool]] = []
    extra = as_messages(listener.get("additional_addresses"), "listener.additional_addresses")
    for addr, where in [
        (listener.get("address"), "listener.address"),
        *[(a.get("address"), "listener.additional_addresses.address") for a in extra],
    ]:
        sock = _socket(addr, where)
        if sock:
            found.append(sock)
    return found


def select_listener(listeners: Sequence[Json], call: LiveCall) -> tuple[Json | None, bool, list[str]]:
    notes: list[str] = []
    version = ipaddress.ip_address(call.address).version if call.address and is_ip(call.address) else 4
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
    for lf in as_messages(listener.get("listener_filters"), "listener.listener_filters"):
        typed = as_mapping(lf.get("typed_config"), "listener_filters.typed_config")
        type_url = as_text(typed.get("@type"), "listener_filters.typed_config.@type")
        name = as_text(lf.get("name"), "listener_filters.name")
        if kind in name or kind.replace("_", "") in type_url.lower():
            return not _predicate(lf.get("filter_disabled"), port)
    return False


def _predicate(rule: Any, port: int) -> bool:
    """Envoy ListenerFilterChainMatchPredicate, the parts pilot uses (port ranges, and/or/not)."""
    rule = as_mapping(rule, "filter_disabled")
    if not rule:
        return False
    if "destination_port_range" in rule:
        rng = as_mapping(rule["destination_port_range"], "filter_disabled.destination_port_range")
        start = as_number(rng.get("start"), "destination_port_range.start")
        return start <= port < as_number(rng.get("end"), "destination_port_range.end")
    for key, combine in (("or_match", any), ("and_match", all)):
        if key in rule:
            rules = as_list(as_mapping(rule[key], f"filter_disabled.{key}").get("rules"), f"{key}.rules")
            return combine(_predicate(r, port) for r in rules)
    if "not_match" in rule:
        return not _predicate(rule["not_match"], port)
    return bool(rule.get("any_match"))


def detected(listener: Json, call: LiveCall) -> tuple[str | None, tuple[str, ...], str]:
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


def select_chain(
    listener: Json, call: LiveCall, sni: str | None, alpn: tuple[str, ...], transport: str
) -> Json | None:
    chains = as_messages(listener.get("filter_chains"), "listener.filter_chains")
    for chain in chains:
        _check_chain_match(as_mapping(chain.get("filter_chain_match"), "filter_chain_match"))
    steps = (
        ("destination_port", lambda v: 1 if as_number(v, "destination_port") == call.port else None),
        ("prefix_ranges", lambda v: _prefix_score(v, call.address)),
        ("server_names", lambda v: _sni_score(v, sni)),
        ("transport_protocol", lambda v: 1 if v == transport else None),
        ("application_protocols", lambda v: 1 if any(p in v for p in alpn) else None),
    )
    for key, score in steps:
        chains = _narrow(chains, key, score)
    if chains:
        return chains[0]
    default = as_mapping(listener.get("default_filter_chain"), "listener.default_filter_chain")
    return default or None


def _check_chain_match(fcm: Json) -> None:
    """The FilterChainMatch fields the selection reads, shaped as Envoy requires."""
    for rng in as_messages(fcm.get("prefix_ranges"), "filter_chain_match.prefix_ranges"):
        as_text(rng.get("address_prefix"), "prefix_ranges.address_prefix")
        as_number(rng.get("prefix_len"), "prefix_ranges.prefix_len")
    for key in ("server_names", "application_protocols"):
        for item in as_list(fcm.get(key), f"filter_chain_match.{key}"):
            as_text(item, f"filter_chain_match.{key}")
    as_text(fcm.get("transport_protocol"), "filter_chain_match.transport_protocol")


def _narrow(chains: list[Json], key: str, score: Any) -> list[Json]:
    """Keep the best-scoring chains that set ``key``; if none matches, those that leave it unset."""

    def value(chain: Json) -> Any:
        return as_mapping(chain.get("filter_chain_match"), "filter_chain_match").get(key)

    scored = [(score(value(c)), c) for c in chains if value(c) not in (None, [], "")]
    scored = [(s, c) for s, c in scored if s is not None]
    if scored:
        best = max(s for s, _ in scored)
        return [c for s, c in scored if s == best]
    return [c for c in chains if value(c) in (None, [], "")]


def _uint(value: Any) -> Any:
    return value.get("value", 0) if isinstance(value, Mapping) else value


def _prefix_score(ranges: Any, address: str | None) -> int | None:
    if not address or not is_ip(address):
        return None
    ip = ipaddress.ip_address(address)
    best: int | None = None
    for rng in ranges:
        prefix = as_text(rng.get("address_prefix"), "prefix_ranges.address_prefix")
        length = as_number(rng.get("prefix_len"), "prefix_ranges.prefix_len")
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
    fcm = as_mapping(chain.get("filter_chain_match"), "filter_chain_match")
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
            ranges = as_messages(val, key)
            val = [f"{r.get('address_prefix')}/{_uint(r.get('prefix_len', 0))}" for r in ranges]
        parts.append(f"{key}={'|'.join(map(str, val)) if isinstance(val, list) else _uint(val)}")
    return "{" + ",".join(parts) + "}"
