"""`meshprobe demo` end to end: it tells the story (blocked host, MP0101, the fix, green), within
15 s, exits 0, and leaves no network namespace behind — also when interrupted midway."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.lab

DEMO = [sys.executable, "-c", "from diag.cli import run; run()", "demo"]


def lab_namespaces() -> list[str]:
    from lab.netns import list_netns

    return [n for n in list_netns() if n.startswith("mplab-")]


def test_demo_finds_fixes_and_cleans_up() -> None:
    before = lab_namespaces()
    started = time.monotonic()
    done = subprocess.run(DEMO, capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "MP0101" in out and "kind: ServiceEntry" in out
    assert "1 passed, 1 failed" in out and "2 passed, 0 failed" in out
    assert out.index("1 passed, 1 failed") < out.index("2 passed, 0 failed")
    assert elapsed < 15, f"the demo took {elapsed:.1f} s"
    assert lab_namespaces() == before


def test_interrupted_demo_leaves_nothing() -> None:
    before = lab_namespaces()
    proc = subprocess.Popen(DEMO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:  # interrupt while the first check runs
        if line.startswith("[2]"):
            break
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    deadline = time.monotonic() + 10
    while lab_namespaces() != before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert lab_namespaces() == before
