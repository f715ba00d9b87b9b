"""One leg of the watch benchmark: ``meshprobe watch``'s loop (``diag.watch.loop.Watcher``) in this
process over N HTTPS targets, its probe engine in-process as in the watch's pod. Prints one JSON
line per cycle: wall seconds, CPU seconds of this process (user + system), resident memory (MB),
and how many targets passed.

    python benchmarks/watch/driver.py PLAN.json --cycles 20 --interval 5

The mesh is a fixed, empty snapshot (no API server): the benchmark measures probing, diagnosis and
metrics, not reading the mesh, which happens only when the mesh changes.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from diag.live.meshread import LiveMesh
from diag.watch.loop import Watcher, WatchOptions, in_process_prober
from diag.watch.memory import tune_malloc


class _Cluster:
    namespace = "bench"
    context = "bench"


class _FixedMesh:
    reads = 1
    generation = 0

    def current(self) -> LiveMesh:
        return LiveMesh()


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("plan", type=Path, help="options to merge into each cycle's plan (resolve, ca_file)")
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument(
        "--malloc-default", action="store_true", help="skip the watch's malloc tuning (before/after)"
    )
    args = parser.parse_args()
    if not args.malloc_default:
        tune_malloc()  # as `meshprobe watch` does at start
    extra = json.loads(args.plan.read_text())

    def prober(plan: dict[str, Any]) -> Any:
        plan = {**plan, "options": {**plan["options"], **extra["options"]}, "sidecar": {"mode": "off"}}
        return in_process_prober(plan)

    options = WatchOptions(targets=tuple(extra["targets"]), interval=args.interval, jitter=0.0, timeout=10.0)
    sink = open("/dev/null", "w")  # noqa: SIM115  (open for the process's life)
    watcher = Watcher(_Cluster(), options, prober=prober, events=False, out=sink)  # type: ignore[arg-type]
    watcher.mesh = _FixedMesh()  # type: ignore[assignment]
    print(json.dumps({"cycle": 0, "rss_mb": round(_rss_mb(), 1)}), flush=True)
    for cycle in range(1, args.cycles + 1):
        started, cpu = time.monotonic(), _cpu_s()
        verdicts = watcher.cycle()
        wall = time.monotonic() - started
        line = {"cycle": cycle, "wall_s": round(wall, 3), "cpu_s": round(_cpu_s() - cpu, 3),
                "rss_mb": round(_rss_mb(), 1), "ok": sum(v.passed for v in verdicts),
                "scrape_kb": round(len(watcher.metrics.scrape()) / 1024, 1)}  # fmt: skip
        print(json.dumps(line), flush=True)
        time.sleep(max(0.0, args.interval - (time.monotonic() - started)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
