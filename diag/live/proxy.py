"""Whole-proxy facts from its config: :func:`effective_mode` (the cluster of
``virtualOutbound-catchall-tcp``, docs/model.md), :func:`empty_clusters` (DNS/EDS clusters
``/clusters`` shows without hosts) and :func:`rejected_updates` (``lds``/``cds``
``update_rejected`` counters and resources in an error state).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from diag.live.config import load_config
from diag.live.fields import InvalidConfig, as_messages
from diag.live.filters import TCP_PROXY, network_filter, tcp_cluster
from diag.live.listeners import VIRTUAL_OUTBOUND

CATCHALL_CHAIN = "virtualOutbound-catchall-tcp"
BLACKHOLE = "BlackHoleCluster"
PASSTHROUGH = "PassthroughCluster"


def catchall_cluster(config: Any) -> str | None:
    """The cluster of the ``virtualOutbound-catchall-tcp`` chain (None: no virtualOutbound)."""
    cfg = load_config(config)
    outbound = cfg.listener(VIRTUAL_OUTBOUND)
    if outbound is None:
        return None
    for chain in as_messages(outbound.get("filter_chains"), "virtualOutbound.filter_chains"):
        if chain.get("name") == CATCHALL_CHAIN:
            tcp = network_filter(chain, TCP_PROXY)
            return tcp_cluster(tcp) if tcp is not None else None
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
