"""Istio's simulation vectors through the lab's generated config read by the live-path matcher:
``diag.live.path.match(lab.istiod.generate(config, pod), call)`` — no Envoy needed; for a gateway
proxy ``lab.istiod.generate_gateway(config, GatewayView)`` (``tests/vectors/gateway_adapters.py``).

Each call is compared with Istio's asserted outcome (``tests/vectors/outcome.py``); route tables
and listener shapes are compared with the generated listeners directly.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest

from tests.vectors import adapters, gateway_adapters
from tests.vectors.outcome import mismatches, restrict, route_table_mismatches
from tests.vectors.scope import Selected, disagreement, selected_calls, selected_cases
from tests.vectors.vector_format import VectorCase, all_cases

PATH = "generated"


@cache
def _generated(case_id: str) -> Any:
    from lab.istiod import generate

    case = next(c for c in all_cases() if c.id == case_id)
    if case.proxy.is_gateway:
        return gateway_adapters.generate(case)
    return generate([dict(o) for o in case.config], adapters.pod_view(case))


def _param(item: Selected) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=item.xfail)] if item.xfail else []
    return pytest.param(item, id=item.id, marks=marks)


def _case_param(case: VectorCase) -> Any:
    reason = disagreement(PATH, case)
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("item", [_param(s) for s in selected_calls(PATH)])
def test_call(item: Selected) -> None:
    from diag.live.path import match

    generated = _generated(item.case.id)
    observed = adapters.observed_from_livepath(match(generated, adapters.live_call(item.call)))
    wrong = mismatches(restrict(item.call.expect, adapters.OBSERVABLE[PATH]), observed)
    assert not wrong, f"{wrong}; observed {observed.describe()}"


ROUTE_TABLE_CASES = [_case_param(c) for c in selected_cases(PATH) if c.route_tables]
SHAPE_CASES = [_case_param(c) for c in selected_cases(PATH) if c.listener_shape]

# Every case with route tables or listener shapes currently needs a feature this path does not
# model (scope.UNSUPPORTED); the tests exist as soon as one such case is in scope, so nothing is
# ever reported as skipped.
if ROUTE_TABLE_CASES:

    @pytest.mark.parametrize("case", ROUTE_TABLE_CASES)
    def test_route_tables(case: VectorCase) -> None:
        tables = adapters.route_tables_of(_generated(case.id))
        wrong = [line for t in case.route_tables for line in route_table_mismatches(t, tables)]
        assert not wrong, wrong


if SHAPE_CASES:

    @pytest.mark.parametrize("case", SHAPE_CASES)
    def test_listener_shape(case: VectorCase) -> None:
        ports = adapters.listener_ports(_generated(case.id))
        for shape in case.listener_shape:
            names = ports.get(shape.port, [])
            if shape.count is not None:
                assert len(names) == shape.count, names
            if shape.min_count is not None:
                assert len(names) >= shape.min_count, names
