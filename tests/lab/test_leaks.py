"""Nothing left behind (docs/lab.md, Cleanup): after a lab closes — normally, on a failed start, or when the
process holding it gets SIGINT/SIGTERM — no netns, veth, process or file of that run remains."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Any

import pytest

pytestmark = pytest.mark.lab

HOLDER = """
import sys, time
from lab.runtime import Lab, handwritten_source
from lab.pod import PodSpec
with Lab(config_source=handwritten_source, pods=[PodSpec(), PodSpec(namespace="b", dns_capture=True)]) as lab:
    print(lab.run_id, flush=True)
    time.sleep(60)
"""


def _wait_clean(run_id: str, timeout: float = 5.0) -> list[str]:
    from lab.leftovers import leftovers

    deadline = time.monotonic() + timeout
    while (left := leftovers(run_id)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def test_closed_lab_leaves_nothing() -> None:
    from lab.leftovers import leftovers
    from lab.runtime import Lab, handwritten_source

    with Lab(config_source=handwritten_source) as lab:
        run_id = lab.run_id
        lab.pod("second")
        assert len(leftovers(run_id)) >= 4  # the check sees live objects: netns ×3, envoy ×2, dir
    assert _wait_clean(run_id) == []


def test_failed_start_leaves_nothing() -> None:
    from lab.runtime import Lab, LabStartError

    def broken(*_: Any) -> Any:
        return [{"name": "bad", "address": "not-an-address"}], [], {}

    lab = Lab(config_source=broken)
    with pytest.raises(LabStartError), lab:
        pass
    assert _wait_clean(lab.run_id) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_lab_cleans_up(sig: signal.Signals) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        run_id = proc.stdout.readline().strip()
        assert len(run_id) == 6, proc.stderr.read() if proc.stderr else ""
        proc.send_signal(sig)
        proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert _wait_clean(run_id) == []


def test_sigkilled_lab_leaves_no_sidecar_and_sweep_removes_the_rest() -> None:
    from lab.envoy import alive
    from lab.leftovers import leftovers, sweep

    holder = HOLDER.replace(
        "print(lab.run_id, flush=True)", "print(lab.run_id, lab.pod().envoy.pid, flush=True)"
    )
    proc = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        run_id, envoy_pid = proc.stdout.readline().split()
        proc.kill()
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    deadline = time.monotonic() + 5
    while alive(int(envoy_pid)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not alive(int(envoy_pid))  # --pdeathsig KILL
    assert any(item.startswith("netns ") for item in leftovers(run_id))
    sweep(run_id)
    assert leftovers(run_id) == []


def test_lab_never_closed_is_cleaned_up_at_interpreter_exit() -> None:
    script = (
        "from lab.runtime import Lab, handwritten_source\n"
        "lab = Lab(config_source=handwritten_source).start()\n"
        "print(lab.run_id, flush=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    assert _wait_clean(done.stdout.strip()) == []
