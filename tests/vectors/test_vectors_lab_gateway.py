"""Gateway-proxy vectors (``proxy.type: router``) through the real lab: the lab's egress gateway
Envoy with the config ``lab.istiod.generate_gateway`` makes from each case's objects, calls sent
from the lab's internet netns to the gateway's address, and the gateway's access log (and debug
log, for a route to an undefined cluster) as the oracle (``tests/vectors/gateway_lab.py``).

One lab with the gateway serves the module (``lab.apply`` per case). A call to a port expected to
have no filter chain waits for an access-log line that never comes (``lab_runner.LOG_WAIT_S``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import require_lab
from tests.vectors import lab_runner
from tests.vectors.outcome import mismatches
from tests.vectors.scope import Selected, selected_calls, selected_cases
from tests.vectors.test_vectors_lab import CaseResults, _runs_here

PATH = "lab"
SELECTED = [s for s in selected_calls(PATH) if _runs_here(s) and s.case.proxy.is_gateway]


@pytest.fixture(scope="module")
def gateway_results() -> Iterator[CaseResults]:
    require_lab()
    cases = [c for c in selected_cases(PATH) if c.proxy.is_gateway]
    with lab_runner.VectorLab(cases, gateway=True) as vector_lab:
        yield CaseResults(vector_lab, SELECTED)


def _param(item: Selected) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=item.xfail)] if item.xfail else []
    return pytest.param(item, id=item.id, marks=marks)


@pytest.mark.lab
@pytest.mark.parametrize("item", [_param(s) for s in SELECTED])
def test_call(item: Selected, gateway_results: CaseResults) -> None:
    observed = gateway_results.observed(item)
    wrong = mismatches(gateway_results.wanted(item), observed)
    assert not wrong, f"{wrong}; observed {observed.describe()}"
