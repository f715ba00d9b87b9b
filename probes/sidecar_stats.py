"""The sidecar's counters (``/stats?filter=…&format=json&type=Counters``): the attribution counters
(``cluster.BlackHoleCluster.*``, ``cluster.PassthroughCluster.*``, ``tcp.*``, the targets'
``cluster.outbound|PORT|…|HOST``), read before and after probing. A stock sidecar does not emit
them (Istio's bootstrap ``stats_matcher`` inclusion list, ``tools/packaging/common/envoy_bootstrap.json``
+ ``pkg/bootstrap/config.go``; review §2.1), so a snapshot also says whether the pod opted in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from probes.model import TargetSpec
from probes.sidecar_admin import DEFAULT_ADMIN, AdminEndpoint, AdminError, open_admin
from probes.sidecar_names import counter_filter

ATTRIBUTION_PREFIXES = (
    "cluster.BlackHoleCluster",
    "cluster.PassthroughCluster",
    "tcp.BlackHoleCluster",
    "tcp.PassthroughCluster",
)
UPDATE_REJECTED_FILTER = r"^(listener_manager\.lds|cluster_manager\.cds)\.update_rejected$"


@dataclasses.dataclass(frozen=True)
class CounterSnapshot:
    """Counters read before probing. ``opted_in``: the attribution counters exist at all."""

    counters: Mapping[str, int]
    opted_in: bool
    error: str | None = None


def read_counters(ep: AdminEndpoint, filter_regex: str) -> dict[str, int]:
    """``/stats?filter=…&format=json&type=Counters`` as {name: value}."""
    return counters_from(ep.get_json("/stats", counter_params(filter_regex)))


def counter_params(filter_regex: str) -> dict[str, str]:
    return {"filter": filter_regex, "format": "json", "type": "Counters"}


def counters_from(doc: Any) -> dict[str, int]:
    stats = doc.get("stats") or [] if isinstance(doc, Mapping) else []
    return {str(s["name"]): int(s["value"]) for s in stats if "name" in s and isinstance(s.get("value"), int)}


def has_attribution_counters(counters: Mapping[str, int]) -> bool:
    return any(name.startswith(ATTRIBUTION_PREFIXES) for name in counters)


def snapshot_counters(
    targets: Sequence[TargetSpec], *, admin: str = DEFAULT_ADMIN, timeout: float = 2.0
) -> CounterSnapshot:
    """Read the attribution counters before probing (cheap: one filtered ``/stats`` call)."""
    try:
        ep, doc = open_admin(admin, timeout, "/stats", counter_params(counter_filter(targets)))
        ep.client.close()
        counters = counters_from(doc)
    except (AdminError, ValueError) as exc:
        return CounterSnapshot(counters={}, opted_in=False, error=str(exc))
    return CounterSnapshot(counters=counters, opted_in=has_attribution_counters(counters))


def counter_deltas(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    """Counters that moved (a counter absent from the result did not move)."""
    return {k: v - before.get(k, 0) for k, v in sorted(after.items()) if v != before.get(k, 0)}
