"""Istio's simulation vectors through meshprobe's predictions: ``diag.predict.predict``.

Each call's prediction is compared with Istio's asserted outcome on the fields a prediction
carries (``adapters.OBSERVABLE["predict"]``); calls that assert only fields a prediction
cannot carry are not run here (the count is in ``docs/vectors.md``).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest

from tests.vectors import adapters
from tests.vectors.outcome import mismatches, restrict
from tests.vectors.scope import Selected, selected_calls
from tests.vectors.vector_format import all_cases

PATH = "predict"


@cache
def _snapshot(case_id: str) -> Any:
    case = next(c for c in all_cases() if c.id == case_id)
    return adapters.snapshot_for(case)


def _runs_here(item: Selected) -> bool:
    return bool(restrict(item.call.expect, adapters.OBSERVABLE[PATH]))


def _param(item: Selected) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=item.xfail)] if item.xfail else []
    return pytest.param(item, id=item.id, marks=marks)


@pytest.mark.parametrize("item", [_param(s) for s in selected_calls(PATH) if _runs_here(s)])
def test_call(item: Selected) -> None:
    from diag.predict import predict

    prediction = predict(
        _snapshot(item.case.id), adapters.predict_source(item.case), adapters.predict_call(item.call)
    )
    observed = adapters.observed_from_prediction(prediction)
    wrong = mismatches(restrict(item.call.expect, adapters.OBSERVABLE[PATH]), observed)
    assert not wrong, f"{wrong}; predicted {observed.describe()}"
