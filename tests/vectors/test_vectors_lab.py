"""Istio's simulation vectors through the real lab: ``lab.Lab`` with a real Envoy, config from
``lab.istiod.generate``, calls made from a pod behind the sidecar, and Envoy's access log as the
oracle for the route and cluster Envoy chose (``tests/vectors/lab_runner.py``).

One lab serves the whole module (``lab.apply`` per case, ≈0.2 s); each case's calls run in one
client process the first time one of them is tested. The whole module takes about 20 s.
Gateway-proxy cases run in their own lab with the egress gateway (``test_vectors_lab_gateway.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import require_lab
from tests.vectors import lab_runner
from tests.vectors.outcome import Observed, mismatches, restrict
from tests.vectors.scope import Selected, selected_calls, selected_cases
from tests.vectors.vector_format import VectorCase

PATH = "lab"


def _runs_here(item: Selected) -> bool:
    return bool(restrict(item.call.expect, lab_runner.OBSERVABLE))


SELECTED = [s for s in selected_calls(PATH) if _runs_here(s) and not s.case.proxy.is_gateway]


class CaseResults:
    """Runs each case's calls once (all of them together) and remembers the observations."""

    def __init__(self, vector_lab: lab_runner.VectorLab, selected: list[Selected] | None = None) -> None:
        self.vector_lab = vector_lab
        self.selected = SELECTED if selected is None else selected
        self.done: dict[str, dict[str, Observed]] = {}

    def observed(self, item: Selected) -> Observed:
        if item.case.id not in self.done:
            calls = [s.call for s in self.selected if s.case.id == item.case.id]
            self.done[item.case.id] = self.vector_lab.run_case(item.case, calls)
        return self.done[item.case.id][item.call.name]

    def wanted(self, item: Selected) -> dict[str, str]:
        """The call's expectation, in the access log's vocabulary (``lab_runner.lab_expectation``)."""
        return lab_runner.lab_expectation(restrict(item.call.expect, lab_runner.OBSERVABLE))


@pytest.fixture(scope="module")
def case_results() -> Iterator[CaseResults]:
    require_lab()
    cases: list[VectorCase] = [c for c in selected_cases(PATH) if not c.proxy.is_gateway]
    with lab_runner.VectorLab(cases) as vector_lab:
        yield CaseResults(vector_lab)


def _param(item: Selected) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=item.xfail)] if item.xfail else []
    return pytest.param(item, id=item.id, marks=marks)


@pytest.mark.lab
@pytest.mark.parametrize("item", [_param(s) for s in SELECTED])
def test_call(item: Selected, case_results: CaseResults) -> None:
    observed = case_results.observed(item)
    wrong = mismatches(case_results.wanted(item), observed)
    assert not wrong, f"{wrong}; observed {observed.describe()}"
