"""Print the coverage table of ``docs/vectors.md``: per vector file, how many calls each path runs,
passes, fails, marks xfail, and does not run (and why). ``python -m tests.vectors.coverage``.

It reuses the harness adapters, so its numbers are the tests' numbers. ``lab`` (root only) runs the
lab path with the same runner as ``test_vectors_lab.py``: ``python -m tests.vectors.coverage lab``.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from typing import Any

from tests.vectors import adapters, gateway_adapters
from tests.vectors.outcome import Observed, mismatches, restrict
from tests.vectors.scope import disagreement, unsupported_reason
from tests.vectors.vector_format import VectorCall, VectorCase, load_all


def _predict_runner(case: VectorCase) -> Callable[[VectorCall], Observed]:
    from diag.predict.sidecar import predict

    snapshot = adapters.snapshot_for(case)
    if case.proxy.is_gateway:
        return lambda call: gateway_adapters.predict(snapshot, case, call)
    source = adapters.predict_source(case)
    return lambda call: adapters.observed_from_prediction(
        predict(snapshot, source, adapters.predict_call(call))
    )


def _generated_runner(case: VectorCase) -> Callable[[VectorCall], Observed]:
    from diag.live.path import match
    from lab.istiod import generate

    if case.proxy.is_gateway:
        generated = gateway_adapters.generate(case)
    else:
        generated = generate([dict(o) for o in case.config], adapters.pod_view(case))
    return lambda call: adapters.observed_from_livepath(match(generated, adapters.live_call(call)))


RUNNERS: dict[str, Callable[[VectorCase], Callable[[VectorCall], Observed]]] = {
    "predict": _predict_runner,
    "generated": _generated_runner,
}


def _observable(path: str, case: VectorCase) -> frozenset[str]:
    if path == "lab":
        from tests.vectors.lab_runner import OBSERVABLE

        return OBSERVABLE
    return (gateway_adapters if case.proxy.is_gateway else adapters).OBSERVABLE[path]


def _lab_runner(vector_lab: Any) -> Callable[[VectorCase], Callable[[VectorCall], Observed]]:
    def for_case(case: VectorCase) -> Callable[[VectorCall], Observed]:
        calls = [
            c for c in case.calls if not c.simulation_only and restrict(c.expect, _observable("lab", case))
        ]
        observed = vector_lab.run_case(case, calls) if calls else {}
        return lambda call: observed[call.name]

    return for_case


def _lab_wanted(vector_lab: Any) -> Callable[[VectorCase, dict[str, str]], dict[str, str]]:
    from tests.vectors.lab_runner import lab_expectation

    def for_case(case: VectorCase, wanted: dict[str, str]) -> dict[str, str]:
        return lab_expectation(wanted)

    return for_case


def tally(path: str, case: VectorCase, runner: Any = None, adjust: Any = None) -> Counter[str]:
    """Outcome counts of one case's calls on one path."""
    counts: Counter[str] = Counter()
    if unsupported_reason(path, case):
        counts["not run (unsupported)"] += len(case.calls)
        return counts
    try:
        run = (runner or RUNNERS[path])(case)
    except Exception as exc:
        counts[f"error {type(exc).__name__}"] += len(case.calls)
        return counts
    for call in case.calls:
        wanted = restrict(call.expect, _observable(path, case))
        if call.simulation_only:
            counts["not run (simulation only)"] += 1
        elif not wanted:
            counts["not run (unobservable)"] += 1
        else:
            wanted = adjust(case, wanted) if adjust else wanted
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


def _tallies(path: str, runner: Any = None, adjust: Any = None, only: Any = None) -> dict[str, Counter[str]]:
    """Outcome counts per vector file (``only``: the cases to count; None = all)."""
    rows: dict[str, Counter[str]] = {}
    for vectors in load_all():
        total: Counter[str] = Counter()
        for case in vectors.cases:
            if only is None or only(case):
                total += tally(path, case, runner, adjust)
        rows[vectors.path.stem] = total
    return rows


def _print_rows(path: str, rows: dict[str, Counter[str]]) -> None:
    print(f"\n## {path}\n")
    grand: Counter[str] = Counter()
    for stem, total in rows.items():
        grand += total
        summary = ", ".join(f"{k} {v}" for k, v in sorted(total.items()))
        print(f"| {stem} | {sum(total.values())} | {summary} |")
    print(f"| total | {sum(grand.values())} | {', '.join(f'{k} {v}' for k, v in sorted(grand.items()))} |")


def print_table(path: str, runner: Any = None, adjust: Any = None) -> None:
    """One markdown row per vector file."""
    _print_rows(path, _tallies(path, runner, adjust))


def main(argv: list[str]) -> int:
    for path in argv or list(RUNNERS):
        if path != "lab":
            print_table(path)
            continue
        from tests.vectors.lab_runner import VectorLab
        from tests.vectors.vector_format import all_cases

        cases = [c for c in all_cases() if not unsupported_reason("lab", c)]
        rows: dict[str, Counter[str]] = {}
        for gateway in (False, True):  # sidecar cases, then gateway cases in a lab with the gateway
            with VectorLab([c for c in cases if c.proxy.is_gateway == gateway], gateway=gateway) as lab:
                part = _tallies(
                    path, _lab_runner(lab), _lab_wanted(lab), lambda c, g=gateway: c.proxy.is_gateway == g
                )
            rows = {k: rows.get(k, Counter()) + v for k, v in part.items()}
        _print_rows(path, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
