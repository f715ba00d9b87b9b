"""MP0112's bypass fix: the VirtualService patched so that this call takes the mesh route to the
egress gateway its other calls take (one more mesh match item on that rule, or `mesh` added to
`gateways`). Each shape asserts the exact patch and then applies it: the call is re-predicted
through the gateway (``via.kind`` gateway, ``--expect via-gateway`` passes, no MP0112 left), and
the other port of the host keeps its path. Where no mesh route to the gateway can be copied, no
fix is offered and the message says why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from diag.model.loader import load_documents, load_text
from diag.model.snapshot import Snapshot
from diag.predict import sidecar as predict
from diag.predict.sidecar import Call
from diag.report import assess_target
from probes.targets import parse_target
from tests.diag.test_rules import read_case, run_case

GW = "istio-egressgateway.istio-system.svc.cluster.local"
COMMON = f"""apiVersion: v1
kind: Service
metadata: {{name: istio-egressgateway, namespace: istio-system}}
spec:
  clusterIP: 10.96.0.50
  selector: {{app: istio-egressgateway, istio: egressgateway}}
  ports:
  - {{name: http2, port: 80, targetPort: 8080}}
  - {{name: https, port: 443, targetPort: 8443}}
  - {{name: tcp, port: 9000, targetPort: 9000}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: egressgateway-for-api, namespace: apps}}
spec:
  host: {GW}
  subsets: [{{name: api}}]
"""
HTTP_ENTRY = """apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: apps}
spec:
  hosts: [api.example.com]
  ports: [{number: 80, name: http-port, protocol: HTTP}, {number: 443, name: https, protocol: HTTPS}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: egress, namespace: istio-system}
