"""explain at scale: load + snapshot + predictions for 1k/10k/50k ServiceEntries, vs a naive scan.

For each size the mesh is generated once (generate.py: N ServiceEntries, N/10 Sidecars, N/5
Services, as `kubectl get -o json` output and as multi-document YAML), then each measurement runs
in its own subprocess so peak RSS (ru_maxrss) is per run:

- `indexed`: diag.model.loader → Snapshot.build → diag.predict.sidecar.predict for every target (the product);
- `naive`: the same load and snapshot, then per target a linear scan over every service
  (host match, port, discoverySelectors/exportTo/Sidecar import via diag.predict.visibility) — what a
  prediction without indexes or per-proxy scopes costs.

- `explain` (`--explain`): `meshprobe explain` in-process for four targets of a REGISTRY_ONLY
  source (`diag.commands.explain.run` and the JSON report): rules, and each fix checked by
  re-predicting the calls it could change.

`--before DIR` measures another checkout's `diag` (e.g. `git worktree add /tmp/before HEAD~1`)
beside this one: the legs take turns run after run, so load from other work hits both alike.

    python benchmarks/explain_scale/run.py [--sizes 1000,10000,50000] [--targets 60] [--yaml]
        [--explain] [--before DIR] [--no-naive] [--repeat 3]

Prints one JSON line per run and a Markdown table (the one in docs/benchmarks.md).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Bytecode of the measured code goes here, not beside the sources (the first run of each leg
# compiles it; later runs import it as an installed package would).
PYCACHE = "explain-scale-pycache"  # under the temporary directory
SOURCES = ("team-3",)  # `explain -n NS`: one source proxy; --sources adds more


def targets(size: int, count: int, sources: tuple[str, ...] = SOURCES) -> list[dict[str, object]]:
    """Calls spread over existing hosts (several ports/protocols) and unknown hosts."""
    out: list[dict[str, object]] = []
    per_source = max(1, count // len(sources))
    for s, ns in enumerate(sources):
        for k in range(per_source):
            i = (k * 7919 + s * 104729) % size
            host = f"svc{i}.ext{i % 97}.example.com"
            kind = k % 5
            call: dict[str, object] = {"host": host, "port": 443, "protocol": "tls"}
            if kind == 1:
                call = {"host": host, "port": 80, "protocol": "http"}
            elif kind == 2:
                call = {"host": f"unknown{k}.example.net", "port": 443, "protocol": "https"}
            elif kind == 3:
                call = {"host": host, "port": 8080, "protocol": "http"}
            elif kind == 4:
                call = {
                    "host": f"db{k}",
                    "port": 5432 + k % 5,
                    "protocol": "tcp",
                    "address": f"203.0.113.{k % 250}",
                }
            out.append({"source": ns, "call": call})
    return out


EXPLAIN_TARGETS = (  # `--explain`: a whole explain run whose fixes are each checked (fixcheck)
    "unknown1.example.net", "svc7919.ext60.example.com", "https://svc5.ext5.example.com", "tcp://db3:5433",
)  # fmt: skip


def child_explain(path: str) -> dict[str, object]:
    """`meshprobe explain` in-process: load, snapshot, predictions, rules, fix checks, JSON report."""
    import resource

    t0 = time.perf_counter()
    from diag.commands.explain import run

    t1, c1 = time.perf_counter(), time.process_time()
    report = run(list(EXPLAIN_TARGETS), [Path(path)], namespace="team-3", mode="REGISTRY_ONLY", output="json")
    text = json.dumps(report.to_json())
    t2, c2 = time.perf_counter(), time.process_time()
    return {
        "import_s": round(t1 - t0, 4), "load_s": 0, "snapshot_s": 0, "predict_s": round(t2 - t1, 4),
        "total_s": round(t2 - t1, 4), "total_cpu_s": round(c2 - c1, 4), "per_call_ms": 0,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "fixes": text.count('"fix": {'), "objects": 0, "problems": 0, "allowed": 0,
    }  # fmt: skip


def child(path: str, mode: str, calls: list[dict[str, object]]) -> dict[str, object]:
    import resource

    if mode == "explain":
        return child_explain(path)
    t0 = time.perf_counter()
    from diag.model.loader import load_paths
    from diag.model.snapshot import Snapshot
    from diag.predict.sidecar import Call, Source, predict

    t1 = time.perf_counter()
    c1 = time.process_time()
    loaded = load_paths([path])
    t2 = time.perf_counter()
    snapshot = Snapshot.build(loaded.objects)
    t3 = time.perf_counter()
    c3 = time.process_time()
    answers = []
    for item in calls:
        source = Source(namespace=str(item["source"]))
        call = Call(**item["call"])  # type: ignore[arg-type]
        if mode == "indexed":
            answers.append(predict(snapshot, source, call).verdict)
        else:
            answers.append(naive(snapshot, source, call))
    t4 = time.perf_counter()
    c4 = time.process_time()
    # The same calls again: the per-snapshot and per-source indexes now exist, so this is what one
    # prediction costs by itself (the number that must not grow with the mesh).
    # (the naive scan keeps nothing between calls: its first pass is its per-call cost)
    best = (c4 - c3) if mode == "naive" else float("inf")
    for _ in range(3 if mode == "indexed" else 0):
        c5 = time.process_time()
        for item in calls:
            source = Source(namespace=str(item["source"]))
            call = Call(**item["call"])  # type: ignore[arg-type]
            if mode == "indexed":
                predict(snapshot, source, call)
            else:
                naive(snapshot, source, call)
        best = min(best, time.process_time() - c5)
    return {
        "per_call_ms": round(best / max(1, len(calls)) * 1000, 4),
        "objects": len(loaded.objects),
        "problems": len(loaded.problems),
        "import_s": round(t1 - t0, 4),
        "load_s": round(t2 - t1, 4),
        "snapshot_s": round(t3 - t2, 4),
        "predict_s": round(t4 - t3, 4),
        "total_s": round(t4 - t1, 4),
        "total_cpu_s": round(c4 - c1, 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "allowed": answers.count("allowed"),
    }


def naive(snapshot: object, source: object, call: object) -> str:
    """A linear scan per target: every service checked for host, port and visibility."""
    from diag.model.snapshot import host_matches
    from diag.predict.visibility import effective_mode, service_visible

    visible_match = False
    for svc in snapshot.mesh_services:  # type: ignore[attr-defined]
        if not host_matches(svc.host, call.host):  # type: ignore[attr-defined]
            continue
        if svc.port(call.port) is None:  # type: ignore[attr-defined]
            continue
        if service_visible(snapshot, svc, source.namespace, source.labels).allowed:  # type: ignore[arg-type,attr-defined]
            visible_match = True
    for svc in snapshot.mesh_services:  # type: ignore[attr-defined]
        # a TCP entry without address capturing the port: also needs a full scan
        port = svc.port(call.port)  # type: ignore[attr-defined]
        if port is not None and port.family == "tcp" and not svc.addresses:
            service_visible(snapshot, svc, source.namespace, source.labels)  # type: ignore[arg-type,attr-defined]
    if visible_match:
        return "allowed"
    mode = effective_mode(snapshot, source.namespace, source.labels)  # type: ignore[arg-type,attr-defined]
    return "passthrough" if mode.mode == "ALLOW_ANY" else "blocked"


def measure(path: str, mode: str, calls: list[dict[str, object]], code: str = "") -> dict[str, object]:
    """One run in a fresh process; ``code`` is another checkout's root (its `diag` is measured)."""
    import subprocess
    import tempfile

    pycache = str(Path(tempfile.gettempdir()) / PYCACHE)
    env = dict(os.environ, PYTHONPATH=code or str(HERE.parents[1]), PYTHONPYCACHEPREFIX=pycache)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # compiled once, as an installed package is
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", path, mode],
        input=json.dumps(calls),
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    result: dict[str, object] = json.loads(proc.stdout)
    result["wall_s"] = round(time.perf_counter() - started, 3)
    return result


