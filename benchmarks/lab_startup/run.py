"""Benchmark: how long `meshprobe lab up`, `lab apply` and `lab down` take (targets:
up < 1.5 s, apply < 0.5 s on the 2-core machine; docs/benchmarks.md).

Measures two things, each repeated N times (median, min, max):

- the CLI end to end (a fresh `meshprobe` process each time: Python start-up + detached supervisor +
  netns + iptables + internet + Envoy LIVE), in a private state directory;
- the in-process `lab.Lab` API that tests use (start, apply, close);

with a side-by-side baseline: a Python process importing what the CLI imports and doing nothing
(`cli baseline`), so the CLI rows can be read as "baseline + lab work" on a loaded machine.

The config is `config.yaml` here (ServiceEntries for HTTP, HTTPS, TLS and TCP hosts), run through
the real generator (`lab.istiod.generate`). Usage (root):

    python benchmarks/lab_startup/run.py [--repeat 5] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).parent
CONFIG = HERE / "config.yaml"


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _cli(state: Path, *args: str) -> None:
    env = {**os.environ, "MESHPROBE_LAB_STATE": str(state)}
    done = subprocess.run(
        [sys.executable, "-c", "from diag.cli import run; run()", "lab", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"meshprobe lab {' '.join(args)} failed: {done.stderr.strip()}")


def _baseline() -> None:
    """A `meshprobe`-sized Python start: interpreter + `diag.cli` imports, no work."""
    subprocess.run(
        [sys.executable, "-c", "import diag.cli, lab.control, lab.objects"], check=True, timeout=60
    )


def bench_cli(repeat: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"cli baseline": [], "cli up": [], "cli apply": [], "cli down": []}
    with tempfile.TemporaryDirectory(prefix="mp-bench-") as tmp:
        state = Path(tmp) / "state"
        for _ in range(repeat):
            out["cli baseline"].append(_timed(_baseline))
            out["cli up"].append(
                _timed(lambda: _cli(state, "up", "--config", str(CONFIG), "--mode", "REGISTRY_ONLY"))
            )
            out["cli apply"].append(_timed(lambda: _cli(state, "apply", str(CONFIG))))
            out["cli down"].append(_timed(lambda: _cli(state, "down")))
    return out


def bench_api(repeat: int) -> dict[str, list[float]]:
    from lab.objects import load_objects
    from lab.runtime import Lab

    objects = load_objects([CONFIG])
    out: dict[str, list[float]] = {"api start": [], "api apply": [], "api close": []}
    for _ in range(repeat):
        lab = Lab(objects, mode="REGISTRY_ONLY")
        out["api start"].append(_timed(lab.__enter__))
        out["api apply"].append(_timed(lambda: lab.apply(objects)))  # noqa: B023
        out["api close"].append(_timed(lab.close))
    return out


def bench_scale(repeat: int) -> list[float]:
    """The generator on a mesh-sized input: 2000 ServiceEntries (3 ports each) + 500 Services."""
    from lab.istiod import PodView, generate
    from tests.lab.test_istiod_scale import mesh

    objects = mesh(2000, 500)
    view = PodView("default", mode_override="REGISTRY_ONLY")
    return [_timed(lambda: generate(objects, view)) for _ in range(repeat)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--scale", action="store_true", help="also time generating 2000 entries + 500 Services"
    )
    args = parser.parse_args()
    load_before = os.getloadavg()
    results = {**bench_cli(args.repeat), **bench_api(args.repeat)}
    if args.scale:
        results["generate 2.5k"] = bench_scale(args.repeat)
    rows = {
        k: {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v)}
        for k, v in results.items()
    }
    base = rows["cli baseline"]["median"]
    print(f"load average before/after: {load_before} / {os.getloadavg()}")
    print(f"{'step':<12} {'median s':>9} {'min s':>7} {'max s':>7} {'median - baseline':>18}")
    for name, r in rows.items():
        extra = f"{r['median'] - base:>18.3f}" if name.startswith("cli ") and name != "cli baseline" else ""
        print(f"{name:<12} {r['median']:>9.3f} {r['min']:>7.3f} {r['max']:>7.3f} {extra}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