spec:
  selector: {istio: egressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [api.example.com]
  - port: {number: 443, name: tls, protocol: TLS}
    hosts: [api.example.com]
    tls: {mode: PASSTHROUGH}
"""
TO_GW_80 = {"destination": {"host": GW, "subset": "api", "port": {"number": 80}}}
TO_GW_443 = {"destination": {"host": GW, "subset": "api", "port": {"number": 443}}}
TO_GW_9000 = {"destination": {"host": GW, "subset": "api", "port": {"number": 9000}}}
AT_GW_HTTP = {"match": [{"gateways": ["istio-system/egress"], "port": 80}],
              "route": [{"destination": {"host": "api.example.com", "port": {"number": 80}}}]}  # fmt: skip
AT_GW_TLS = {"match": [{"gateways": ["istio-system/egress"], "port": 443, "sniHosts": ["api.example.com"]}],
             "route": [{"destination": {"host": "api.example.com", "port": {"number": 443}}}]}  # fmt: skip
BOTH = ["istio-system/egress", "mesh"]


def _vs(spec: dict[str, Any], hosts: list[str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "api-through-egress", "namespace": "apps"},
        "spec": {"hosts": hosts or ["api.example.com"], **spec},
    }


def _case(tmp_path: Path, name: str, target: str, objects: str, vs: dict[str, Any], **header: str) -> Any:
    head = {"target": target, "namespace": "apps", "labels": "app=sleep", "mode": "REGISTRY_ONLY",
            "expect-target": "via-gateway", **header}  # fmt: skip
    text = "".join(f"# {k}: {v}\n" for k, v in head.items()) + COMMON + "---\n" + objects
    text += "---\n" + yaml.safe_dump(vs, sort_keys=False)
    path = tmp_path / "MP0112" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return read_case(path)


def _fixed(case: Any) -> tuple[Any, dict[str, Any]]:
    """The MP0112 diagnosis (an error) and its one patched object."""
    result, _, _ = run_case(case)
    found = [d for d in result.diagnoses if d.code == "MP0112"]
    assert [d.level for d in found] == ["error"], result.diagnoses
    assert result.via["kind"] == "direct" and result.outcome == "fail"
    assert found[0].fix is not None, found[0].message
    objects = list(yaml.safe_load_all(found[0].fix.yaml))
    assert objects == [dict(o) for o in found[0].fix.objects] and len(objects) == 1
    return found[0], objects[0]


def _after(case: Any, fix_objects: list[dict[str, Any]]) -> tuple[Snapshot, Snapshot, Any]:
    loaded = load_text(case.text, "case")
    fixed = load_documents(fix_objects, "fix")
    assert not fixed.problems, fixed.problems
    new = {o.ref for o in fixed.objects}
    after = Snapshot.build([o for o in loaded.objects if o.ref not in new] + list(fixed.objects), loaded.mesh)
    _, before, source = run_case(case)
    return before, after, source


def _assert_through_gateway(case: Any, patch: dict[str, Any], other_port: int | None = None) -> None:
    before, after, source = _after(case, [patch])
    spec = parse_target(case.header["target"])
    again = assess_target(spec, snapshot=after, source=source, expect="via-gateway",
                          address=case.header.get("address"))  # fmt: skip
    assert again.via["kind"] == "gateway", (again.via, again.predicted)
    assert again.outcome == "pass" and "MP0112" not in [d.code for d in again.diagnoses], again.diagnoses
    assert again.predicted is not None and again.predicted.gateway is not None
    assert again.predicted.gateway.reason == "" and again.predicted.gateway.verdict == "allowed"
    if other_port is not None:
        call = Call(host=spec.host, port=other_port, protocol="http")
        was, now = predict.predict(before, source, call), predict.predict(after, source, call)
        assert (was.verdict, was.envoy) == (now.verdict, now.envoy)


def test_mesh_route_for_another_port_gets_a_match_for_the_calls_port(tmp_path: Path) -> None:
    vs = _vs({"gateways": BOTH, "http": [
        {"match": [{"gateways": ["mesh"], "port": 8080}], "route": [TO_GW_80]}, AT_GW_HTTP]})  # fmt: skip
    case = _case(tmp_path, "port", "http://api.example.com/", HTTP_ENTRY, vs)
    diagnosis, patch = _fixed(case)
    assert patch == _vs({"gateways": BOTH, "http": [
        {"match": [{"gateways": ["mesh"], "port": 8080}, {"gateways": ["mesh"], "port": 80}],
         "route": [TO_GW_80]}, AT_GW_HTTP]})  # fmt: skip
    assert diagnosis.fix is not None and "one more mesh match" in diagnosis.fix.summary
    _assert_through_gateway(case, patch)


def test_vs_without_mesh_is_bound_to_mesh(tmp_path: Path) -> None:
    mesh_rule = {"match": [{"gateways": ["mesh"], "port": 80}], "route": [TO_GW_80]}
    vs = _vs({"gateways": ["istio-system/egress"], "http": [mesh_rule, AT_GW_HTTP]})
    case = _case(tmp_path, "no-mesh", "http://api.example.com/", HTTP_ENTRY, vs)
    diagnosis, patch = _fixed(case)
    assert "bound to the egress gateway only" in diagnosis.message
    assert patch == _vs({"gateways": BOTH, "http": [mesh_rule, AT_GW_HTTP]})
    assert diagnosis.fix is not None and diagnosis.fix.summary.startswith("bind VirtualService apps/")
    _assert_through_gateway(case, patch)


@pytest.mark.parametrize(
    "first",
    [
        {"gateways": ["mesh"], "port": 80, "headers": {"x-egress": {"exact": "yes"}}},
        # sourceMatchHTTP reads sourceLabels only in an item that names no gateways
        {"port": 80, "sourceLabels": {"app": "builder"}},
    ],
    ids=["header", "source-labels"],
)
def test_a_match_the_call_does_not_meet_gets_one_it_does(tmp_path: Path, first: dict[str, Any]) -> None:
    vs = _vs({"gateways": BOTH, "http": [{"match": [first], "route": [TO_GW_80]}, AT_GW_HTTP]})
    case = _case(tmp_path, "condition", "http://api.example.com/", HTTP_ENTRY, vs)
    _, patch = _fixed(case)
    added = {"gateways": ["mesh"], "port": 80}
    assert patch == _vs(
        {"gateways": BOTH, "http": [{"match": [first, added], "route": [TO_GW_80]}, AT_GW_HTTP]}
    )
    _assert_through_gateway(case, patch, other_port=443)


def test_tls_route_gets_a_match_with_the_calls_sni(tmp_path: Path) -> None:
    first = {"gateways": ["mesh"], "port": 8443, "sniHosts": ["api.example.com"]}
    vs = _vs({"gateways": BOTH, "tls": [{"match": [first], "route": [TO_GW_443]}, AT_GW_TLS]})
    case = _case(tmp_path, "tls", "https://api.example.com/", HTTP_ENTRY, vs)
    _, patch = _fixed(case)
    added = {"gateways": ["mesh"], "port": 443, "sniHosts": ["api.example.com"]}
    assert patch == _vs(
        {"gateways": BOTH, "tls": [{"match": [first, added], "route": [TO_GW_443]}, AT_GW_TLS]}
    )
    _assert_through_gateway(case, patch, other_port=80)


TCP_OBJECTS = """apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: apps}
spec:
  hosts: [db.example.com]
  addresses: [203.0.113.9]
  ports: [{number: 5432, name: tcp, protocol: TCP}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: egress, namespace: istio-system}
spec:
  selector: {istio: egressgateway}
  servers:
  - port: {number: 9000, name: tcp, protocol: TCP}
    hosts: [db.example.com]
