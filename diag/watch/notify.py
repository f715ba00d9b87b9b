"""What the watch says when a target's verdict changes: one JSON log line on stdout, and a
Kubernetes Event on the watch's own pod where RBAC allows (docs/watch.md, Logs and Events)."""

from __future__ import annotations

import datetime
import json
import sys
from typing import IO, Any

from diag import errors
from diag.cluster import Cluster, resource_path
from diag.watch.verdict import Verdict


def log_line(before: Verdict | None, after: Verdict, now: float) -> dict[str, Any]:
    """The JSON object logged for one verdict change."""
    line: dict[str, Any] = {
        "time": iso_time(now),
        "msg": "verdict changed",
        "target": after.target,
        "from": before.summary() if before is not None else None,
        "to": after.summary(),
        "success": after.passed,
        "signature": after.signature,
        "code": after.code,
    }
    if not after.passed:
        line.update(message=after.message, resources=list(after.resources), fix=after.fix)
        if after.fix_yaml:
            line["fix_yaml"] = after.fix_yaml
    return line


class Notifier:
    """Writes log lines, and posts Events about ``pod`` (``namespace/name``) when it may: the
    first refused Event (403) turns Events off, with one log line saying so."""

    def __init__(
        self, cluster: Cluster | None, pod: tuple[str, str] | None, out: IO[str] | None = None
    ) -> None:
        self.cluster = cluster
        self.pod = pod
        self.out = out or sys.stdout
        self.events = cluster is not None and pod is not None
        self.sent = 0

    def changed(self, before: Verdict | None, after: Verdict, now: float) -> None:
        self.log(log_line(before, after, now))
        if self.events and (before is not None or not after.passed):
            self._event(before, after, now)

    def log(self, line: dict[str, Any]) -> None:
        self.out.write(json.dumps(line, sort_keys=False) + "\n")
        self.out.flush()

    def _event(self, before: Verdict | None, after: Verdict, now: float) -> None:
        assert self.cluster is not None and self.pod is not None
        namespace, name = self.pod
        reason = "EgressRecovered" if after.passed else f"EgressFailed{after.code.replace('none', '')}"
        note = f"{after.target}: {after.summary()}"
        if not after.passed and after.message:
            note += f": {after.message}"
            if after.fix:
                note += f" (fix: {after.fix})"
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{name}.meshprobe-", "namespace": namespace},
            "involvedObject": {"apiVersion": "v1", "kind": "Pod", "namespace": namespace, "name": name},
            "reason": reason[:128],
            "message": note[:1024],
            "type": "Normal" if after.passed else "Warning",
            "source": {"component": "meshprobe-watch"},
            "firstTimestamp": iso_time(now),
            "lastTimestamp": iso_time(now),
            "count": 1,
        }
        try:
            self.cluster.request("POST", resource_path("", "v1", "events", namespace), body=event,
                                 what=f"create events in {namespace}")  # fmt: skip
            self.sent += 1
        except errors.PermissionDenied as exc:
            self.events = False
            self.log({"time": iso_time(now), "msg": "Events off: creating them is forbidden",
                      "error": exc.message})  # fmt: skip
        except errors.MeshprobeError as exc:
            self.log({"time": iso_time(now), "msg": "an Event could not be created", "error": exc.message})


def iso_time(now: float) -> str:
    stamp = datetime.datetime.fromtimestamp(now, datetime.UTC).isoformat(timespec="seconds")
    return stamp.replace("+00:00", "Z")
