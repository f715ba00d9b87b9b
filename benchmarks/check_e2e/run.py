"""Benchmark: `meshprobe check` end to end in the lab — command start to printed report — for 10
targets (5 registered, 5 blocked), against the lab's Kubernetes API.

Side by side, in the same run and the same lab:

- `meshprobe check` (a fresh process each time: Python start-up, imports, cluster connect, live
  mesh read, Job → pod → sidecar → probe → log → cleanup, report), with ``-o json`` (the headline
  number) and with the default text report (which also loads the renderer);
- with ``--baseline-tree DIR``, the same JSON check from another checkout (an earlier commit's
  ``git worktree``): before and after measured in one run, one lab, the same load;
- the same probe pod done by hand the way a runbook does it with kubectl: `kubectl create -f`
  the Job meshprobe would create, `kubectl wait` for completion, `kubectl logs`, `kubectl delete`
  (no mesh read, no diagnosis) — the baseline an SRE would otherwise type;
- the probe alone inside an existing lab pod (`python -m probes`, no cluster at all) — the floor.

Blocked targets must be classified from the sidecar's reply (reset/502), never by waiting for a
timeout: the report's per-target elapsed times are checked against the probe timeout.

With ``--demo`` it also times `meshprobe demo` (lab up, two checks, a fix, lab down; target 15 s).

Usage (root): python benchmarks/check_e2e/run.py [--repeat 5] [--demo] [--baseline-tree DIR]
[--json results.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ALLOWED = [f"ok{i}.lab.example" for i in range(5)]
BLOCKED = [f"no{i}.lab.example" for i in range(5)]
TIMEOUT_S = 5.0


def _config() -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "shop", "labels": {"istio-injection": "enabled"}},
        }
    ]
    for host in ALLOWED:
        objects.append({
            "apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
            "metadata": {"name": host.split(".")[0], "namespace": "shop"},
            "spec": {"hosts": [host], "location": "MESH_EXTERNAL", "resolution": "DNS",
                     "ports": [{"number": 443, "name": "tls", "protocol": "TLS"}]},
        })  # fmt: skip
    return objects


def _timed(argv: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    return time.perf_counter() - started, done


def _check(kubeconfig: str, output: str = "json", tree: Path | None = None) -> tuple[float, dict[str, Any]]:
    """One `meshprobe check` (from ``tree``, another checkout, when given); the JSON report, or
    for text output the hosts it names."""
    argv = [sys.executable, "-c", "from diag.entry import run; run()", "check", "--kubeconfig", kubeconfig,
            "-n", "shop", "--timeout", str(TIMEOUT_S), "-o", output, *ALLOWED, *BLOCKED]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=tree)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"check failed ({done.returncode}): {done.stderr.strip()}")
    if output == "json":
        report: dict[str, Any] = json.loads(done.stdout)
        return seconds, report
    missing = [host for host in ALLOWED + BLOCKED if host not in done.stdout]
    if missing:
        raise SystemExit(f"the text report does not name {missing}")
    return seconds, {"targets": []}


def _kubectl_by_hand(kubeconfig: str, workdir: Path, index: int) -> float:
    from diag.pod.image import PROBE_IMAGE
    from diag.pod.spec import ProbeRun, probe_job

    # expectations met → the probe exits 0 → the Job completes and `kubectl wait` returns
    targets = [*ALLOWED, *({"target": t, "expect": "blocked"} for t in BLOCKED)]
    plan = {"schema": "meshprobe.plan/v1", "targets": targets, "options": {"timeout": TIMEOUT_S},
            "sidecar": {"mode": "auto", "native": True}}  # fmt: skip
    run = ProbeRun(f"bench{index:03d}", "shop", PROBE_IMAGE, plan, native_sidecar=True)
    job = workdir / f"job{index}.yaml"
    job.write_text(yaml.safe_dump(probe_job(run, ALLOWED + BLOCKED)))
    kubectl = [shutil.which("kubectl") or "kubectl", f"--kubeconfig={kubeconfig}",
               f"--cache-dir={workdir}/cache", "-n", "shop"]  # fmt: skip
    started = time.perf_counter()
    for step in (
        ["create", "-f", str(job)],
        ["wait", "--for=condition=complete", f"job/{run.job_name}", "--timeout=60s"],
        ["logs", f"job/{run.job_name}", "-c", "probe"],
        ["delete", "-f", str(job), "--wait=true"],
    ):
        done = subprocess.run([*kubectl, *step], capture_output=True, text=True, timeout=90)
        if done.returncode != 0:
            raise SystemExit(f"kubectl {step[0]} failed: {done.stderr.strip()}")
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--demo", action="store_true", help="also time `meshprobe demo` (target: under 15 s)")
    parser.add_argument(
        "--baseline-tree", type=Path, help="another checkout (an older commit's worktree): its check too"
    )
    args = parser.parse_args()
    from lab.runtime import Lab

    # An installed meshprobe has its bytecode compiled; an editable checkout under
    # PYTHONDONTWRITEBYTECODE would recompile every module in every run and measure the compiler.
    root = Path(__file__).resolve().parents[2]
    trees = [root] + ([args.baseline_tree.resolve()] if args.baseline_tree else [])
    packages = [str(tree / name) for tree in trees for name in ("diag", "probes", "lab")]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *packages], check=True)
    legs = ("check", "check, text output", "kubectl by hand", "probe alone")
    rows: dict[str, list[float]] = {leg: [] for leg in legs}
    if args.baseline_tree:
        rows["check, baseline tree"] = []
    slowest_blocked = 0.0
    with tempfile.TemporaryDirectory() as tmp, Lab(
        _config(), mode="REGISTRY_ONLY", internet=BLOCKED, api=True, pods=[], drain_seconds=0.1
    ) as lab:  # fmt: skip
        pod = lab.pod("shop", "bench")
        kubeconfig = str(lab.kubeconfig)
        _check(kubeconfig)  # warm-up: page cache, Envoy binary
        for index in range(args.repeat):
            seconds, report = _check(kubeconfig)
            rows["check"].append(seconds)
            for target in report["targets"]:
                if target["host"] in BLOCKED:
                    slowest_blocked = max(slowest_blocked, target["observed"]["elapsed"])
            rows["check, text output"].append(_check(kubeconfig, "text")[0])
            if args.baseline_tree:
                rows["check, baseline tree"].append(_check(kubeconfig, tree=args.baseline_tree)[0])
            if shutil.which("kubectl"):
                rows["kubectl by hand"].append(_kubectl_by_hand(kubeconfig, Path(tmp), index))
            started = time.perf_counter()
            pod.exec(
                [sys.executable, "-m", "probes", "--compact", "--timeout", str(TIMEOUT_S), *ALLOWED, *BLOCKED]
            )
            rows["probe alone"].append(time.perf_counter() - started)
    if args.demo:
        rows["demo (whole story)"] = []
        for _ in range(args.repeat):
            seconds, done = _timed([sys.executable, "-c", "from diag.entry import run; run()", "demo"])
            if done.returncode != 0:
                raise SystemExit(f"demo failed: {done.stderr.strip()}")
            rows["demo (whole story)"].append(seconds)
    medians = {k: statistics.median(v) for k, v in rows.items() if v}
    print("| leg | median s | min s | max s | vs check |")
    print("|---|---|---|---|---|")
    for name, values in rows.items():
        if values:
            ratio = medians[name] / medians["check"]
            low, high = min(values), max(values)
            print(f"| {name} | {medians[name]:.2f} | {low:.2f} | {high:.2f} | {ratio:.2f}x |")
    # Paired in the same repeat (seconds apart), these ratios move less with the machine's load.
    for other in ("kubectl by hand", "check, baseline tree"):
        if rows.get(other) and len(rows[other]) == len(rows["check"]):
            paired = statistics.median(c / b for c, b in zip(rows["check"], rows[other], strict=True))
            print(f"check / {other}, paired per repeat: {paired:.2f}x median")
    if args.demo:
        print(f"demo: {medians['demo (whole story)']:.1f} s median (target < 15 s)")
    verdict = "met" if medians["check"] < 3.0 else "missed"
    print(f"\ncheck of 10 targets: {medians['check']:.2f} s median (target < 3 s: {verdict}); "
          f"slowest blocked target classified after {slowest_blocked:.2f} s "
          f"(probe timeout {TIMEOUT_S:.0f} s)")
    if args.json:
        args.json.write_text(
            json.dumps({"rows": rows, "medians": medians, "slowest_blocked_s": slowest_blocked})
        )
    return 0 if slowest_blocked < TIMEOUT_S else 1


if __name__ == "__main__":
    sys.exit(main())
