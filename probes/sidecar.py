"""The sidecar's own evidence, read from inside the pod without harming anything (docs/probe-pod.md).

Public API (used by the probe runner and ``python -m probes``):

- ``detect(admin, timeout, *, agent)`` — is there a sidecar? (Envoy admin answers on
  127.0.0.1/::1:15000, or pilot-agent's readiness port :15021 answers.)
- ``wait_ready(timeout, *, agent)`` — bounded wait for ``GET :15021/healthz/ready`` → 200; seconds
  waited, or ``None``. With DNS capture, readiness also waits for the agent's DNS name table
  (istio ``pkg/istio-agent/agent.go``), so no DNS probe may start before it (review §1.5).
- ``snapshot_counters(targets, *, admin, timeout)`` — before probing: the attribution counters
  (``cluster.BlackHoleCluster.*``, ``cluster.PassthroughCluster.*``, ``tcp.BlackHoleCluster.*``,
  ``tcp.PassthroughCluster.*``, the targets' ``cluster.outbound|PORT|…|HOST`` counters). A stock
  sidecar does not emit them (Istio's bootstrap ``stats_matcher`` inclusion list,
  ``tools/packaging/common/envoy_bootstrap.json`` + ``pkg/bootstrap/config.go``; review §2.1), so the
  snapshot also says whether the pod's ``proxyStatsMatcher`` opted in.
- ``collect(results, *, ran_alone, before, admin, timeout)`` → ``SidecarEvidence``.
- ``request_quit(native, *, status, timeout)`` and ``record_quit(evidence, outcome)``.

Only filtered admin endpoints are read (admin responses can be tens of MB in big meshes, review
§1.5): ``/config_dump?resource=…&name_regex=…`` (``name_regex`` must match the whole name),
``/clusters?format=json&filter=…``, ``/stats?filter=…&format=json&type=Counters``, ``/server_info``.
Every call has a timeout and a response-size cap. Nothing here interprets the evidence: ``diag/``
does (live path, effective mode, MP0110/MP0120).

Shape of ``SidecarEvidence.config``: the raw ``config_dump`` entries, keyed by the ``resource`` they
were read with — ``static_listeners``/``dynamic_listeners``, ``static_route_configs``/
``dynamic_route_configs``, ``static_clusters``/``dynamic_active_clusters``/``dynamic_warming_clusters``
(each a list exactly as admin returned it: ``{"listener": {...}}``, ``{"name", "active_state",
"warming_state", "error_state"}``, ...). Static bootstrap configs (the lab) fill ``static_*``; a real
sidecar ``dynamic_*``. ``diag.live.path.load_config`` reads this shape; failed xDS updates
(``error_state``) are also summarised in ``notes``.

What is read: listeners ``virtualOutbound``, ``0.0.0.0_P``/``::_P`` and ``<ip>_P`` for every address
the client dialled (pilot's names, ``listener.go``), then — best effort, 1 MB cap — every other
listener on a target port (``<VIP>_443``…, evidence for an address mismatch); routes named by those
listeners (RDS) or the port (``"80"``); clusters ``BlackHoleCluster``, ``PassthroughCluster``,
``outbound|PORT|SUBSET|HOST`` for each target and those referenced by the chains/virtual hosts that
could match the target (``pilot/pkg/networking/core/cluster_builder.go`` names; ``alt_stat_name``
adds Istio's ``;`` stats delimiter, ``util.DelimitedStatsPrefix``), at most 64.

This module holds ``collect`` and re-exports the rest of the API; the work is split by job:
``sidecar_admin.py`` (the bounded loopback HTTP client), ``sidecar_lifecycle.py`` (presence,
readiness, quitting), ``sidecar_names.py`` (names and regexes from the targets),
``sidecar_config.py`` (config_dump and cluster members) and ``sidecar_stats.py`` (counters).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from probes.model import ClusterMembership, ProbeResult, SidecarEvidence, TargetSpec
from probes.sidecar_admin import DEFAULT_ADMIN, AdminError, open_admin
from probes.sidecar_config import read_membership, read_path_config
from probes.sidecar_lifecycle import detect, record_quit, request_quit, wait_ready
from probes.sidecar_names import counter_filter
from probes.sidecar_stats import (
    UPDATE_REJECTED_FILTER,
    CounterSnapshot,
    counter_deltas,
    has_attribution_counters,
    read_counters,
    snapshot_counters,
)

__all__ = [
    "AdminError",
    "CounterSnapshot",
    "collect",
    "detect",
    "record_quit",
    "request_quit",
    "snapshot_counters",
    "wait_ready",
]

_T = TypeVar("_T")


def _server_fields(info: Mapping[str, Any]) -> dict[str, Any]:
    """proxy version, server state, Istio version and DNS capture from ``/server_info``'s node."""
    meta = (info.get("node") or {}).get("metadata") or {}
    dns = meta.get("DNS_CAPTURE")
    return {
        "proxy_version": info.get("version"),
        "server_state": info.get("state"),
        "istio_version": meta.get("ISTIO_VERSION"),
        "dns_capture": None if dns is None else str(dns).lower() == "true",
    }