"""


def test_tcp_route_gets_a_match_for_the_calls_port(tmp_path: Path) -> None:
    first = {"gateways": ["mesh"], "port": 5433}
    at_gw = {"match": [{"gateways": ["istio-system/egress"], "port": 9000}],
             "route": [{"destination": {"host": "db.example.com", "port": {"number": 5432}}}]}  # fmt: skip
    vs = _vs(
        {"gateways": BOTH, "tcp": [{"match": [first], "route": [TO_GW_9000]}, at_gw]}, ["db.example.com"]
    )
    case = _case(tmp_path, "tcp", "tcp://db.example.com:5432", TCP_OBJECTS, vs, address="203.0.113.9")
    _, patch = _fixed(case)
    added = {"gateways": ["mesh"], "port": 5432}
    assert patch == _vs({"gateways": BOTH, "tcp": [{"match": [first, added], "route": [TO_GW_9000]}, at_gw]},
                        ["db.example.com"])  # fmt: skip
    _assert_through_gateway(case, patch)


def _no_fix(case: Any) -> str:
    result, _, _ = run_case(case)
    found = [d for d in result.diagnoses if d.code == "MP0112"]
    assert len(found) == 1 and found[0].fix is None, found
    return found[0].message


def test_no_fix_without_a_mesh_route_to_copy(tmp_path: Path) -> None:
    vs = _vs({"gateways": ["istio-system/egress"], "http": [AT_GW_HTTP]})
    message = _no_fix(_case(tmp_path, "gateway-only", "http://api.example.com/", HTTP_ENTRY, vs))
    assert message.endswith(
        "no fix offered: no mesh route of the VirtualService targets the egress gateway to copy"
    )


def test_no_fix_from_a_route_of_another_protocol_family(tmp_path: Path) -> None:
    """An https call needs a tls route: the http mesh route's gateway port is an HTTP server."""
    vs = _vs({"gateways": BOTH, "http": [{"match": [{"gateways": ["mesh"], "port": 80}], "route": [TO_GW_80]},
                                          AT_GW_HTTP]})  # fmt: skip
    message = _no_fix(_case(tmp_path, "family", "https://api.example.com/", HTTP_ENTRY, vs))
    assert "no fix offered: no tls mesh route of the VirtualService" in message


def test_no_fix_when_an_earlier_mesh_rule_takes_the_call(tmp_path: Path) -> None:
    """A direct mesh rule before the gateway one catches port 80: one more match on the gateway
    rule would never be reached, and the re-prediction says so."""
    direct = {"match": [{"gateways": ["mesh"], "port": 80}],
              "route": [{"destination": {"host": "api.example.com", "port": {"number": 80}}}]}  # fmt: skip
    to_gw = {"match": [{"gateways": ["mesh"], "port": 8080}], "route": [TO_GW_80]}
    vs = _vs({"gateways": BOTH, "http": [direct, to_gw, AT_GW_HTTP]})
    message = _no_fix(_case(tmp_path, "shadowed", "http://api.example.com/", HTTP_ENTRY, vs))
    assert (
        "no fix offered: no patch of the VirtualService re-predicts this call through the gateway" in message
    )


def test_the_warning_of_an_allowed_target_carries_the_same_fix(tmp_path: Path) -> None:
    vs = _vs({"gateways": BOTH, "http": [
        {"match": [{"gateways": ["mesh"], "port": 8080}], "route": [TO_GW_80]}, AT_GW_HTTP]})  # fmt: skip
    strict = _case(tmp_path, "strict", "http://api.example.com/", HTTP_ENTRY, vs)
    allowed = {"expect-target": "allowed"}
    loose = _case(tmp_path, "loose", "http://api.example.com/", HTTP_ENTRY, vs, **allowed)
    _, patch = _fixed(strict)
    result, _, _ = run_case(loose)
    found = [d for d in result.diagnoses if d.code == "MP0112"]
    assert [d.level for d in found] == ["warning"] and result.outcome == "pass"
    assert found[0].fix is not None and list(yaml.safe_load_all(found[0].fix.yaml)) == [patch]


def test_no_fix_when_binding_to_mesh_would_change_another_port(tmp_path: Path) -> None:
    """A tls rule naming no gateway applies to sidecars once the VirtualService is bound to mesh:
    it would send the host's port 443 elsewhere, so neither patch is offered, and the message says
    which port it would change."""
    mesh_rule = {"match": [{"gateways": ["mesh"], "port": 80}], "route": [TO_GW_80]}
    other = {"destination": {"host": "other.example.com", "port": {"number": 443}}}
    elsewhere = {"match": [{"port": 443, "sniHosts": ["api.example.com"]}], "route": [other]}
    vs = _vs({"gateways": ["istio-system/egress"], "http": [mesh_rule, AT_GW_HTTP], "tls": [elsewhere]})
    message = _no_fix(_case(tmp_path, "neighbour", "http://api.example.com/", HTTP_ENTRY, vs))
    why = "no fix offered: the patch that sends this call through the gateway would also change port 443"
    assert f"{why} of api.example.com from outbound|443||api.example.com to " in message, message
