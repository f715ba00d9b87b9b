"""Diagnoses and fixes on configuration shaped like Istio's samples (``testdata/samples``): an
in-mesh name is never "fixed" with a MESH_EXTERNAL entry, a fix never writes an address meshprobe
does not know, and a fix that changes another call's path or breaks a TLS origination is withheld
(`diag.rules.fixcheck`), each with the reason in the diagnosis' evidence."""

from __future__ import annotations

from dataclasses import replace

import pytest

from diag.model.loader import load_text
from diag.model.snapshot import Snapshot
from diag.predict.sidecar import Call, Source, predict
from diag.report import assess_target
from diag.rules import diagnose, fixes
from diag.rules.base import Fix, RuleContext
from diag.rules.fixcheck import check_fix
from probes.targets import parse_target
from tests.diag.test_samples_predictions import snapshot_of

REGISTRY_ONLY = Source(namespace="default", mode_override="REGISTRY_ONLY")


def _assess(sample: str, target: str):  # type: ignore[no-untyped-def]
    return assess_target(parse_target(target), snapshot=snapshot_of(sample), source=REGISTRY_ONLY)


def test_short_in_mesh_name_on_an_undeclared_port_blames_the_service_not_a_missing_entry() -> None:
    """`httpbin` is the Service `httpbin.default.svc.cluster.local`, which declares 8000, not 80
    (istio/istio samples/httpbin/httpbin.yaml shape): a reset by the blackhole, and the Service is
    named — no MP0101, no MESH_EXTERNAL ServiceEntry for `httpbin`."""
    result = _assess("httpbin.yaml", "http://httpbin:80")
    codes = [d.code for d in result.diagnoses]
    assert "MP0101" not in codes and "MP0102" in codes, [d.message for d in result.diagnoses]
    mp0102 = next(d for d in result.diagnoses if d.code == "MP0102")
    assert mp0102.resources == ("Service default/httpbin",) and mp0102.fix is None


def test_tcp_to_an_http_declared_in_mesh_port_is_a_protocol_mismatch_without_a_made_up_address() -> None:
    """The Service declares HTTP on 8000: its chain takes only HTTP (listener.go, ALPN match), raw
    TCP falls to the blackhole. The Service has no clusterIP in the input, so the address the
    prediction uses is a stand-in: it must never appear in a fix."""
    result = _assess("httpbin.yaml", "tcp://httpbin:8000")
    assert [d.code for d in result.diagnoses if d.level == "error"] == ["MP0103"]
    assert all(d.fix is None for d in result.diagnoses)
    stand_in = result.predicted.dialled_address
    assert stand_in is not None and any(stand_in in a for a in result.predicted.assumptions)
    assert all(stand_in not in (d.fix.yaml if d.fix else "") for d in result.diagnoses)


def test_unresolvable_short_name_gets_advice_not_an_entry() -> None:
    """No Service `nosuch` exists in the search domains: the pod fails at DNS. MP0101 stays (nothing
    matches) but writes no MESH_EXTERNAL entry for a short name."""
    result = _assess("httpbin.yaml", "http://nosuch:80")
    mp0101 = next(d for d in result.diagnoses if d.code == "MP0101")
    assert mp0101.fix is None and any("short name" in e for e in mp0101.evidence)


@pytest.mark.parametrize(
    "host", ["httpbin", "httpbin.default.svc.cluster.local", "reviews.default.svc", "cluster.local"]
)
def test_no_external_entry_for_in_mesh_names(host: str) -> None:
    assert fixes.service_entry(host, 80, "http", "default") is None


def test_double_tls_fix_that_would_break_the_samples_origination_is_withheld() -> None:
    """MP0108 is right for `https://storage.example.com` (SIMPLE on 443 wraps the client's TLS), but
    `tls: DISABLE` on 443 would also turn off the origination that `http://…:80` gets through the
    VirtualService's 80→443 route (istio/istio samples/bookinfo/networking/egress-rule-google-apis.yaml
    shape; cluster_tls.go): no fix is offered, and the evidence says why."""
    result = _assess("tls-origination.yaml", "https://storage.example.com/")
    mp0108 = next(d for d in result.diagnoses if d.code == "MP0108")
    assert mp0108.fix is None
    assert any("TLS origination of http://storage.example.com:80" in e for e in mp0108.evidence)


def test_fix_opening_another_host_of_the_entry_is_withheld() -> None:
    """Declaring port 8080 on an entry with two hosts opens it for both (listeners are built per
    service port): the other host's verdict would change, so no fix."""
    text = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: default}
spec:
  hosts: [api.example.com, other.example.com]
  ports: [{number: 443, name: https, protocol: HTTPS}]
  resolution: DNS
"""
    loaded = load_text(text, "case.yaml")
    snap = Snapshot.build(loaded.objects, loaded.mesh)
    result = assess_target(parse_target("http://api.example.com:8080"), snapshot=snap, source=REGISTRY_ONLY)
    mp0102 = next(d for d in result.diagnoses if d.code == "MP0102")
    assert mp0102.fix is None
    assert any("other.example.com:8080" in e and "no fix offered" in e for e in mp0102.evidence)


def test_fix_changing_another_target_of_the_report_is_withheld() -> None:
    """Two targets of one report dial the same address; the TCP entry written for the first (with
    the observed address) would let the second through too."""
    snap = Snapshot.build([], None)
    call = Call(host="db.example.net", port=5432, protocol="tcp", address="203.0.113.9")
    other = Call(host="replica.example.net", port=5432, protocol="tcp", address="203.0.113.9")
    ctx = RuleContext(
        source=REGISTRY_ONLY,
        call=call,
        snapshot=snap,
        prediction=predict(snap, REGISTRY_ONLY, call),
        report_calls=(other,),
    )
    mp0101 = next(d for d in diagnose(ctx) if d.code == "MP0101")
    assert mp0101.fix is None
    assert any("replica.example.net:5432" in e for e in mp0101.evidence)
    alone = next(d for d in diagnose(replace(ctx, report_calls=())) if d.code == "MP0101")
    assert alone.fix is not None and "203.0.113.9/32" in alone.fix.yaml


def test_a_fix_with_an_address_nobody_gave_is_withheld() -> None:
    snap = snapshot_of("httpbin.yaml")
    obj = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": "made-up", "namespace": "default"},
        "spec": {
            "hosts": ["db.example.net"],
            "addresses": ["198.19.7.7/32"],
            "ports": [{"number": 5432, "name": "tcp", "protocol": "TCP"}],
            "resolution": "NONE",
        },
    }
    call = Call(host="db.example.net", port=5432, protocol="tcp")
    verdict = check_fix(fixes.make_fix("x", [obj]), snap, REGISTRY_ONLY, call)
    assert "198.19.7.7" in verdict.reason
    given = check_fix(fixes.make_fix("x", [obj]), snap, REGISTRY_ONLY, call, known_addresses=("198.19.7.7",))
    assert given.reason == ""


def test_check_fix_rejects_what_does_not_load() -> None:
    obj = {"kind": "ServiceEntry", "metadata": {"name": "a"}, "spec": []}
    broken = Fix(summary="x", yaml="", objects=(obj,))
    verdict = check_fix(broken, Snapshot.build([], None), REGISTRY_ONLY, Call(host="a.example.com", port=443))
    assert verdict.reason
