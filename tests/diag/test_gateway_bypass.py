"""MP0112's bypass sub-reason outside ``--expect via-gateway``: a VirtualService sends the host
through an egress gateway (for another port or match, or binds it to the gateway only), yet this
call goes direct. It is reported as a warning that leaves an ``allowed`` target passing (exit 0);
with ``--expect via-gateway`` the same path is an error-level failure (exit 1, docs/exit-codes.md)."""

from __future__ import annotations

import pytest

from diag.report import Report
from tests.diag.test_rules import CASES, Case, run_case

BY_NAME = {c.name: c for c in CASES}


def _case(name: str) -> Case:
    return BY_NAME[f"MP0112/{name}"]


@pytest.mark.parametrize("name", ["bypass-is-a-warning-when-allowed", "bypass-vs-bound-to-the-gateway-only"])
def test_bypass_is_a_warning_and_the_allowed_target_passes(name: str) -> None:
    result, _, _ = run_case(_case(name))
    found = [d for d in result.diagnoses if d.code == "MP0112"]
    assert [d.level for d in found] == ["warning"], result.diagnoses
    assert "does not go through an egress gateway" in found[0].message
    assert found[0].resources == ("VirtualService apps/api-through-egress",)
    assert result.outcome == "pass"
    assert Report(targets=(result,)).exit_code == 0


def test_the_gateway_only_binding_is_named() -> None:
    result, _, _ = run_case(_case("bypass-vs-bound-to-the-gateway-only"))
    message = next(d.message for d in result.diagnoses if d.code == "MP0112")
    assert "bound to the egress gateway only" in message


def test_with_expect_via_gateway_the_bypass_fails_with_exit_1() -> None:
    result, _, _ = run_case(_case("mesh-route-for-another-port"))
    found = [d for d in result.diagnoses if d.code == "MP0112"]
    assert [d.level for d in found] == ["error"] and "port 80" in found[0].message
    assert result.outcome == "fail"
    assert Report(targets=(result,)).exit_code == 1


def test_a_vs_bound_to_an_ingress_gateway_is_no_bypass() -> None:
    result, _, _ = run_case(_case("ingress-gateway-binding-is-not-a-bypass"))
    assert "MP0112" not in {d.code for d in result.diagnoses}
    assert result.outcome == "pass"