def child_main(path: str, mode: str) -> int:
    """A measured process: the calls from stdin, one JSON line out, then the way out the
    `meshprobe` console script takes (diag/entry.py freezes every object so that the interpreter's
    last collection does not walk them). Only what a run needs is imported here: the process wall
    time is the product's, not the harness's."""
    import gc

    calls = json.loads(sys.stdin.read())
    print(json.dumps(child(path, mode, calls)), flush=True)
    gc.freeze()
    return 0


def main() -> int:
    import argparse
    import statistics
    import tempfile

    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--targets", type=int, default=60)
    parser.add_argument("--yaml", action="store_true", help="also measure the YAML input")
    parser.add_argument("--sources", default=",".join(SOURCES), help="source namespaces (team-N)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the fastest is kept")
    parser.add_argument("--explain", action="store_true", help="also a whole explain run with fix checks")
    parser.add_argument("--before", default="", help="a checkout of earlier code: measured beside this one")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive scan")
    parser.add_argument("--child", nargs=2)
    args = parser.parse_args()
    if args.child:
        return child_main(args.child[0], args.child[1])
    sys.path.insert(0, str(HERE))
    from generate import main as generate_main

    rows = []
    with tempfile.TemporaryDirectory(prefix="explain-scale-") as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            calls = targets(size, args.targets, tuple(args.sources.split(",")))
            formats = ["json", "yaml"] if args.yaml else ["json"]
            for fmt in formats:
                path = str(Path(tmp) / f"mesh-{size}.{fmt}")
                generate_main(["generate", str(size), path] + (["--yaml"] if fmt == "yaml" else []))
                legs = [("indexed", "")] + ([("indexed", args.before)] if args.before else [])
                legs += [] if args.no_naive else [("naive", "")]
                if args.explain:
                    legs += [("explain", "")] + ([("explain", args.before)] if args.before else [])
                # the legs take turns, run after run, so a burst of load hits them alike
                runs_of: dict[tuple[str, str], list[dict[str, object]]] = {leg: [] for leg in legs}
                for _ in range(max(1, args.repeat)):
                    for mode, code in legs:
                        runs_of[(mode, code)].append(measure(path, mode, calls, code))
                for (mode, code), runs in runs_of.items():
                    medians = {
                        f"median_{column}": statistics.median(float(r[column]) for r in runs)  # type: ignore[arg-type]
                        for column in ("wall_s", "total_s", "total_cpu_s")
                    }
                    result = dict(min(runs, key=lambda r: float(r["total_cpu_s"])))  # type: ignore[arg-type]
                    # each column its own minimum: the machine is shared, so the fastest run is the
                    # one least disturbed by other work; the median says how disturbed it was
                    for column in ("wall_s", "per_call_ms"):
                        result[column] = min(float(r[column]) for r in runs)  # type: ignore[arg-type]
                    result |= medians
                    label = mode + (" before" if code else "")
                    result |= {"size": size, "format": fmt, "mode": label, "targets": len(calls)}
                    result["sources"] = args.sources.count(",") + 1
                    print(json.dumps(result), flush=True)
                    rows.append(result)
    print_table(rows)
    return 0


