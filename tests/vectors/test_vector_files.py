"""The vector files themselves: they parse, name their Istio source, and assert something.

Keeps the vectors from going silently empty, and checks the loader rejects malformed vectors
(so a typo in a vector cannot turn into an unchecked expectation).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.vectors.vector_format import (
    CASE_DIR,
    EXPECT_FIELDS,
    VECTOR_DIR,
    VectorFormatError,
    load_all,
    load_file,
)

FILES = sorted(VECTOR_DIR.glob("*.yaml"))
CASE_FILES = sorted(CASE_DIR.glob("*.yaml"))


def test_there_are_vector_files() -> None:
    assert len(FILES) >= 6, [f.name for f in FILES]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_file_parses_and_asserts_something(path: Path) -> None:
    vectors = load_file(path)
    assert re.fullmatch(r"[0-9a-f]{40}", vectors.source["commit"])
    assert vectors.source["repo"] == "istio/istio"
    # pilot's simulation tests, or the integration tests that assert what a client got
    assert vectors.source["file"].startswith(("pilot/pkg/networking/core/", "tests/integration/pilot/"))
    assert vectors.source["test"].startswith("Test")
    assert vectors.cases
    calls = [call for case in vectors.cases for call in case.calls]
    assert calls, f"{path.name} has no calls"
    for case in vectors.cases:
        assert case.calls or case.route_tables or case.listener_shape, f"{case.id} asserts nothing"
        for table in case.route_tables:
            assert table.domains, f"{case.id}: empty route table"


@pytest.mark.parametrize("path", CASE_FILES, ids=lambda p: p.stem)
def test_case_file_names_the_istio_source_it_rests_on(path: Path) -> None:
    vectors = load_file(path)
    assert vectors.source["repo"] == "meshprobe"
    assert re.fullmatch(r"[0-9a-f]{40}", vectors.source["commit"])
    basis = vectors.source["basis"].split()
    assert basis and all(p.startswith("pilot/") and p.endswith(".go") for p in basis), basis
    for case in vectors.cases:
        assert case.calls, f"{case.id} asserts nothing"


def test_there_are_case_files() -> None:
    assert CASE_FILES, "tests/vectors/meshprobe/ is empty"


@pytest.mark.parametrize("path", FILES + CASE_FILES, ids=lambda p: p.stem)
def test_every_call_checks_a_field(path: Path) -> None:
    for case in load_file(path).cases:
        for call in case.calls:
            checked = call.expect.checked()
            assert set(checked) <= set(EXPECT_FIELDS)
            # An error alone is asserted only where there is nothing to name: no listener, no
            # virtual host, two filter chains (the gateway tests assert exactly that).
            alone = ("none", "no_listener", "no_virtual_host", "multiple_filter_chains")
            assert set(checked) - {"error"} or checked["error"] in alone, call.name
            if call.tls:
                assert call.sni, f"{case.id}/{call.name}: TLS calls carry their SNI explicitly"


def test_ids_are_unique() -> None:
    ids = [f"{case.id}/{call.name}" for f in load_all() for case in f.cases for call in case.calls]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 200, len(ids)


MINIMAL_CALL = "{name: c, address: 1.2.3.4, port: 80, protocol: http, tls: false, expect: {cluster: X}}"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (MINIMAL_CALL.replace("cluster: X", "error: bogus"), "unknown error kind"),
        (MINIMAL_CALL.replace("cluster: X", "clustr: X"), "unknown expect fields"),
        (MINIMAL_CALL.replace("protocol: http", "protocol: udp"), "protocol must be"),
        (MINIMAL_CALL.replace("tls: false", "tls: false, alpn: h2"), "alpn needs tls"),
        (MINIMAL_CALL.replace(", expect: {cluster: X}", ""), "missing 'expect'"),
    ],
)
def test_loader_rejects_malformed_calls(tmp_path: Path, call: str, message: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "source: {repo: istio/istio, file: f, test: T, commit: c}\n"
        "cases:\n- name: x\n  mesh: {}\n  proxy: {namespace: default}\n  config: []\n"
        f"  calls:\n  - {call}\n"
    )
    with pytest.raises(VectorFormatError, match=message):
        load_file(bad)


def test_absent_error_means_no_error_expected(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(
        "source: {repo: istio/istio, file: f, test: T, commit: c}\n"
        "cases:\n- name: x\n  mesh: {}\n  proxy: {namespace: default}\n  config: []\n"
        f"  calls:\n  - {MINIMAL_CALL}\n"
    )
    (case,) = load_file(good).cases
    assert case.calls[0].expect.checked() == {"cluster": "X", "error": "none"}
    assert case.mode == "ALLOW_ANY"


def test_scope_tables_name_real_vectors_and_features() -> None:
    from tests.vectors.scope import DISAGREEMENTS, PATHS, UNSUPPORTED
    from tests.vectors.vector_format import FEATURES, all_cases

    assert set(UNSUPPORTED) == set(PATHS) == set(DISAGREEMENTS)
    ids = {c.id for c in all_cases()} | {f"{c.id}/{call.name}" for c in all_cases() for call in c.calls}
    for path in PATHS:
        assert set(UNSUPPORTED[path]) <= set(FEATURES), path
        stale = set(DISAGREEMENTS[path]) - ids
        assert not stale, f"{path}: disagreements name no vector: {sorted(stale)}"


def _one_case(tmp_path: Path, proxy: str, call: str = MINIMAL_CALL, requires: str = "[]") -> Path:
    path = tmp_path / "case.yaml"
    path.write_text(
        "source: {repo: istio/istio, file: f, test: T, commit: c}\n"
        f"cases:\n- name: x\n  requires: {requires}\n  mesh: {{}}\n  proxy: {proxy}\n  config: []\n"
        f"  calls:\n  - {call}\n"
    )
    return path


@pytest.mark.parametrize(
    ("proxy", "call", "requires", "message"),
    [
        ("{type: gateway, namespace: istio-system}", MINIMAL_CALL, "[]", "proxy type must be"),
        ("{type: router, namespace: istio-system, dns_capture: true}", MINIMAL_CALL, "[]", "no DNS capture"),
        ("{type: router, namespace: istio-system}", MINIMAL_CALL, "[gateway_proxy]", "implied by proxy type"),
        ("{namespace: default}", MINIMAL_CALL.replace("false", "false, mtls: true"), "[]", "needs tls"),
    ],
)
def test_loader_rejects_malformed_gateway_cases(
    tmp_path: Path, proxy: str, call: str, requires: str, message: str
) -> None:
    with pytest.raises(VectorFormatError, match=message):
        load_file(_one_case(tmp_path, proxy, call, requires))


def test_a_router_proxy_is_a_gateway_case(tmp_path: Path) -> None:
    (router,) = load_file(_one_case(tmp_path, "{type: router, namespace: istio-system}")).cases
    assert router.proxy.is_gateway and router.requires == {"gateway_proxy"}
    (sidecar,) = load_file(_one_case(tmp_path, "{namespace: default}")).cases
    assert not sidecar.proxy.is_gateway and sidecar.proxy.type == "sidecar" and not sidecar.requires


def test_gateway_vectors_are_for_gateway_proxies_their_gateways_select() -> None:
    gateway_files = [load_file(p) for p in FILES if p.stem.startswith("gateway_")]
    assert len(gateway_files) >= 3, [f.path.name for f in gateway_files]
    routers = [c for f in gateway_files for c in f.cases if c.proxy.is_gateway]
    assert len(routers) >= 15 and len(routers) == sum(len(f.cases) for f in gateway_files)
    for case in routers:
        selectors = [o["spec"].get("selector") for o in case.config if o.get("kind") == "Gateway"]
        assert selectors, case.id
        for selector in selectors:
            assert selector and all(case.proxy.labels.get(k) == v for k, v in selector.items()), case.id
    egress = load_file(CASE_DIR / "gateway_egress.yaml").cases
    assert {c.proxy.type for c in egress} == {"sidecar", "router"}
