"""Every fix the rules write is applied to its case's snapshot: the target is then allowed, the
diagnosis is gone, and nothing else opens (other hosts on the port, another port of the host, and
the port's capture owner all keep their predicted decision). The predictor that wrote a fix is not
its only judge: ``tests/lab/test_fixes_lab.py`` applies each one to a real sidecar and re-probes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import yaml

from diag.model.loader import load_documents, load_text
from diag.model.snapshot import Snapshot
from diag.predict import sidecar as predict
from diag.predict.sidecar import Call
from diag.report import assess_target
from diag.rules import fixes
from probes.targets import parse_target
from tests.diag.test_rules import CASES, Case, run_case


def _fixed_cases() -> list[tuple[Case, str]]:
    out = []
    for case in CASES:
        result, _, _ = run_case(case)
        for d in result.diagnoses:
            if d.fix is not None and d.level == "error":
                out.append((case, d.code))
    return out


GATEWAY_CODES = frozenset({"MP0112", "MP0118"})  # their fixes change the egress gateway's side
ALL_FIXED = _fixed_cases()
FIXED = [(case, code) for case, code in ALL_FIXED if code not in GATEWAY_CODES]
"""The fixes of the sidecar's own path (re-probed on a real sidecar by ``tests/lab/test_fixes_lab.py``)."""
GATEWAY_FIXED = [(case, code) for case, code in ALL_FIXED if code in GATEWAY_CODES]
"""The fixes of the egress-gateway hop (Gateway hosts, gateway DR subsets/TLS, AuthorizationPolicy)."""


def _apply(snapshot_objects: list[Any], fix_objects: tuple[Any, ...]) -> list[Any]:
    loaded = load_documents(fix_objects, "fix")
    assert not loaded.problems, loaded.problems
    new = {o.ref: o for o in loaded.objects}
    kept = [o for o in snapshot_objects if o.ref not in new]
    return kept + list(loaded.objects)


def _objects(snapshot: Snapshot) -> list[Any]:
    return [
        *snapshot.service_entries,
        *snapshot.services,
        *snapshot.sidecars,
        *snapshot.destination_rules,
        *snapshot.virtual_services,
        *snapshot.gateways,
        *snapshot.authorization_policies,
        *snapshot.pods,
        *snapshot.namespaces.values(),
    ]


EXPECTED_FIXES = {
    ("MP0101/http-observed-502", "MP0101"),
    ("MP0101/https-no-entry", "MP0101"),
    ("MP0101/tcp-with-address", "MP0101"),
    ("MP0102/port-not-declared", "MP0102"),
    ("MP0102/tcp-target-with-observed-address", "MP0102"),
    ("MP0103/tls-on-http-port", "MP0103"),
    ("MP0104/export-to-own-namespace", "MP0104"),
    ("MP0104/mesh-default-export", "MP0104"),
    ("MP0105/not-imported", "MP0105"),
    ("MP0105/root-sidecar-not-imported", "MP0105"),
    ("MP0105/sidecar-sets-registry-only", "MP0101"),
    ("MP0106/redirect-last-hop-is-the-result", "MP0106"),
    ("MP0106/redirect-to-unregistered-cdn", "MP0106"),
    ("MP0108/simple-on-https-port", "MP0108"),
    ("MP0109/istio-mutual-to-external", "MP0109"),
    ("MP0111/wildcard-dns-without-endpoints", "MP0101"),
    ("MP0111/wildcard-dns-without-endpoints", "MP0111"),
    ("MP0113/wildcard-does-not-cover-apex", "MP0101"),
    ("MP0114/stale-address", "MP0114"),
    ("MP0115/outside-discovery-selectors", "MP0115"),
    ("MP0119/no-http-rule-matches", "MP0119"),
    ("MP0119/predicted-from-config", "MP0119"),
    ("MP0120/declared-mode-is-not-live", "MP0101"),
}
"""Every (rule case, code) whose diagnosis carries a fix — exactly these: a rule that stops
writing a fix, or starts writing one, fails here until this table says so. Each is also applied
to a real sidecar and re-probed in ``tests/lab/test_fixes_lab.py``."""


EXPECTED_GATEWAY_FIXES = {
    ("MP0112/host-not-on-gateway", "MP0112"),
    ("MP0112/https-redirect-observed-301", "MP0112"),
    ("MP0112/https-redirect-on-gateway", "MP0112"),
    ("MP0112/mesh-route-for-another-port", "MP0112"),
    ("MP0112/none-behind-gateway", "MP0112"),
    ("MP0112/resolution-none-with-gateway", "MP0112"),
    ("MP0112/subset-missing", "MP0112"),
    ("MP0112/subset-missing-no-destination-rule", "MP0112"),
    ("MP0112/tls-mismatch-istio-mutual-server", "MP0112"),
    ("MP0112/tls-mismatch-istio-mutual-server-observed-uc", "MP0112"),
    ("MP0112/tls-mismatch-plaintext-server", "MP0112"),
    ("MP0112/tls-mismatch-plaintext-server-observed-uf-urx", "MP0112"),
    ("MP0118/allow-policy-no-match-predicted", "MP0118"),
    ("MP0118/rbac-at-egress-gateway", "MP0118"),
}


def test_exactly_these_gateway_cases_have_fixes() -> None:
    got = {(case.name, code) for case, code in GATEWAY_FIXED}
    assert got == EXPECTED_GATEWAY_FIXES, (
        sorted(got - EXPECTED_GATEWAY_FIXES),
        sorted(EXPECTED_GATEWAY_FIXES - got),
    )