def print_table(rows: list[dict[str, object]]) -> None:
    """The Markdown table of docs/benchmarks.md, then ratios and growth."""
    head = (
        "| SEs | input | run | sources | load s | snapshot s | predict s (targets) "
        "| total s (CPU s) | median total s (CPU s) | process wall s (median) | per call ms | RSS MB |"
    )
    print("\n" + head)
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['size']} | {r['format']} | {r['mode']} | {r['sources']} | {r['load_s']} | "
            f"{r['snapshot_s']} | {r['predict_s']} ({r['targets']}) | "
            f"{r['total_s']} ({r['total_cpu_s']}) | {r['median_total_s']} ({r['median_total_cpu_s']}) | "
            f"{r['wall_s']} ({r['median_wall_s']}) | {r['per_call_ms']} | {r['peak_rss_mb']} |"
        )
    by_leg = {(r["size"], r["format"], r["mode"]): r for r in rows}
    for (size, fmt, mode), r in by_leg.items():
        old = by_leg.get((size, fmt, f"{mode} before"))
        if old is not None:
            ratios = [float(old[c]) / max(float(r[c]), 1e-9) for c in ("total_cpu_s", "wall_s")]  # type: ignore[arg-type]
            print(f"{size} {fmt} {mode}: before/after {ratios[0]:.2f}x in-process CPU, "
                  f"{ratios[1]:.2f}x process wall")  # fmt: skip
    smallest: dict[tuple[object, object], dict[str, object]] = {}
    for r in sorted(rows, key=lambda r: int(r["size"])):  # type: ignore[call-overload]
        if not float(r["per_call_ms"]):  # type: ignore[arg-type]
            continue  # the explain leg: no per-call figure
        base = smallest.setdefault((r["format"], r["mode"]), r)
        ratio = float(r["per_call_ms"]) / max(float(base["per_call_ms"]), 1e-9)  # type: ignore[arg-type]
        print(f"{r['size']} {r['format']} {r['mode']}: per call {ratio:.2f}x the cost at {base['size']}")
    by_key = {(r["size"], r["format"], r["mode"]): r for r in rows}
    previous: dict[str, object] | None = None
    for (size, fmt, mode), r in sorted(by_key.items(), key=lambda kv: (str(kv[0][1]), int(kv[0][0]))):  # type: ignore[call-overload]
        if mode != "indexed":
            continue
        naive_row = by_key.get((size, fmt, "naive"))
        if naive_row is not None:
            ratio = float(naive_row["predict_s"]) / max(float(r["predict_s"]), 1e-9)  # type: ignore[arg-type]
            total = float(naive_row["total_cpu_s"]) / max(float(r["total_cpu_s"]), 1e-9)  # type: ignore[arg-type]
            print(f"{size} {fmt}: predict phase {ratio:.1f}x faster than naive, total CPU {total:.1f}x")
        if previous is not None and previous["format"] != fmt:
            previous = None
        if previous is not None:
            growth = float(r["total_cpu_s"]) / max(float(previous["total_cpu_s"]), 1e-9)  # type: ignore[arg-type]
            scale = int(size) / int(previous["size"])  # type: ignore[call-overload]
            print(f"{previous['size']} -> {size} {fmt}: total CPU x{growth:.1f} for x{scale:.0f} entries")
        previous = r


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":  # the measured process: no argparse
        sys.exit(child_main(sys.argv[2], sys.argv[3]))
    sys.exit(main())
