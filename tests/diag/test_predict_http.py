"""VirtualService HTTP routes in predictions (`diag.predict.http`): what the prediction says for a
redirect, a direct response, a weighted route and a request no route matches, and the delegate
conflict rules of `pilot/pkg/model/virtualservice.go` (`stringMatchConflict`, `hasConflict`).
Which route Envoy picks is checked on all three paths by the vectors (`tests/vectors/`)."""

from __future__ import annotations

from typing import Any

import pytest

from diag.model.loader import load_text
from diag.model.resources import HttpMatch, StringMatch
from diag.model.snapshot import Snapshot
from diag.predict.http import _has_conflict, _string_conflict
from diag.predict.sidecar import Call, Source, predict

CONFIG = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: apps}
spec:
  hosts: [api.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: apps}
spec:
  hosts: [api.example.com]
  http:
  - name: moved
    match: [{uri: {exact: /old}}]
    redirect: {uri: /new, redirectCode: 307}
  - name: teapot
    match: [{uri: {exact: /teapot}}]
    directResponse: {status: 418}
  - name: ok
    match: [{uri: {exact: /ok}}]
    directResponse: {status: 200}
  - name: split
    match: [{uri: {prefix: /split}}]
    route:
    - {destination: {host: api.example.com, subset: a}, weight: 30}
    - {destination: {host: api.example.com, subset: b}, weight: 70}
    - {destination: {host: api.example.com, subset: c}, weight: 0}
  - name: beta
    match: [{uri: {prefix: /beta}, headers: {x-beta: {}}}]
    route: [{destination: {host: api.example.com}}]
"""


def _predict(path: str, **call: object) -> Any:
    loaded = load_text(CONFIG, "config.yaml")
    snapshot = Snapshot.build(loaded.objects, loaded.mesh)
    source = Source(namespace="apps", mesh_mode="REGISTRY_ONLY")
    call_ = Call(host="api.example.com", port=80, protocol="http", path=path, **call)  # type: ignore[arg-type]
    return predict(snapshot, source, call_)


def test_redirect_is_reported_as_one() -> None:
    p = _predict("/old")
    assert (p.verdict, p.envoy, p.http_action, p.route_name, p.local_status) == (
        "allowed", "redirect", "redirect", "moved", 307
    )
    assert p.path.cluster is None and any("redirects (307)" in n for n in p.notes)


@pytest.mark.parametrize(
    ("path", "verdict", "status"), [("/teapot", "blocked", 418), ("/ok", "allowed", 200)]
)
def test_direct_response_is_reported_as_one(path: str, verdict: str, status: int) -> None:
    p = _predict(path)
    assert (p.verdict, p.envoy, p.http_action, p.local_status) == (
        verdict, "api.example.com:80", "direct_response", status
    )


def test_weighted_destinations_are_resolved_and_zero_weights_dropped() -> None:
    p = _predict("/split/x")
    assert p.weighted == (("outbound|80|a|api.example.com", 30), ("outbound|80|b|api.example.com", 70))
    assert p.path.cluster == "outbound|80|b|api.example.com"  # the heaviest
    assert p.http_action == "route" and p.route_name == "split"


def test_no_route_lists_the_routes_tried_in_order() -> None:
    p = _predict("/beta")  # the header is missing
    assert (p.verdict, p.envoy, p.http_action, p.local_status) == ("blocked", "no_route", "no_route", 404)
    assert [t.split(":")[0] for t in p.routes_tried] == [
        f"VirtualService apps/api http[{i}] match[0]" for i in range(5)
    ]
    assert "header x-beta present" in p.routes_tried[-1]
    assert _predict("/beta", headers=(("X-Beta", "1"),)).route_name == "beta"


def _m(kind: str, value: str = "") -> StringMatch:
    return StringMatch(kind=kind, value=value)


@pytest.mark.parametrize(
    ("root", "leaf", "conflict"),
    [
        (None, _m("prefix", "/a"), False),
        (_m("prefix", "/a"), None, False),
        (_m("prefix", "/a"), _m("prefix", "/a/b"), False),
        (_m("prefix", "/a/b"), _m("prefix", "/a"), True),
        (_m("prefix", "/a"), _m("exact", "/a/x"), False),
        (_m("exact", "/a"), _m("exact", "/a"), False),
        (_m("exact", "/a"), _m("exact", "/b"), True),
        (_m("exact", "/a"), _m("prefix", "/a"), True),
        (_m("regex", ".*"), _m("prefix", "/a"), True),
        (_m("prefix", "/a"), _m("regex", ".*"), True),
        (_m("present"), _m("exact", "x"), True),  # a root without a value fits nothing
    ],
)
def test_delegate_string_match_conflicts(
    root: StringMatch | None, leaf: StringMatch | None, conflict: bool
) -> None:
    assert _string_conflict(root, leaf) is conflict


def test_delegate_match_conflicts() -> None:
    root = HttpMatch(uri=_m("prefix", "/a"), port=80, source_labels={"app": "web"}, gateways=("mesh", "gw"))
    assert not _has_conflict(root, HttpMatch(uri=_m("prefix", "/a/x")))
    assert _has_conflict(root, HttpMatch(port=8080))
    assert _has_conflict(root, HttpMatch(source_labels={"app": "batch"}))
    assert _has_conflict(root, HttpMatch(ignore_uri_case=True))
    assert not _has_conflict(root, HttpMatch(gateways=("mesh",)))
    assert _has_conflict(root, HttpMatch(gateways=("other",)))
