"""The stand-in API server's pure parts: request paths, selectors, the three patch formats, the
protobuf envelope, the Pod Security wording and version ordering — no server needed."""

from __future__ import annotations

import pytest

from lab.apiserver.admission import restricted_violations
from lab.apiserver.errors import ApiError, BadRequest
from lab.apiserver.patch import json_patch, merge_patch, strategic_merge
from lab.apiserver.protobuf import decode_object
from lab.apiserver.requestinfo import parse_request
from lab.apiserver.resources import version_priority
from lab.apiserver.selectors import field_matcher, label_matcher
from lab.apiserver.tables import human_age


@pytest.mark.parametrize(
    ("method", "url", "expected"),
    [
        ("GET", "/api/v1/namespaces/shop/pods", ("list", "", "shop", "pods", "", "")),
        ("GET", "/api/v1/namespaces/shop/pods?watch=true", ("watch", "", "shop", "pods", "", "")),
        ("GET", "/api/v1/watch/namespaces/shop/pods", ("watch", "", "shop", "pods", "", "")),
        ("GET", "/api/v1/namespaces/shop/pods/web/log", ("get", "", "shop", "pods", "web", "log")),
        ("GET", "/api/v1/namespaces/shop", ("get", "", "shop", "namespaces", "shop", "")),
        ("PUT", "/api/v1/namespaces/shop/finalize", ("update", "", "shop", "namespaces", "shop", "finalize")),
        ("DELETE", "/apis/batch/v1/namespaces/x/jobs", ("deletecollection", "batch", "x", "jobs", "", "")),
        (
            "PATCH",
            "/apis/networking.istio.io/v1/namespaces/x/serviceentries/se",
            ("patch", "networking.istio.io", "x", "serviceentries", "se", ""),
        ),
        (
            "POST",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            ("create", "rbac.authorization.k8s.io", "", "clusterroles", "", ""),
        ),
    ],
)
def test_request_info_follows_the_api_servers_path_rules(
    method: str, url: str, expected: tuple[str, ...]
) -> None:
    info = parse_request(method, url)
    assert info.resource_request
    assert (info.verb, info.group, info.namespace, info.resource, info.name, info.subresource) == expected


def test_non_resource_paths_and_the_name_a_field_selector_implies() -> None:
    assert not parse_request("GET", "/apis/batch").resource_request
    assert parse_request("GET", "/healthz").verb == "get"
    listed = parse_request("GET", "/api/v1/namespaces/a/pods?fieldSelector=metadata.name%3Dweb")
    assert (listed.verb, listed.name, listed.authz_name) == ("list", "", "web")


@pytest.mark.parametrize(
    ("selector", "matching"),
    [
        ("app=web", {"a"}),
        ("app==web", {"a"}),
        ("app!=web", {"b", "c"}),
        ("app in (web, db)", {"a", "b"}),
        ("app notin (web)", {"b", "c"}),
        ("tier", {"a"}),
        ("!tier", {"b", "c"}),
        ("app=web,tier=front", {"a"}),
        ("", {"a", "b", "c"}),
    ],
)
def test_label_selectors(selector: str, matching: set[str]) -> None:
    objects = {"a": {"app": "web", "tier": "front"}, "b": {"app": "db"}, "c": {}}
    matches = label_matcher(selector)
    assert {n for n, labels in objects.items() if matches({"metadata": {"labels": labels}})} == matching


def test_bad_selectors_are_400() -> None:
    with pytest.raises(BadRequest):
        label_matcher("app in web")
    with pytest.raises(BadRequest) as caught:
        field_matcher("spec.image=x", "", "configmaps")
    assert caught.value.message == "field label not supported: spec.image"
    pod = {"metadata": {"name": "p"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}}
    assert field_matcher("spec.nodeName=n1,status.phase!=Failed", "", "pods")(pod)
    assert not field_matcher("status.phase=Pending", "", "pods")(pod)


def test_merge_patch_deletes_with_null_and_replaces_lists() -> None:
    doc = {"a": {"b": 1, "c": 2}, "l": [1, 2]}
    assert merge_patch(doc, {"a": {"b": None, "d": 3}, "l": [3]}) == {"a": {"c": 2, "d": 3}, "l": [3]}
    assert doc == {"a": {"b": 1, "c": 2}, "l": [1, 2]}


