"""Istio's simulation vectors through meshprobe's predictions: ``diag.predict.sidecar.predict`` for a
sidecar, ``diag.predict.gateway.predict_gateway`` for a gateway proxy
(``tests/vectors/gateway_adapters.py``).

Each call's prediction is compared with Istio's asserted outcome on the fields a prediction
carries (``adapters.OBSERVABLE["predict"]``); calls that assert only fields a prediction
cannot carry are not run here (the count is in ``docs/vectors.md``).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest

from tests.vectors import adapters, gateway_adapters
from tests.vectors.outcome import mismatches, restrict
from tests.vectors.scope import Selected, selected_calls
from tests.vectors.vector_format import all_cases

PATH = "predict"


@cache
def _snapshot(case_id: str) -> Any:
    case = next(c for c in all_cases() if c.id == case_id)
    return adapters.snapshot_for(case)


def _observable(item: Selected) -> frozenset[str]:
    if item.case.proxy.is_gateway:
        return gateway_adapters.OBSERVABLE[PATH]
    return adapters.OBSERVABLE[PATH]


def _runs_here(item: Selected) -> bool:
    return bool(restrict(item.call.expect, _observable(item)))


def _param(item: Selected) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=item.xfail)] if item.xfail else []
    return pytest.param(item, id=item.id, marks=marks)


@pytest.mark.parametrize("item", [_param(s) for s in selected_calls(PATH) if _runs_here(s)])
def test_call(item: Selected) -> None:
    from diag.predict.sidecar import predict

    snapshot = _snapshot(item.case.id)
    if item.case.proxy.is_gateway:
        observed = gateway_adapters.predict(snapshot, item.case, item.call)
    else:
        prediction = predict(snapshot, adapters.predict_source(item.case), adapters.predict_call(item.call))
        observed = adapters.observed_from_prediction(prediction)
    wrong = mismatches(restrict(item.call.expect, _observable(item)), observed)
    assert not wrong, f"{wrong}; predicted {observed.describe()}"
