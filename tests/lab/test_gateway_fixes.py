"""The fixes ``meshprobe check`` writes for egress-gateway faults, applied through the lab's API
(``lab apply``, as ``kubectl apply`` would) and checked again: the check must then pass with
``--expect via-gateway`` (exit 0, no code, the path through the gateway). The faults are those of
Istio's egress-gateway tasks (``tests/lab/testdata/egress_gateway.py``): a host not on the Gateway,
the gateway subset without its DestinationRule subset, the sidecar↔gateway TLS mismatch both ways,
resolution NONE behind the gateway, and an AuthorizationPolicy at the gateway that allows another
service account only (over TLS origination and over mTLS passthrough). The fix is taken from the
report's JSON (``diagnoses[].fix.yaml``) — the predictor that wrote it does not judge it: the real
sidecar and gateway Envoys, fed from the API, do."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from tests.conftest import require_lab
from tests.lab.checkrun import codes, run_check
from tests.lab.testdata import egress_gateway as eg
from tests.lab.testdata.gateway_calls import replace_and_settle

pytestmark = pytest.mark.lab

NAMESPACE = {"apiVersion": "v1", "kind": "Namespace",
             "metadata": {"name": "shop", "labels": {"istio-injection": "enabled"}}}  # fmt: skip
HTTP = f"http://{eg.HOST}/"
HTTPS = f"https://{eg.HOST}/"
Obj = dict[str, Any]


def _denied(setup: Callable[[], list[Obj]]) -> Callable[[], list[Obj]]:
    """``setup`` with an ALLOW policy at the gateway for ``shop/builder`` (the probe is ``shop/default``)."""
    return lambda: [*setup(), eg.authorization_policy("shop", "builder")]


FAULTS: list[tuple[str, Callable[[], list[Obj]], str, str]] = [
    ("host-not-on-gateway", eg.host_not_on_gateway, HTTP, "MP0112"),
    ("subset-missing", eg.subset_without_rule, HTTP, "MP0112"),
    ("plaintext-to-istio-mutual-server", eg.mtls_server_plain_client, HTTP, "MP0112"),
    ("istio-mutual-to-plaintext-server", eg.plain_server_mtls_client, HTTP, "MP0112"),
    ("resolution-none", eg.resolution_none, HTTP, "MP0112"),
    ("policy-denies-caller-tls-origination", _denied(eg.tls_origination), HTTP, "MP0118"),
    ("policy-denies-caller-mtls-passthrough", _denied(eg.mtls_passthrough), HTTPS, "MP0118"),
]


@pytest.fixture(scope="module")
def lab() -> Iterator[Any]:
    require_lab()
    from lab.runtime import Lab

    objects = [NAMESPACE, *eg.in_namespace(eg.plain_http(), "shop")]
    with Lab(objects, egress_gateway=True, internet=[eg.HOST], api=True, pods=[], drain_seconds=0.1) as lab:
        yield lab


def _ref(obj: Obj) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    return (str(obj.get("kind")), str(meta.get("namespace")), str(meta.get("name")))


def _with_fix(objects: list[Obj], fix_yaml: str) -> list[Obj]:
    """``objects`` with each object of the fix applied over the one of the same kind and name."""
    fixed = {_ref(o): o for o in yaml.safe_load_all(fix_yaml) if isinstance(o, dict)}
    assert fixed, fix_yaml
    return [o for o in objects if _ref(o) not in fixed] + list(fixed.values())


def _check(lab: Any, capsys: pytest.CaptureFixture[str], objects: list[Obj], target: str) -> tuple[int, Any]:
    replace_and_settle(lab, [NAMESPACE, *objects])
    return run_check(lab, capsys, "-n", "shop", "--expect", "via-gateway", target)


@pytest.mark.parametrize(("fault", "target", "code"), [f[1:] for f in FAULTS], ids=[f[0] for f in FAULTS])
def test_the_reported_fix_turns_the_check_green(
    lab: Any, capsys: pytest.CaptureFixture[str], fault: Callable[[], list[Obj]], target: str, code: str
) -> None:
    objects = eg.in_namespace(fault(), "shop")
    exit_code, report = _check(lab, capsys, objects, target)
    before = report["targets"][0]
    assert exit_code == 1 and code in codes(report)[target], json.dumps(before["diagnoses"])[:3000]
    fix = next(d["fix"] for d in before["diagnoses"] if d["code"] == code and d.get("fix"))
    exit_code, report = _check(lab, capsys, _with_fix(objects, fix["yaml"]), target)
    after = report["targets"][0]
    assert (exit_code, codes(report)[target]) == (0, []), (fix["yaml"], json.dumps(after)[:3000])
    assert after["outcome"] == "pass" and after["via"]["kind"] == "gateway", after["via"]
    assert after["observed"]["signature"] == "OK", after["observed"]
