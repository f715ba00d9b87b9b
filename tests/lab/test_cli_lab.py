"""`meshprobe lab up|status|exec|apply|down` round trip (a detached supervisor owns the lab)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

SERVICE_ENTRY = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: pkg, namespace: default}
spec:
  hosts: [pkg.lab.example]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DNS
"""


def _cli(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MESHPROBE_LAB_STATE": str(state), "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-c", "from diag.cli import run; run()", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_up_status_exec_apply_down_round_trip(tmp_path: Path) -> None:
    from lab.leftovers import leftovers

    state = tmp_path / "state"
    up = _cli(state, "lab", "up", "--internet", "pkg.lab.example", "--mode", "ALLOW_ANY")
    assert up.returncode == 0, up.stderr
    run_id = json.loads((state / "state.json").read_text())["run_id"]
    try:
        again = _cli(state, "lab", "up")
        assert again.returncode == 4 and "already up" in again.stderr
        status = _cli(state, "lab", "status", "-o", "json")
        info = json.loads(status.stdout)
        assert info["run_id"] == run_id and info["pods"][0]["envoy_running"] and info["pods"][0]["ready"]
        assert "pkg.lab.example" in _cli(state, "lab", "status").stdout
        ok = _cli(state, "lab", "exec", "--", "curl", "-sS", "-m", "5", "https://pkg.lab.example/")
        assert ok.returncode == 0 and json.loads(ok.stdout)["host"] == "pkg.lab.example", ok.stderr
        failing = _cli(state, "lab", "exec", "-n", "team-b", "--", "sh", "-c", "id -u; exit 7")
        assert (failing.returncode, failing.stdout.strip()) == (7, "1000")
        config = tmp_path / "se.yaml"
        config.write_text(SERVICE_ENTRY)
        applied = _cli(state, "lab", "apply", str(config))
        assert applied.returncode == 0 and "applied 1 object" in applied.stdout, applied.stderr
        bad = _cli(state, "lab", "apply", str(tmp_path / "missing.yaml"))
        assert bad.returncode == 2 and bad.stderr.startswith("error: ")
    finally:
        down = _cli(state, "lab", "down")
    assert down.returncode == 0 and run_id in down.stdout
    assert leftovers(run_id) == []
    assert _cli(state, "lab", "status").returncode == 4


def test_down_cleans_up_after_a_killed_supervisor(tmp_path: Path) -> None:
    from lab.envoy import alive
    from lab.leftovers import leftovers

    state = tmp_path / "state"
    assert _cli(state, "lab", "up").returncode == 0
    info = json.loads((state / "state.json").read_text())
    os.kill(info["pid"], 9)
    deadline = time.monotonic() + 5
    while alive(info["pid"]) and time.monotonic() < deadline:
        time.sleep(0.02)
    down = _cli(state, "lab", "down")
    assert down.returncode == 0 and "no lab was up" in down.stdout
    assert leftovers(info["run_id"]) == []
    assert not (state / "state.json").exists()
