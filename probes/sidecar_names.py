"""What to read from admin: the listener, route and cluster names and the regexes derived from the
targets and what the client dialled (pilot's names: ``listener.go`` ``getListenerName``,
``cluster_builder.go`` ``outbound|PORT|SUBSET|HOST``), and the routes and clusters referenced by
the filter chains and virtual hosts that could match a target.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from probes.model import ProbeResult, TargetSpec

_REGEX_SPECIAL = set("\\.^$|?*+()[]{}")


def regex_literal(text: str) -> str:
    """``text`` as a regex matching itself (RE2 and ECMAScript agree on these escapes)."""
    return "".join("\\" + ch if ch in _REGEX_SPECIAL else ch for ch in text)


def target_host(target: TargetSpec) -> str:
    return target.host.rstrip(".") or target.host


def dialed_addresses(results: Iterable[ProbeResult]) -> dict[int, set[str]]:
    """Per target port, the IPs the client dialled or was told (IP literal, DNS answers, connect)."""
    out: dict[int, set[str]] = {}
    for r in results:
        ips = out.setdefault(r.target.port, set())
        if r.target.ip_literal:
            ips.add(r.target.host.strip("[]"))
        if r.dns is not None:
            ips.update(r.dns.a)
            ips.update(r.dns.aaaa)
        if r.tcp is not None and r.tcp.address:
            ips.add(r.tcp.address.rpartition(":")[0].strip("[]"))
    return out


def exact_listener_regex(addresses: Mapping[int, Iterable[str]]) -> str:
    """``virtualOutbound``, the wildcard listeners (``0.0.0.0_P``, ``::_P``) and ``<ip>_P`` for each
    dialled IP — the listeners Envoy can pick for these connections (pilot ``getListenerName``)."""
    names = ["virtualOutbound"]
    for port, ips in sorted(addresses.items()):
        names += [f"{ip}_{port}" for ip in ("0.0.0.0", "::", "[::]", *sorted(ips))]
    return "^(" + "|".join(regex_literal(n) for n in unique(names)) + ")$"


def listener_name_regex(targets: Iterable[TargetSpec]) -> str:
    """``virtualOutbound`` and every listener on a target port (``0.0.0.0_443``, ``10.0.0.1_443``…)."""
    ports = sorted({t.port for t in targets})
    if not ports:
        return "^virtualOutbound$"
    return "^(virtualOutbound|.*_(" + "|".join(str(p) for p in ports) + "))$"


def target_cluster_patterns(targets: Iterable[TargetSpec]) -> list[str]:
    """``outbound|PORT|<any subset>|HOST`` per target, as regex fragments (no anchors)."""
    out: list[str] = []
    for t in targets:
        frag = rf"outbound\|{t.port}\|[^|]*\|{regex_literal(target_host(t))}"
        if frag not in out:
            out.append(frag)
    return out


def counter_filter(targets: Iterable[TargetSpec]) -> str:
    """The ``/stats?filter=`` regex for the attribution counters and the targets' cluster counters."""
    parts = [
        r"cluster\.(BlackHoleCluster|PassthroughCluster);?\.",
        r"tcp\.(BlackHoleCluster|PassthroughCluster)\.",
    ]
    parts += [rf"cluster\.{frag};?\." for frag in target_cluster_patterns(targets)]
    return "^(" + "|".join(parts) + ")"


def _domain_matches(pattern: str, host: str, port: int) -> bool:
    """Envoy virtual-host domain / TLS server_name match (exact, ``*.suffix``, ``prefix*``, ``*``)."""
    pattern = pattern.lower()
    for name in (host, f"{host}:{port}"):
        if pattern in ("*", name):
            return True
        if pattern.startswith("*") and name.endswith(pattern[1:]) and len(name) > len(pattern) - 1:
            return True
        if pattern.endswith("*") and name.startswith(pattern[:-1]):
            return True
    return False


def _cluster_refs(action: Mapping[str, Any]) -> list[str]:
    """Cluster names a route action or tcp_proxy config points at."""
    names = [action["cluster"]] if isinstance(action.get("cluster"), str) else []
    weighted = action.get("weighted_clusters")
    if isinstance(weighted, Mapping):
        names += [c["name"] for c in weighted.get("clusters") or [] if isinstance(c.get("name"), str)]
    return names


def vhost_clusters(route_config: Mapping[str, Any], targets: Sequence[TargetSpec]) -> list[str]:
    names: list[str] = []
    for vhost in route_config.get("virtual_hosts") or []:
        domains = [str(d) for d in vhost.get("domains") or []]
        if not any(_domain_matches(d, target_host(t), t.port) for d in domains for t in targets):
            continue
        for route in vhost.get("routes") or []:
            names += _cluster_refs(route.get("route") or {})
    return names


def _chain_relevant(chain: Mapping[str, Any], targets: Sequence[TargetSpec]) -> bool:
    server_names = (chain.get("filter_chain_match") or {}).get("server_names") or []
    return not server_names or any(
        _domain_matches(s, target_host(t), t.port) for s in server_names for t in targets
    )


def listener_references(
    listeners: Iterable[Mapping[str, Any]], targets: Sequence[TargetSpec]
) -> tuple[list[str], list[str]]:
    """(route names via RDS, cluster names) referenced by the chains that could match a target."""
    routes: list[str] = []
    clusters: list[str] = []
    for listener in listeners:
        chains = list(listener.get("filter_chains") or [])
        if listener.get("default_filter_chain"):
            chains.append(listener["default_filter_chain"])
        for chain in chains:
            if not _chain_relevant(chain, targets):
                continue
            for flt in chain.get("filters") or []:
                cfg = flt.get("typed_config") or {}
                clusters += _cluster_refs(cfg)
                rds = cfg.get("rds") or {}
                if isinstance(rds.get("route_config_name"), str):
                    routes.append(rds["route_config_name"])
                if isinstance(cfg.get("route_config"), Mapping):
                    clusters += vhost_clusters(cfg["route_config"], targets)
    return unique(routes), unique(clusters)


def unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
