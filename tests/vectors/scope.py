"""Which vectors each path runs, and the known disagreements (``docs/vectors.md`` lists both).

- ``simulation_only`` calls (marked in the vector file) cannot be made on a real socket; no path
  runs them — they are a finding about Istio's simulator, not about meshprobe.
- ``UNSUPPORTED`` names, per path, the ``requires:`` features that path does not model by design
  (what meshprobe models: docs/model.md), with the reason. A case needing one is not run on that
  path and is counted as "not run" in the coverage table — never reported as passing.
- ``DISAGREEMENTS`` are confirmed implementation bugs outside ``tests/vectors``: the test is
  ``xfail(strict=True)`` with the reason, so it turns red the moment the bug is fixed (and the
  entry must then be removed). Keys are ``path -> "file-stem/case" or "file-stem/case/call"``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from tests.vectors.vector_format import VectorCall, VectorCase, all_cases

PATHS = ("predict", "generated", "lab")

_NO_CREDENTIALS = (
    "Secrets are not read: a gateway server terminating TLS with a credentialName gets no"
    " certificate (lab.istiod builds no such chain; diag does not load Secrets)"
)

UNSUPPORTED: dict[str, dict[str, str]] = {
    "predict": {
        "credential_name": _NO_CREDENTIALS,
    },
    "generated": {
        "credential_name": _NO_CREDENTIALS,
    },
    "lab": {
        "credential_name": _NO_CREDENTIALS,
    },
}

DISAGREEMENTS: dict[str, dict[str, str]] = {
    "predict": {},
    "generated": {},
    "lab": {},
}


@dataclass(frozen=True)
class Selected:
    """One call a path runs, with the xfail reason if it is a known disagreement."""

    case: VectorCase
    call: VectorCall
    xfail: str | None

    @property
    def id(self) -> str:
        return f"{self.case.id}/{self.call.name}"


def unsupported_reason(path: str, case: VectorCase) -> str | None:
    """Why `path` does not run `case` (None: it does)."""
    for feature in sorted(case.requires):
        reason = UNSUPPORTED[path].get(feature)
        if reason is not None:
            return f"{feature}: {reason}"
    return None


def disagreement(path: str, case: VectorCase, call: VectorCall | None = None) -> str | None:
    """The recorded disagreement for this case (or call) on `path`, if any."""
    table = DISAGREEMENTS[path]
    if call is not None and f"{case.id}/{call.name}" in table:
        return table[f"{case.id}/{call.name}"]
    return table.get(case.id)


def selected_calls(path: str) -> Iterator[Selected]:
    """Every call `path` runs."""
    for case in all_cases():
        if unsupported_reason(path, case) is not None:
            continue
        for call in case.calls:
            if call.simulation_only:
                continue
            yield Selected(case, call, disagreement(path, case, call))


def selected_cases(path: str) -> Iterator[VectorCase]:
    """Every case `path` runs (for whole-case assertions such as route tables)."""
    for case in all_cases():
        if unsupported_reason(path, case) is None:
            yield case
