"""Probe throughput benchmark (target: docs/benchmarks.md): N HTTPS targets on loopback, measured
side by side in one run against a sequential curl loop and Prometheus blackbox_exporter.

    python benchmarks/probe_throughput/run.py [--targets 500] [--concurrency 32]
                                              [--legs meshprobe,curl,blackbox] [--json PATH]

Targets are ``tNNN.bench.lab.example`` spread over 127.0.0.2–127.0.0.9 on one random port, served
by an Envoy (``origins.py``) with a certificate from a throw-away trustme CA. Prints a Markdown
table, the ratios the target is stated in, and (with ``--json``) the raw numbers. Exit status 0
when every leg that ran got every answer right, 1 otherwise (numbers are printed either way).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from legs import REPO, LegResult, Target, blackbox_leg, curl_leg, meshprobe_leg
from origins import ADDRESSES, DOMAIN, https_origins

LEGS = ("meshprobe", "curl", "blackbox")


def make_targets(count: int, port: int) -> list[Target]:
    return [Target(f"t{i:03d}.{DOMAIN}", ADDRESSES[i % len(ADDRESSES)], port) for i in range(count)]


def ratios(results: dict[str, LegResult]) -> dict[str, float]:
    out: dict[str, float] = {}
    mp, curl, bb = results.get("meshprobe"), results.get("curl"), results.get("blackbox")
    if mp and curl and mp.wall_s > 0:
        out["curl_time / meshprobe_time"] = curl.wall_s / mp.wall_s
    if bb and curl and bb.wall_s > 0:
        out["curl_time / blackbox_time (for scale)"] = curl.wall_s / bb.wall_s
    if mp and bb and bb.wall_s > 0:
        out["meshprobe per-probe / blackbox per-probe"] = mp.per_probe_ms / bb.per_probe_ms
    startup = results.get("meshprobe (1 target)")
    if mp and bb and startup and bb.wall_s > 0 and mp.wall_s > startup.wall_s:
        net = max(mp.wall_s - startup.wall_s, 0.0) / max(mp.probes, 1)
        out["meshprobe per-probe without start-up / blackbox per-probe"] = 1000 * net / bb.per_probe_ms
    return out


def markdown(results: dict[str, LegResult], rat: dict[str, float], args: argparse.Namespace) -> str:
    lines = [
        f"{args.targets} HTTPS targets, concurrency {args.concurrency} (meshprobe, blackbox), "
        f"median of {args.rounds} round(s), "
        f"origin Envoy (+{args.origin_delay_ms} ms per answer), {os.cpu_count()} CPUs, "
        f"load average before: {args.load:.2f}",
        "",
        "| leg | probes | ok | wall s | per probe ms | CPU s | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results.values():
        rss = "—" if r.peak_rss_mb is None else f"{r.peak_rss_mb:.1f}"
        cpu = "—" if r.cpu_s is None else f"{r.cpu_s:.2f}"
        row = (r.name, r.probes, r.ok, f"{r.wall_s:.2f}", f"{r.per_probe_ms:.2f}", cpu, rss)
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    lines.append("")
    lines += [f"- {name}: **{value:.2f}**" for name, value in rat.items()]
    notes = [f"- {r.name}: {n}" for r in results.values() for n in r.notes]
    return "\n".join(lines + (["", "Notes:", *notes] if notes else []))


def _one_round(
    args: argparse.Namespace, targets: list[Target], ca_file: Path, workdir: Path
) -> list[LegResult]:
    out: list[LegResult] = []
    if "meshprobe" in args.legs:
        one = meshprobe_leg(targets[:1], ca_file, args.concurrency, workdir)
        out.append(dataclasses.replace(one, name="meshprobe (1 target)"))
        out.append(meshprobe_leg(targets, ca_file, args.concurrency, workdir))
    if "blackbox" in args.legs:
        out.append(blackbox_leg(targets, ca_file, args.concurrency, workdir))
    if "curl" in args.legs:
        out.append(curl_leg(targets, ca_file, workdir))
    return out


def median_of(rounds: list[LegResult]) -> LegResult:
    """The round with the median wall time; ``ok`` is the worst round's, RSS the highest."""
    ordered = sorted(rounds, key=lambda r: r.wall_s)
    mid = ordered[len(ordered) // 2]
    rss = [r.peak_rss_mb for r in rounds if r.peak_rss_mb is not None]
    notes = tuple(dict.fromkeys(n for r in rounds for n in r.notes))
    return dataclasses.replace(
        mid, ok=min(r.ok for r in rounds), peak_rss_mb=max(rss) if rss else None, notes=notes
    )


def run(args: argparse.Namespace) -> dict[str, LegResult]:
    """``args.rounds`` rounds, the legs interleaved in each (machine noise hits every leg alike)."""
    rounds: dict[str, list[LegResult]] = {}
    with tempfile.TemporaryDirectory(prefix="meshprobe-bench-") as tmp:
        workdir = Path(tmp)
        with https_origins(workdir, args.origin_delay_ms) as (port, ca_file):
            targets = make_targets(args.targets, port)
            if "meshprobe" in args.legs:  # warm-up, not counted: fills the bytecode cache
                meshprobe_leg(targets[:1], ca_file, args.concurrency, workdir)
            args.load = os.getloadavg()[0]
            for _ in range(args.rounds):
                for result in _one_round(args, targets, ca_file, workdir):
                    rounds.setdefault(result.name, []).append(result)
    return {name: median_of(results) for name, results in rounds.items()}


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--legs", default=",".join(LEGS), help=f"comma-separated subset of {','.join(LEGS)}")
    parser.add_argument("--rounds", type=int, default=3, help="repeat every leg; report the median round")
    parser.add_argument("--origin-delay-ms", type=int, default=0,
                        help="hold every answer this long (models a distant origin; the target is for 0)")
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    args = parser.parse_args(argv)
    args.legs = [leg.strip() for leg in args.legs.split(",") if leg.strip()]
    unknown = set(args.legs) - set(LEGS)
    if unknown or min(args.targets, args.concurrency, args.rounds) < 1:
        parser.error(f"bad --legs {sorted(unknown)}" if unknown else "--targets/--concurrency/--rounds: >= 1")
    return args


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    os.chdir(REPO)  # python -m probes runs from the repository
    started = time.time()
    try:
        results = run(args)
    except KeyboardInterrupt:
        print("interrupted: every server and child process was stopped", file=sys.stderr)
        return 130
    except (OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 4
    rat = ratios(results)
    print(markdown(results, rat, args))
    if args.json:
        doc = {"started": started, "targets": args.targets, "concurrency": args.concurrency,
               "origin_delay_ms": args.origin_delay_ms,
               "rounds": args.rounds,
               "legs": {k: {**asdict(v), "per_probe_ms": v.per_probe_ms} for k, v in results.items()},
               "ratios": rat}
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    return 0 if all(r.ok == r.probes for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