def collect(
    results: Sequence[ProbeResult],
    *,
    ran_alone: bool,
    before: CounterSnapshot | None = None,
    admin: str = DEFAULT_ADMIN,
    timeout: float = 5.0,
    ready_after_s: float | None = None,
    ready: bool | None = None,
    native: bool | None = None,
) -> SidecarEvidence:
    """Read the sidecar's evidence for ``results``' targets (one ``timeout`` budget for all calls).

    ``ready``: pass ``False`` when ``wait_ready`` gave up (default: ready when ``ready_after_s`` is
    set, unknown otherwise). ``counter_deltas`` is set only when ``before`` shows the stats were
    opted in **and** the probes ran alone (serially, nothing else through this proxy that we know
    of): a delta cannot be attributed to one target otherwise (docs/probe.md). A sidecar that does
    not answer gives ``present=False``; a failing single call becomes a note, never an exception.
    """
    targets = _unique_targets(r.target for r in results)
    notes: list[str] = []
    try:
        ep, info = open_admin(admin, timeout, "/server_info")
    except ValueError as exc:
        return SidecarEvidence(present=False, notes=(str(exc),))
    except AdminError as exc:
        return SidecarEvidence(present=False, native=native, notes=(f"no Envoy admin at {admin}: {exc}",))
    with ep:
        config, cluster_regex = read_path_config(ep, results, targets, notes)
        no_members: tuple[ClusterMembership, ...] = ()
        no_counters: dict[str, int] = {}
        membership = _safe(lambda: read_membership(ep, cluster_regex), no_members, notes)
        rejected = _safe(lambda: read_counters(ep, UPDATE_REJECTED_FILTER), no_counters, notes)
        after = _safe(lambda: read_counters(ep, counter_filter(targets)), no_counters, notes)
    opted_in = (before.opted_in if before is not None else False) or has_attribution_counters(after)
    deltas: dict[str, int] | None = None
    if before is not None and before.error is None and opted_in and ran_alone:
        deltas = counter_deltas(before.counters, after)
    elif opted_in and not ran_alone:
        notes.append("counter deltas not attributed: probes ran concurrently")
    return SidecarEvidence(
        present=True,
        admin=ep.address,
        ready=ready if ready is not None else (None if ready_after_s is None else True),
        ready_after_s=ready_after_s,
        native=native,
        config=config,
        clusters=membership,
        update_rejected=rejected,
        stats_opted_in=opted_in,
        counter_deltas=deltas,
        notes=tuple(notes),
        **_server_fields(info if isinstance(info, Mapping) else {}),
    )


def _unique_targets(targets: Iterable[TargetSpec]) -> list[TargetSpec]:
    seen: dict[tuple[str, int], TargetSpec] = {}
    for t in targets:
        seen.setdefault((t.host, t.port), t)
    return list(seen.values())


def _safe(read: Callable[[], _T], default: _T, notes: list[str]) -> _T:
    try:
        return read()
    except AdminError as exc:
        notes.append(str(exc))
        return default
