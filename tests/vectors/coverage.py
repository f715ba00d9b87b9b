"""Print the coverage table of ``docs/vectors.md``: per vector file, how many calls each path runs,
passes, fails, marks xfail, and does not run (and why). ``python -m tests.vectors.coverage``.

It reuses the harness adapters, so its numbers are the tests' numbers (the lab column is filled in
from a ``pytest -m lab tests/vectors`` run, which needs root).
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from typing import Any

from tests.vectors import adapters
from tests.vectors.outcome import Observed, mismatches, restrict
from tests.vectors.scope import disagreement, unsupported_reason
from tests.vectors.vector_format import VectorCall, VectorCase, load_all


def _predict_runner(case: VectorCase) -> Callable[[VectorCall], Observed]:
    from diag.predict import predict

    snapshot = adapters.snapshot_for(case)
    source = adapters.predict_source(case)
    return lambda call: adapters.observed_from_prediction(
        predict(snapshot, source, adapters.predict_call(call))
    )


def _generated_runner(case: VectorCase) -> Callable[[VectorCall], Observed]:
    from diag.livepath import match
    from lab.istiod import generate

    generated = generate([dict(o) for o in case.config], adapters.pod_view(case))
    return lambda call: adapters.observed_from_livepath(match(generated, adapters.live_call(call)))


RUNNERS: dict[str, Callable[[VectorCase], Callable[[VectorCall], Observed]]] = {
    "predict": _predict_runner,
    "generated": _generated_runner,
}


def tally(path: str, case: VectorCase) -> Counter[str]:
    """Outcome counts of one case's calls on one path."""
    counts: Counter[str] = Counter()
    if unsupported_reason(path, case):
        counts["not run (unsupported)"] += len(case.calls)
        return counts
    try:
        run = RUNNERS[path](case)
    except Exception as exc:
        counts[f"error {type(exc).__name__}"] += len(case.calls)
        return counts
    for call in case.calls:
        wanted = restrict(call.expect, adapters.OBSERVABLE[path])
        if call.simulation_only:
            counts["not run (simulation only)"] += 1
        elif not wanted:
            counts["not run (unobservable)"] += 1
        else:
            counts[_verdict(path, case, call, wanted, run)] += 1
    return counts


def _verdict(path: str, case: VectorCase, call: VectorCall, wanted: dict[str, str], run: Any) -> str:
    try:
        ok = not mismatches(wanted, run(call))
    except Exception as exc:
        return f"error {type(exc).__name__}"
    known = disagreement(path, case, call)
    if known:
        return "xfail" if not ok else "xpass (remove the xfail)"
    return "pass" if ok else "fail"


def main(argv: list[str]) -> int:
    paths = argv or list(RUNNERS)
    for path in paths:
        print(f"\n## {path}\n")
        for vectors in load_all():
            total: Counter[str] = Counter()
            for case in vectors.cases:
                total += tally(path, case)
            summary = ", ".join(f"{k} {v}" for k, v in sorted(total.items()))
            print(f"| {vectors.path.stem} | {sum(total.values())} | {summary} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
