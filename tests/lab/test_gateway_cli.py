"""``meshprobe lab up --egress-gateway``: the detached lab runs istio-egressgateway too, a task setup
applied at ``up`` sends the app's call through it, and ``down`` — also after the supervisor was
SIGKILLed — leaves nothing of the gateway behind (its netns, its Envoy)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.lab.testdata import egress_gateway as eg

pytestmark = pytest.mark.lab


def _cli(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MESHPROBE_LAB_STATE": str(state), "NO_COLOR": "1"}
    argv = [sys.executable, "-c", "from diag.cli import run; run()", *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=90, check=False)


def test_up_with_egress_gateway_routes_through_it_and_down_cleans_up(tmp_path: Path) -> None:
    from lab.leftovers import leftovers

    config = tmp_path / "egress.yaml"
    config.write_text(yaml.safe_dump_all(eg.plain_http()))
    state = tmp_path / "state"
    up = _cli(state, "lab", "up", "--egress-gateway", "--config", str(config), "--internet", eg.HOST)
    assert up.returncode == 0, up.stderr
    run_id = json.loads((state / "state.json").read_text())["run_id"]
    try:
        info = json.loads(_cli(state, "lab", "status", "-o", "json").stdout)
        gateway = info["egress_gateway"]
        assert gateway["netns"] == f"mplab-{run_id}-gw" and gateway["envoy_running"]
        pod_address = info["pods"][0]["address"]
        done = _cli(state, "lab", "exec", "--", "curl", "-sS", "-m", "5", f"http://{eg.HOST}/cli")
        assert done.returncode == 0, done.stderr
        origin = json.loads(done.stdout)
        assert origin["host"] == eg.HOST
        # The gateway's HCM (use_remote_address) adds the caller's address; a direct call has none.
        assert origin["headers"]["x-forwarded-for"] == pod_address
    finally:
        down = _cli(state, "lab", "down")
    assert down.returncode == 0, down.stderr
    assert leftovers(run_id) == []


def test_down_after_a_killed_supervisor_removes_the_gateway(tmp_path: Path) -> None:
    from lab.envoy import alive
    from lab.leftovers import leftovers

    state = tmp_path / "state"
    assert _cli(state, "lab", "up", "--egress-gateway").returncode == 0
    info = json.loads((state / "state.json").read_text())
    gateway_pid = json.loads(_cli(state, "lab", "status", "-o", "json").stdout)["egress_gateway"]["envoy_pid"]
    assert alive(gateway_pid)
    os.kill(info["pid"], 9)
    deadline = time.monotonic() + 5
    while (alive(info["pid"]) or alive(gateway_pid)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not alive(gateway_pid)  # --pdeathsig KILL
    assert f"netns mplab-{info['run_id']}-gw" in leftovers(info["run_id"])
    down = _cli(state, "lab", "down")
    assert down.returncode == 0 and "no lab was up" in down.stdout
    assert leftovers(info["run_id"]) == []
