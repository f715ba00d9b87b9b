"""``meshprobe check`` against the lab's API with the egress gateway running (``Lab(api=True,
egress_gateway=True)``): the probe pod in ``shop`` (service account ``default``) calls through the
real gateway, and the report names the gateway fault — MP0112 for a subset without its
DestinationRule (503 NC at the sidecar), MP0118 for an AuthorizationPolicy at the gateway that
allows another service account only (403 relayed)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import require_lab
from tests.lab.checkrun import codes, run_check, wait_clean
from tests.lab.testdata import egress_gateway as eg

pytestmark = pytest.mark.lab

NAMESPACE = {"apiVersion": "v1", "kind": "Namespace",
             "metadata": {"name": "shop", "labels": {"istio-injection": "enabled"}}}  # fmt: skip
TARGET = f"http://{eg.HOST}/"


@pytest.fixture(scope="module")
def lab() -> Iterator[Any]:
    require_lab()
    from lab.runtime import Lab

    objects = [NAMESPACE, *eg.in_namespace(eg.plain_http(), "shop")]
    with Lab(objects, egress_gateway=True, internet=[eg.HOST], api=True, pods=[], drain_seconds=0.1) as lab:
        yield lab


def _check(lab: Any, capsys: pytest.CaptureFixture[str], objects: list[dict[str, Any]]) -> tuple[int, Any]:
    lab.control_plane.replace_objects([NAMESPACE, *eg.in_namespace(objects, "shop")])
    return run_check(lab, capsys, "-n", "shop", TARGET)


def test_working_setup_is_clean(lab: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = _check(lab, capsys, eg.plain_http())
    assert code == 0, json.dumps(report["targets"][0])[:2000]
    assert wait_clean(lab) == []


def test_subset_without_destination_rule_is_mp0112(lab: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = _check(lab, capsys, eg.subset_without_rule())
    target = report["targets"][0]
    assert target["observed"]["signature"] == "ENVOY_503_NO_CLUSTER", target["observed"]
    assert "MP0112" in codes(report)[TARGET], json.dumps(target["diagnoses"])[:2000]
    assert code == 1
    assert wait_clean(lab) == []


def test_policy_allowing_another_account_is_mp0118(lab: Any, capsys: pytest.CaptureFixture[str]) -> None:
    policy = eg.authorization_policy("shop", "builder")
    code, report = _check(lab, capsys, [*eg.tls_origination(), policy])
    target = report["targets"][0]
    assert "MP0118" in codes(report)[TARGET], json.dumps(target)[:3000]
    assert code == 1
    assert wait_clean(lab) == []
