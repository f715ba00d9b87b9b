"""Find (and, for dead owners, remove) what a lab run left behind, selected by its run id only.

Used by the leak tests and by ``meshprobe lab down`` after a supervisor was killed hard. Never
touches anything without the run id in its name.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from lab.envoy import alive
from lab.names import NETNS_PREFIX
from lab.netns import delete_netns, list_netns


def _netns(run_id: str) -> list[str]:
    return [n for n in list_netns() if n.startswith(f"{NETNS_PREFIX}{run_id}-")]


def _processes(run_id: str) -> list[int]:
    marker = f"meshprobe-lab-{run_id}-".encode()
    netns_marker = f"/run/netns/{NETNS_PREFIX}{run_id}-".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if (marker in cmdline or netns_marker in cmdline) and alive(int(entry.name)):
            found.append(int(entry.name))
    return sorted(found)


def _links(run_id: str) -> list[str]:
    done = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=False, timeout=10)
    return [line.split(":")[1].strip() for line in done.stdout.splitlines() if f"mp{run_id}" in line]


def _dirs(run_id: str) -> list[Path]:
    return sorted(Path(tempfile.gettempdir()).glob(f"meshprobe-lab-{run_id}-*"))


def leftovers(run_id: str) -> list[str]:
    """Human-readable list of every lab object of this run that still exists (empty: clean)."""
    return [
        *(f"netns {n}" for n in _netns(run_id)),
        *(f"process {p}" for p in _processes(run_id)),
        *(f"link {link}" for link in _links(run_id)),
        *(f"dir {d}" for d in _dirs(run_id)),
    ]


def sweep(run_id: str) -> list[str]:
    """Remove what a dead run left (processes by PID, netns, temp dirs); returns what was removed."""
    removed: list[str] = []
    if not re.fullmatch(r"[0-9a-f]{6}", run_id):
        return removed
    for pid in _processes(run_id):
        try:
            os.kill(pid, signal.SIGKILL)
            removed.append(f"process {pid}")
        except ProcessLookupError:
            pass
    for name in _netns(run_id):
        delete_netns(name)
        removed.append(f"netns {name}")
    for path in _dirs(run_id):
        shutil.rmtree(path, ignore_errors=True)
        removed.append(f"dir {path}")
    return removed
