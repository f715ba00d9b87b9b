"""Target (docs/benchmarks.md): `meshprobe --help` / `--version` cost at most 1.5x a bare
`python -c "import typer, rich"`.

Runs the three commands alternately (so load changes hit all of them alike), N times each, and
prints the medians and the ratios. Uses the interpreter running this script and the `meshprobe`
console script installed beside it (not a shell shim such as pyenv's, which adds its own start-up).

    python benchmarks/cli_startup/run.py [--repeat 21]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _time(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=21)
    args = parser.parse_args()
    script = Path(sys.executable).with_name("meshprobe")
    if not script.exists():
        sys.exit(f"no meshprobe console script beside {sys.executable}: pip install -e .")
    commands = {
        "baseline: python -c 'import typer, rich'": [sys.executable, "-c", "import typer, rich"],
        "meshprobe --help": [str(script), "--help"],
        "meshprobe --version": [str(script), "--version"],
    }
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.repeat):
        for name, argv in commands.items():
            samples[name].append(_time(argv))
    medians = {name: statistics.median(xs) for name, xs in samples.items()}
    base = next(iter(medians.values()))
    print(f"{args.repeat} runs each, load average {os.getloadavg()[0]:.2f}")
    print("| command | median s | ratio to baseline |\n|---|---:|---:|")
    for name, median in medians.items():
        print(f"| {name} | {median:.3f} | {median / base:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