def test_strategic_merge_patch_directives_kubectl_sends() -> None:
    spec = {
        "containers": [
            {"name": "a", "image": "1", "env": [{"name": "X", "value": "1"}]},
            {"name": "b", "image": "1"},
        ],
        "finalizers": ["f1"],
        "tolerations": [{"key": "t"}],
    }
    patch = {
        "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}, {"name": "c"}],
        "containers": [{"name": "a", "env": [{"name": "Y", "value": "2"}]}, {"name": "c", "image": "3"}],
        "finalizers": ["f2"],
        "tolerations": [{"key": "u"}],
    }
    out = strategic_merge(spec, patch)
    assert [c["name"] for c in out["containers"]] == ["b", "a", "c"]
    assert out["containers"][1]["env"] == [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]
    assert out["finalizers"] == ["f1", "f2"] and out["tolerations"] == [{"key": "u"}]
    removed = strategic_merge(
        spec,
        {"containers": [{"name": "a", "$patch": "delete"}], "$deleteFromPrimitiveList/finalizers": ["f1"]},
    )
    assert [c["name"] for c in removed["containers"]] == ["b"] and removed["finalizers"] == []
    replaced = strategic_merge({"m": {"x": 1, "y": 2}}, {"m": {"$patch": "replace", "z": 3}})
    assert replaced == {"m": {"z": 3}}
    ports = strategic_merge({"ports": [{"port": 80, "name": "a"}]}, {"ports": [{"port": 443, "name": "b"}]})
    assert [p["port"] for p in ports["ports"]] == [80, 443]  # services merge ports by port


def test_json_patch_operations_and_failures() -> None:
    doc = {"a": [1, 2], "b": {"c": "d"}}
    out = json_patch(
        doc,
        [
            {"op": "add", "path": "/a/-", "value": 3},
            {"op": "replace", "path": "/b/c", "value": "e"},
            {"op": "move", "from": "/b/c", "path": "/f"},
            {"op": "copy", "from": "/f", "path": "/g"},
            {"op": "test", "path": "/g", "value": "e"},
            {"op": "remove", "path": "/a/0"},
        ],
    )
    assert out == {"a": [2, 3], "b": {}, "f": "e", "g": "e"}
    for bad in (
        [{"op": "remove", "path": "/nope"}],
        [{"op": "test", "path": "/a", "value": 0}],
        [{"op": "replace", "path": "/x/y", "value": 1}],
    ):
        with pytest.raises(ApiError) as caught:
            json_patch(doc, bad)
        assert caught.value.code == 422


def _varint(value: int) -> bytes:
    out = b""
    while True:
        byte, value = value & 0x7F, value >> 7
        out += bytes([byte | (0x80 if value else 0)])
        if not value:
            return out


def _field(num: int, payload: bytes | int) -> bytes:
    if isinstance(payload, int):
        return _varint(num << 3) + _varint(payload)
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def test_protobuf_bodies_decode_to_the_json_shape() -> None:
    meta = _field(1, b"cfg") + _field(11, _field(1, b"app") + _field(2, b"web")) + _field(8, b"")
    configmap = _field(1, meta) + _field(2, _field(1, b"k") + _field(2, b"v")) + _field(4, 0)
    envelope = _field(1, _field(1, b"v1") + _field(2, b"ConfigMap")) + _field(2, configmap)
    assert decode_object(b"k8s\x00" + envelope) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cfg", "labels": {"app": "web"}},
        "data": {"k": "v"},
        "immutable": False,
    }
    attrs = _field(1, b"shop") + _field(2, b"create") + _field(5, b"pods")
    review = _field(2, _field(1, attrs))
    envelope = _field(1, _field(1, b"authorization.k8s.io/v1") + _field(2, b"SelfSubjectAccessReview"))
    decoded = decode_object(b"k8s\x00" + envelope + _field(2, review))
    assert decoded["spec"] == {
        "resourceAttributes": {"namespace": "shop", "verb": "create", "resource": "pods"}
    }
    with pytest.raises(ApiError) as caught:
        decode_object(
            b"k8s\x00" + _field(1, _field(1, b"networking.istio.io/v1") + _field(2, b"ServiceEntry"))
        )
    assert caught.value.code == 415


def test_restricted_pod_security_wording() -> None:
    compliant = {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {
                "name": "app",
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            }
        ],
    }
    assert restricted_violations(compliant) == []
    root = dict(compliant, hostPID=True, securityContext={"runAsNonRoot": False, "runAsUser": 0})
    assert restricted_violations(root) == [
        "host namespaces (hostPID=true)",
        "runAsNonRoot != true (pod must not set securityContext.runAsNonRoot=false)",
        "runAsUser=0 (pod must not set runAsUser=0)",
        'seccompProfile (pod or container "app" must set securityContext.seccompProfile.type to '
        '"RuntimeDefault" or "Localhost")',
    ]


def test_version_priority_orders_ga_beta_alpha() -> None:
    versions = ["v1alpha3", "v1beta1", "v2", "v1", "v2beta1", "v1alpha1"]
    assert sorted(versions, key=version_priority) == [
        "v2",
        "v1",
        "v2beta1",
        "v1beta1",
        "v1alpha3",
        "v1alpha1",
    ]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (5, "5s"),
        (119, "119s"),
        (125, "2m5s"),
        (600, "10m"),
        (3 * 3600 + 60, "3h1m"),
        (30 * 3600, "30h"),
        (3 * 86400 + 3600, "3d1h"),
        (10 * 86400, "10d"),
        (3 * 365 * 86400 + 86400, "3y1d"),
    ],
)
def test_ages_are_worded_like_kubectl_prints_them(seconds: int, text: str) -> None:
    assert human_age(seconds) == text
