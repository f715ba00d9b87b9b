"""`meshprobe demo` end to end: it tells the story (blocked host, MP0101, the fix, green), exits 0,
and leaves nothing of its lab behind — also when interrupted midway. (How long it takes is measured
in `benchmarks/check_e2e --demo`, not asserted here.)"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.lab

DEMO = [sys.executable, "-c", "from diag.entry import run; run()", "demo"]
RUN_ID = re.compile(r"lab ([0-9a-f]{6}) up in")


def left_after(run_id: str, seconds: float = 30.0) -> list[str]:
    from lab.leftovers import leftovers

    deadline = time.monotonic() + seconds
    while (left := leftovers(run_id)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def test_demo_finds_fixes_and_cleans_up() -> None:
    done = subprocess.run(DEMO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "MP0101" in out and "kind: ServiceEntry" in out
    assert "1 passed, 1 failed" in out and "2 passed, 0 failed" in out
    assert out.index("1 passed, 1 failed") < out.index("2 passed, 0 failed")
    found = RUN_ID.search(out)
    assert found is not None, out
    assert left_after(found.group(1), 5.0) == []


def test_interrupted_demo_leaves_nothing() -> None:
    proc = subprocess.Popen(DEMO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    run_id = None
    for line in proc.stdout:  # interrupt while the first check runs
        found = RUN_ID.search(line)
        run_id = found.group(1) if found else run_id
        if line.startswith("[2]"):
            break
    assert run_id is not None
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert left_after(run_id) == []
