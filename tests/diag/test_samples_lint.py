"""Lint on configuration shaped like Istio's samples (``testdata/samples``): no false warning on
HTTPS/TLS entries with resolution NONE, and objects that cannot be read become findings while the
rest is still linted."""

from __future__ import annotations

from diag.lint.run import is_object_problem, lint_loaded, static_findings
from diag.model.loader import load_text
from diag.model.snapshot import Snapshot
from tests.diag.test_samples_predictions import SAMPLES


def test_https_and_tls_entries_with_resolution_none_are_not_over_broad() -> None:
    """An HTTPS/TLS port of a NONE entry without addresses gets a chain on 0.0.0.0 matching the
    entry's hosts by SNI (istio/istio pilot/pkg/networking/core/tls.go
    buildSidecarOutboundTLSFilterChainOpts): only those names pass, so MP0408's "any destination on
    the port" does not hold. The samples' entries lint clean."""
    loaded = load_text((SAMPLES / "external-https-none.yaml").read_text(), "external.yaml")
    found = static_findings(Snapshot.build(loaded.objects, loaded.mesh), loaded.objects)
    assert [f for f in found if f.level != "info"] == [], [f.message for f in found]


def test_a_tcp_entry_with_resolution_none_and_no_address_is_still_over_broad() -> None:
    loaded = load_text((SAMPLES / "lint-keeps-going.yaml").read_text(), "mesh.yaml")
    _, found, _ = lint_loaded(loaded)
    assert any(f.code == "MP0408" and f.resources == ("ServiceEntry default/open-tcp",) for f in found)


def test_lint_keeps_going_past_objects_it_cannot_read() -> None:
    """Each unreadable object is an MP0403 finding; a null port carries IST0106 (ValidateServiceEntry
    rejects it), a value of the wrong type does not (the CRD schema rejects it before Istio's
    validation runs); nothing is left for the caller to abort on."""
    loaded = load_text((SAMPLES / "lint-keeps-going.yaml").read_text(), "mesh.yaml")
    assert len([p for p in loaded.problems if is_object_problem(p)]) == 2
    _, found, fatal = lint_loaded(loaded)
    assert fatal == []
    invalid = {f.resources[0]: f for f in found if f.code == "MP0403"}
    assert set(invalid) == {"Gateway default/bad", "ServiceEntry default/nullport"}
    assert invalid["ServiceEntry default/nullport"].istio_code == "IST0106"
    assert invalid["Gateway default/bad"].istio_code is None


def test_a_document_that_is_not_yaml_is_left_to_the_caller() -> None:
    loaded = load_text("kind: [unclosed\n", "broken.yaml")
    _, found, fatal = lint_loaded(loaded)
    assert fatal and not [f for f in found if f.code == "MP0403"]


def test_one_spelling_of_an_upper_case_host_is_not_a_warning() -> None:
    """Envoy lower-cases Host and SNI; the Istio bugs MP0404 guards against need two spellings of a
    host (or a ServiceEntry, whose hosts become cluster and SNI names as written). A Gateway and
    its gateway-only VirtualService spelling one placeholder host alike get an info only."""
    loaded = load_text((SAMPLES / "gateway-placeholder-host.yaml").read_text(), "gw.yaml")
    _, found, _ = lint_loaded(loaded)
    assert [f for f in found if f.level != "info"] == [], [f.message for f in found]
    assert any(f.code == "MP0404" for f in found)
    text = (SAMPLES / "gateway-placeholder-host.yaml").read_text()
    gateway_lower = text.replace('hosts: ["ISTIOD-HOST.DOMAIN"]\n---', 'hosts: ["istiod-host.domain"]\n---')
    assert gateway_lower != text
    other = load_text(gateway_lower, "gw.yaml")
    _, mixed, _ = lint_loaded(other)
    assert any(f.code == "MP0404" and f.level == "warning" for f in mixed), [f.message for f in mixed]


def test_tls_setting_that_is_an_origination_is_an_info() -> None:
    """SIMPLE on 443 wraps a TLS client's TLS (MP0406), but in Istio's
    samples/bookinfo/networking/egress-rule-google-apis.yaml shape it is the origination of the
    VirtualService's 80→443 route (cluster_tls.go: the cluster's port): an info naming the route."""
    loaded = load_text((SAMPLES / "tls-origination.yaml").read_text(), "origination.yaml")
    _, found, _ = lint_loaded(loaded)
    mp0406 = [f for f in found if f.code == "MP0406"]
    assert mp0406 and all(f.level == "info" for f in mp0406)
    assert "VirtualService default/rewrite-port-for-storage" in mp0406[0].message
    assert [f for f in found if f.level != "info"] == [], [f.message for f in found]
