"""A container on the lab's node: its host process, state as the kubelet reports it
(``waiting``/``running``/``terminated``), restarts and log; and the environment a container gets
(literal values and the downward API fields pods commonly use)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Container:
    """One app or ephemeral container: its process, state and log."""

    def __init__(self, spec: Mapping[str, Any], log: Path) -> None:
        self.spec = dict(spec)
        self.name = str(spec.get("name"))
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.state: dict[str, Any] = {"waiting": {"reason": "ContainerCreating"}}
        self.restarts = 0
        self.exit_code: int | None = None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(2)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(2)

    def status(self, ready: bool) -> dict[str, Any]:
        return {
            "name": self.name,
            "image": self.spec.get("image", ""),
            "imageID": "",
            "ready": ready,
            "restartCount": self.restarts,
            "started": self.running(),
            "state": self.state,
        }


def container_env(container: Mapping[str, Any], pod: Mapping[str, Any], pod_ip: str) -> dict[str, str]:
    """The container's env: literal values and the downward API fields pods commonly use."""
    meta = pod.get("metadata") or {}
    fields = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "status.podIP": pod_ip,
        "spec.serviceAccountName": (pod.get("spec") or {}).get("serviceAccountName"),
    }
    out: dict[str, str] = {}
    for item in container.get("env") or []:
        if "value" in item:
            out[str(item["name"])] = str(item.get("value") or "")
        else:
            path = str(((item.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath"))
            if fields.get(path) is not None:
                out[str(item["name"])] = str(fields[path])
    return out
