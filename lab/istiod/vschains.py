"""VirtualService ``tls`` and ``tcp`` rules as sidecar filter chains.

Pilot sources (``pilot/pkg/networking/core``): ``listener.go`` ``buildSidecarOutboundTCPListenerOpts``
(the VSs of the egress listener whose hosts match the service, ``getConfigsForHost``);
``tls.go`` ``buildSidecarOutboundTLSFilterChainOpts`` (one chain per statically matching
``tls[].match`` — ``matchTLS``: gateways, sourceLabels, port, sourceNamespace — with its
``sniHosts`` and ``destinationSubnets`` (else the service's CIDR), deduplicated on those runtime
predicates; without any, the service's own chain) and ``buildSidecarOutboundTCPFilterChainOpts``
(a ``tcp`` rule without matches, or a match without ``destinationSubnets``, is the terminal chain;
matches with subnets give CIDR chains; without a terminal one the service's own chain follows);
``networkfilter.go`` ``buildOutboundNetworkFilters`` (one destination → ``tcp_proxy`` to
``GetDestinationCluster``; several → ``weighted_clusters`` with stat prefix ``name.namespace``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lab.istiod.hosts import matches
from lab.istiod.model import MeshService
from lab.istiod.vsparse import VirtualService
from lab.istiod.vsroutes import destination_cluster

Destinations = list[tuple[str, int]]  # (cluster, weight); one entry with weight 0 for a single route


def configs_for_host(vss: Sequence[VirtualService], hostname: str) -> list[VirtualService]:
    """``getConfigsForHost``: VSs with a host matching the service (either way)."""
    return [vs for vs in vss if any(matches(h, hostname) for h in vs.hosts)]


def _static_match(match: Mapping[str, Any], labels: Mapping[str, str], port: int, ns: str) -> bool:
    """``matchTLS``/``matchTCP``: what can be decided while generating the config."""
    gateways = match.get("gateways") or []
    if gateways and "mesh" not in gateways:
        return False
    if any(labels.get(k) != v for k, v in (match.get("sourceLabels") or {}).items()):
        return False
    if match.get("port") and int(match["port"]) != port:
        return False
    return not match.get("sourceNamespace") or match["sourceNamespace"] == ns


def route_destinations(routes: Sequence[Mapping[str, Any]], services: Mapping[str, MeshService],
                       port: int) -> Destinations:
    if len(routes) == 1:
        return [(destination_cluster(routes[0].get("destination") or {}, services, port), 0)]
    return [(destination_cluster(r.get("destination") or {}, services, port), int(r.get("weight") or 0))
            for r in routes if int(r.get("weight") or 0) > 0]


def tls_route_chains(configs: Sequence[VirtualService], base_cidrs: list[str], port: int,
                     services: Mapping[str, MeshService], labels: Mapping[str, str],
                     ns: str) -> list[tuple[list[str], list[str], Destinations, str]]:
    """(sni hosts, cidrs, destinations, stat prefix) per TLS route chain."""
    out = []
    handled: set[tuple[str, str]] = set()
    for vs in configs:
        for rule in vs.tls:
            for match in rule.get("match") or []:
                if not _static_match(match, labels, port, ns):
                    continue
                subnets = [str(s) for s in match.get("destinationSubnets") or []]
                cidrs = subnets if subnets and port > 0 else base_cidrs
                key = (",".join(match.get("sniHosts") or []), ",".join(subnets))
                if key in handled:
                    continue
                handled.add(key)
                sni = [str(h).lower() for h in match.get("sniHosts") or []]
                dest = route_destinations(rule.get("route") or [], services, port)
                out.append((sni, cidrs, dest, f"{vs.meta.name}.{vs.meta.namespace}"))
    return out


def tcp_route_chains(configs: Sequence[VirtualService], base_cidrs: list[str], port: int,
                     services: Mapping[str, MeshService], labels: Mapping[str, str],
                     ns: str) -> tuple[list[tuple[list[str], Destinations, str]], bool]:
    """(cidrs, destinations, stat prefix) per TCP route chain, and whether a terminal one exists."""
    out: list[tuple[list[str], Destinations, str]] = []
    default_added = False
    for vs in configs:
        prefix = f"{vs.meta.name}.{vs.meta.namespace}"
        for rule in vs.tcp:
            dest = route_destinations(rule.get("route") or [], services, port)
            matches_ = rule.get("match") or []
            if not matches_:
                out.append((base_cidrs, dest, prefix))
                return out, True
            subnets: list[str] = []
            for match in matches_:
                if not _static_match(match, labels, port, ns):
                    continue
                if not match.get("destinationSubnets") or port == 0:
                    out.append((base_cidrs, dest, prefix))
                    return out, True
                subnets.extend(str(s) for s in match["destinationSubnets"])
            if subnets:
                out.append((subnets, dest, prefix))
                if sorted(subnets) == sorted(base_cidrs):
                    default_added = True  # the service's own chain would have the same match
    return out, default_added
