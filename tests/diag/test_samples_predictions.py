"""Predictions on configuration shaped like Istio's own samples (``testdata/samples``, example host
names): a short name is resolved as the pod resolves it before any host matching, a route a
VirtualService keeps for a gateway is not a sidecar's, and a verdict that rests on an assumed
address says so — in the prediction, its JSON and the diagnoses' evidence.

Expected outcomes are reasoned from istio/istio's source, cited per test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from diag.model.loader import load_text
from diag.model.snapshot import Snapshot
from diag.predict.sidecar import Call, Source, predict
from diag.report import assess_target
from probes.targets import parse_target
from tests.diag.test_report import SCHEMA, validate

SAMPLES = Path(__file__).parent / "testdata" / "samples"


def snapshot_of(name: str) -> Snapshot:
    loaded = load_text((SAMPLES / name).read_text(), name)
    assert not loaded.problems, loaded.problems
    return Snapshot.build(loaded.objects, loaded.mesh)


# --- short names (kubelet resolv.conf search domains; httproute.go generateVirtualHostDomains) ---


def test_short_name_is_served_by_the_virtual_service_of_the_service_it_resolves_to() -> None:
    """`reviews` from namespace default is `reviews.default.svc.cluster.local`; pilot attaches the
    VirtualService for `reviews` to that service's virtual host (istio/istio
    pilot/pkg/networking/core/httproute.go, pilot/pkg/model/virtualservice.go): a request without
    the `end-user: jason` header takes its second route, subset v3; with it, v2."""
    snap = snapshot_of("bookinfo-reviews.yaml")
    p = predict(snap, Source(namespace="default"), Call(host="reviews", port=9080, protocol="http"))
    assert p.path.vhost == "reviews.default.svc.cluster.local:9080", p
    assert p.path.cluster == "outbound|9080|v3|reviews.default.svc.cluster.local", p
    assert "VirtualService default/reviews" in p.matched
    jason = Call(host="reviews", port=9080, protocol="http", headers=(("end-user", "jason"),))
    assert predict(snap, Source(namespace="default"), jason).path.cluster == (
        "outbound|9080|v2|reviews.default.svc.cluster.local"
    )
    assert any("reviews.default.svc.cluster.local" in n and "search domains" in n for n in p.notes)


def test_name_dot_namespace_resolves_through_the_second_search_domain() -> None:
    """From namespace `other`, `reviews.default` is found as `reviews.default.svc.cluster.local`
    (search `svc.cluster.local`); a bare `reviews` is not (`reviews.other.svc.cluster.local` does not
    exist), so it never reaches the VirtualService."""
    snap = snapshot_of("bookinfo-reviews.yaml")
    source = Source(namespace="other")
    qualified = predict(snap, source, Call(host="reviews.default", port=9080, protocol="http"))
    assert "VirtualService default/reviews" in qualified.matched
    bare = predict(snap, source, Call(host="reviews", port=9080, protocol="http"))
    assert "VirtualService default/reviews" not in bare.matched
    assert bare.verdict in ("blocked", "passthrough")


def test_tcp_to_a_short_name_dials_the_service_cluster_ip() -> None:
    """A TCP Service port binds its ClusterIP (listener.go, GetAddressForProxy); `mysqldb` resolves
    to that address, so the call is routed, not assumed to go to an unbound address."""
    snap = snapshot_of("bookinfo-reviews.yaml")
    p = predict(snap, Source(namespace="default"), Call(host="mysqldb", port=3306, protocol="tcp"))
    assert p.dialled_address == "10.96.0.12" and p.path.listener == "10.96.0.12_3306"
    assert p.verdict == "allowed" and p.path.cluster == "outbound|3306||mysqldb.default.svc.cluster.local"
    assert not p.assumptions


# --- routes kept for a gateway (route.go sourceMatchHTTP, tls.go matchTLS) ---


@pytest.mark.parametrize(
    ("sample", "target", "cluster"),
    [
        (
            "egress-gateway-http.yaml",
            "http://news.example.com/",
            "outbound|80|news|istio-egressgateway.istio-system.svc.cluster.local",
        ),
        (
            "egress-gateway-tls.yaml",
            "news.example.com",
            "outbound|443||istio-egressgateway.istio-system.svc.cluster.local",
        ),
    ],
)
def test_gateway_only_route_listed_first_is_dropped_for_sidecars(
    sample: str, target: str, cluster: str
) -> None:
    """A match whose `gateways` does not name `mesh` builds no route for a sidecar (istio/istio
    pilot/pkg/networking/core/route/route.go sourceMatchHTTP; tls.go matchTLS): the mesh route,
    listed second, sends the call to the egress gateway — via-gateway, not a bypass (MP0112)."""
    snap = snapshot_of(sample)
    spec = parse_target(target)
    result = assess_target(
        spec,
        snapshot=snap,
        source=Source(namespace="default", mode_override="REGISTRY_ONLY"),
        expect="via-gateway",
    )
    assert result.predicted.path.cluster == cluster, result.predicted
    assert result.outcome == "pass", [d.message for d in result.diagnoses]
    assert "MP0112" not in [d.code for d in result.diagnoses]


# --- a verdict resting on an assumed address (samples/external/github.yaml shape) ---


def test_tcp_to_a_host_whose_port_is_opened_by_cidr_says_what_it_assumed() -> None:
    """Port 22 is open only for the ranges of the TCP entry (tls.go/listener.go: CIDR chains on
    0.0.0.0, IP-bound listeners); with no address given the verdict rests on an assumption, which
    the prediction states and its JSON carries. The HTTPS entry for the same host, declaring only
    443, is not the cause (no MP0102): MP0114 says the verdict depends on the address."""
    snap = snapshot_of("git-https-and-ssh.yaml")
    source = Source(namespace="default", mode_override="REGISTRY_ONLY")
    result = assess_target(parse_target("tcp://git.example.com:22"), snapshot=snap, source=source)
    p = result.predicted
    assert p.verdict == "blocked" and p.assumptions
    assert "198.51.100.0/24" in p.assumptions[0] and "ServiceEntry default/git-tcp" in p.assumptions[0]
    as_json = p.to_json()
    assert as_json["assumptions"] == list(p.assumptions) and "notes" in as_json
    codes = {d.code: d for d in result.diagnoses}
    assert "MP0102" not in codes and "MP0101" not in codes, [d.message for d in result.diagnoses]
    mp0114 = codes["MP0114"]
    assert mp0114.level == "warning" and mp0114.resources == ("ServiceEntry default/git-tcp",)
    assert mp0114.fix is None
    assert any(e.startswith("assumption: assumed git.example.com") for e in mp0114.evidence)


@pytest.mark.parametrize(("address", "verdict"), [("198.51.100.7", "allowed"), ("192.0.2.59", "allowed")])
def test_an_address_inside_the_ranges_is_allowed(address: str, verdict: str) -> None:
    """Given the address (a probe result), nothing is assumed: inside a range or on a /32 of the
    TCP entry the call goes to its cluster."""
    snap = snapshot_of("git-https-and-ssh.yaml")
    source = Source(namespace="default", mode_override="REGISTRY_ONLY")
    p = predict(snap, source, Call(host="git.example.com", port=22, protocol="tcp", address=address))
    assert p.verdict == verdict and p.path.cluster == "outbound|22||dummy.git.example.com"
    assert not p.assumptions


def test_report_json_carries_notes_and_assumptions_and_matches_the_schema() -> None:
    from diag.report import Report

    snap = snapshot_of("git-https-and-ssh.yaml")
    source = Source(namespace="default", mode_override="REGISTRY_ONLY")
    result = assess_target(parse_target("tcp://git.example.com:22"), snapshot=snap, source=source)
    doc = Report(targets=(result,)).to_json()
    assert validate(doc, SCHEMA) == []
    predicted = doc["targets"][0]["predicted"]
    assert predicted["assumptions"] and isinstance(predicted["notes"], list)


# --- TLS origination through a port rewrite (cluster_tls.go: the cluster's port decides) ---


def test_http_to_port_80_routed_to_443_gets_the_origination_of_port_443() -> None:
    """The VirtualService sends port 80 to cluster `outbound|443||host`, whose DestinationRule
    port-level setting is SIMPLE (istio/istio pilot/pkg/networking/core/cluster_tls.go: TLS
    settings belong to the cluster's port): the sidecar originates TLS, no MP0116."""
    snap = snapshot_of("tls-origination.yaml")
    source = Source(namespace="default", mode_override="REGISTRY_ONLY")
    result = assess_target(parse_target("http://storage.example.com/"), snapshot=snap, source=source)
    p = result.predicted
    assert p.path.cluster == "outbound|443||storage.example.com"
    assert p.upstream_tls is not None and p.upstream_tls.mode == "SIMPLE"
    assert result.outcome == "pass" and not [d for d in result.diagnoses if d.level != "info"]


def test_the_text_report_shows_what_a_prediction_assumed() -> None:
    """The assumption is part of the verdict: the text report prints it under the target line, for a
    passing target as for a failing one (not only inside a diagnosis panel)."""
    from diag.render.report import report_text
    from diag.report import Report

    snap = snapshot_of("git-https-and-ssh.yaml")
    source = Source(namespace="default", mode_override="REGISTRY_ONLY")
    result = assess_target(
        parse_target("tcp://git.example.com:22"), snapshot=snap, source=source, expect="blocked"
    )
    assert result.outcome == "pass"
    text = report_text(Report(targets=(result,)), plain=True)
    assert f"assumed: {result.predicted.assumptions[0]}" in text