def test_exactly_these_cases_have_fixes() -> None:
    got = {(case.name, code) for case, code in FIXED}
    assert got == EXPECTED_FIXES, (sorted(got - EXPECTED_FIXES), sorted(EXPECTED_FIXES - got))
    assert len(FIXED) == len(EXPECTED_FIXES) == 23


@pytest.mark.parametrize(("case", "code"), ALL_FIXED, ids=[f"{c.name}-{code}" for c, code in ALL_FIXED])
def test_fix_allows_the_target_and_opens_nothing_else(case: Case, code: str) -> None:
    result, snapshot, source = run_case(case)
    fix = next(d.fix for d in result.diagnoses if d.code == code and d.fix is not None)
    assert fix.yaml and list(yaml.safe_load_all(fix.yaml)) == [dict(o) for o in fix.objects]
    for obj in fix.objects:
        if obj["kind"] == "ServiceEntry" and _is_new(case, obj):
            spec = obj["spec"]
            assert spec["exportTo"] == ["."] and "*" not in "".join(spec["hosts"])
            if spec["ports"][0]["protocol"] in ("HTTP", "HTTPS", "TLS"):
                assert spec["resolution"] == "DNS"
            else:
                assert spec.get("addresses"), "a TCP entry without addresses captures the port"
    after = Snapshot.build(_apply(_objects(snapshot), fix.objects), snapshot.mesh)
    spec = parse_target(case.header["target"])
    again = assess_target(spec, snapshot=after, source=source, address=case.header.get("address"))
    assert again.predicted is not None and again.predicted.verdict in ("allowed", "passthrough"), (
        again.predicted
    )
    assert code not in [d.code for d in again.diagnoses]
    for other in _neighbours(spec.host, spec.port, spec.protocol.value, case.header.get("address")):
        before_p = predict.predict(snapshot, source, other)
        after_p = predict.predict(after, source, other)
        # the decision may change shape (a reset becomes block_all's 502), never its verdict
        assert before_p.verdict == after_p.verdict, (other, before_p.envoy, after_p.envoy)
    for redirect in case.redirects if code == "MP0106" else []:
        url = redirect.split()[0]
        hop = parse_target(url)
        call = Call(host=hop.host, port=hop.port, protocol=hop.protocol.value)
        assert predict.predict(snapshot, source, call).verdict == "blocked" or hop.host == spec.host
        assert predict.predict(after, source, call).verdict == "allowed"
    owner_before = predict.port_owner(snapshot, source, spec.port)
    owner_after = predict.port_owner(after, source, spec.port)
    assert (owner_before is None) == (owner_after is None)


def _is_new(case: Case, obj: dict[str, Any]) -> bool:
    meta = obj["metadata"]
    refs = {o.ref for o in load_text(case.text).objects}
    return f"{obj['kind']} {meta.get('namespace')}/{meta['name']}" not in refs


def _neighbours(host: str, port: int, protocol: str, address: str | None) -> list[Call]:
    base = Call(host=host, port=port, protocol=protocol, address=address)
    return [
        replace(base, host="unrelated.example.net", address="192.0.2.77"),
        replace(base, host="unrelated.example.net", protocol="tcp", address="192.0.2.77"),
        replace(base, port=9443),
    ]


def test_no_tcp_entry_without_an_address() -> None:
    assert fixes.service_entry("db.example.net", 5432, "tcp", "apps") is None
    tcp = fixes.service_entry("db.example.net", 5432, "tcp", "apps", address="203.0.113.5")
    assert tcp is not None
    spec = tcp.objects[0]["spec"]
    assert spec["addresses"] == ["203.0.113.5/32"] and spec["resolution"] == "NONE"


@pytest.mark.parametrize("host", ["203.0.113.5", "*.example.com", "api.example.com."])
def test_no_entry_for_ip_literals_wildcards_or_trailing_dots(host: str) -> None:
    assert fixes.service_entry(host, 443, "https", "apps") is None


def test_https_entry_is_exact_dns_and_namespace_local() -> None:
    fix = fixes.service_entry("API.example.com", 443, "https", "apps")
    assert fix is not None
    assert fix.objects[0]["spec"] == {
        "hosts": ["api.example.com"],
        "exportTo": ["."],
        "location": "MESH_EXTERNAL",
        "ports": [{"number": 443, "name": "https-443", "protocol": "HTTPS"}],
        "resolution": "DNS",
    }
    assert fix.objects[0]["metadata"] == {"name": "api-example-com-443", "namespace": "apps"}


def test_patches_drop_server_fields_and_keep_the_rest() -> None:
    raw = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {
            "name": "x",
            "namespace": "t",
            "resourceVersion": "9",
            "uid": "u",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
        },
        "spec": {"hosts": ["a.example"], "exportTo": ["~"]},
        "status": {"addresses": []},
    }
    out = fixes.export_to_namespace(raw, "apps")
    assert out == {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": "x", "namespace": "t"},
        "spec": {"hosts": ["a.example"], "exportTo": [".", "apps"]},
    }
    assert raw["spec"]["exportTo"] == ["~"]
    svc = fixes.export_to_namespace(
        {
            "kind": "Service",
            "metadata": {"name": "s", "namespace": "t", "annotations": {"networking.istio.io/exportTo": "."}},
        },
        "apps",
        annotation=True,
    )
    assert svc["metadata"]["annotations"]["networking.istio.io/exportTo"] == ".,apps"
