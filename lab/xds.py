"""Config "push" to a lab sidecar through Envoy's filesystem xDS (``path_config_source``).

istiod pushes LDS/CDS over ADS; the lab writes the same resources as DiscoveryResponse files and
replaces them atomically (``os.replace``, which Envoy's inotify watch needs). Envoy treats them like
pushed config: they appear as ``dynamic_listeners``/``dynamic_active_clusters`` with a
``version_info``, changed listeners are drained, and ``cluster_manager.cds.update_*`` /
``listener_manager.lds.update_*`` count accepted and rejected (NACKed) updates — a rejected update
leaves the previous config in place, as on a real sidecar. CDS is written (and acknowledged and
warmed) before LDS, the order istiod's ADS push uses, so listeners never refer to clusters Envoy
lacks; a push counts as done once the update counter moved and nothing is warming any more.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.bootstrap import CLUSTER_TYPE, LISTENER_TYPE, with_access_logs, xds_file

COUNTERS_PATH = (
    "/stats?filter=^((cluster_manager%5C.cds|listener_manager%5C.lds)%5C.update_(success|rejected|failure)"
    "|cluster_manager%5C.warming_clusters|listener_manager%5C.total_listeners_warming)$"
)
WARMING_GAUGE = {"cluster_manager.cds": "cluster_manager.warming_clusters",
                 "listener_manager.lds": "listener_manager.total_listeners_warming"}  # fmt: skip
Counters = Callable[[], dict[str, int]]


@dataclass(frozen=True)
class PushResult:
    """How Envoy took one push: per type ``accepted``, ``rejected`` (NACK) or ``timeout``."""

    version: str
    cds: str
    lds: str

    @property
    def accepted(self) -> bool:
        return self.cds == "accepted" and self.lds == "accepted"


def parse_counters(body: str) -> dict[str, int]:
    """``name: value`` lines of admin ``/stats`` → dict."""
    out: dict[str, int] = {}
    for line in body.splitlines():
        name, _, value = line.partition(": ")
        if value.strip().isdigit():
            out[name.strip()] = int(value)
    return out


class FileXds:
    """The two xDS files of one pod (``lds.json``, ``cds.json``) and their version counter."""

    def __init__(self, directory: Path, access_log_path: Path | None) -> None:
        self.directory = directory
        self.access_log_path = access_log_path
        self.version = 0

    def _write(self, name: str, doc: Mapping[str, Any]) -> None:
        self.directory.mkdir(mode=0o755, parents=True, exist_ok=True)
        tmp = self.directory / f".{name}.tmp"
        tmp.write_text(json.dumps(doc))
        tmp.chmod(0o644)
        os.replace(tmp, self.directory / name)

    def _listeners(self, listeners: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        if self.access_log_path is None:
            return [dict(x) for x in listeners]
        return with_access_logs(listeners, str(self.access_log_path))

    def write_initial(
        self, listeners: Sequence[Mapping[str, Any]], clusters: Sequence[Mapping[str, Any]]
    ) -> None:
        """Both files, before Envoy starts (its initial fetch reads them)."""
        self.version += 1
        self._write("cds.json", xds_file(CLUSTER_TYPE, clusters, str(self.version)))
        self._write("lds.json", xds_file(LISTENER_TYPE, self._listeners(listeners), str(self.version)))

    def push(
        self,
        listeners: Sequence[Mapping[str, Any]],
        clusters: Sequence[Mapping[str, Any]],
        counters: Counters,
        timeout: float = 5.0,
    ) -> PushResult:
        """CDS, wait for Envoy's ACK/NACK, then LDS, wait again (OSError if admin is unreachable)."""
        self.version += 1
        version = str(self.version)
        cds = self._push_one("cds.json", xds_file(CLUSTER_TYPE, clusters, version),
                             "cluster_manager.cds", counters, timeout)  # fmt: skip
        lds = self._push_one("lds.json", xds_file(LISTENER_TYPE, self._listeners(listeners), version),
                             "listener_manager.lds", counters, timeout)  # fmt: skip
        return PushResult(version, cds, lds)

    def _push_one(
        self, name: str, doc: Mapping[str, Any], prefix: str, counters: Counters, timeout: float
    ) -> str:
        before = counters()
        self._write(name, doc)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                now = counters()
            except OSError:
                continue
            if any(
                now.get(f"{prefix}.{c}", 0) > before.get(f"{prefix}.{c}", 0)
                for c in ("update_rejected", "update_failure")
            ):
                return "rejected"  # update_failure: a file Envoy could not even parse
            accepted = now.get(f"{prefix}.update_success", 0) > before.get(f"{prefix}.update_success", 0)
            if accepted and now.get(WARMING_GAUGE[prefix], 0) == 0:
                return "accepted"  # and warmed: the new resources are active
            time.sleep(0.005)
        return "timeout"
