"""A `kind: List` read from JSON (no YAML nodes: the loader's direct loop over the items) gives the
same objects, documents, skipped kinds and problems as the same List read from YAML (the loop
that follows each item's node), apart from the line and column only YAML has."""

from __future__ import annotations

import json
from typing import Any

import yaml

from diag.model.loader import LoadResult, load_documents, load_text

SE = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "ServiceEntry",
    "metadata": {"name": "a", "namespace": "apps"},
    "spec": {"hosts": ["a.example.com"], "ports": [{"number": 443, "name": "tls", "protocol": "TLS"}]},
}
ITEMS: list[Any] = [
    SE,
    None,
    5,
    "text",
    [SE],
    {"apiVersion": "v1", "kind": "List", "items": [{**SE, "metadata": {"name": "nested"}}, 7]},
    {"kind": "FooList"},
    {"metadata": {"name": "nokind"}, "spec": {}},
    {**SE, "spec": {"hosts": 5}},
    {**SE, "spec": {"hosts": ["b.example.com"], "hostz": []}},
    {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntri", "metadata": {"name": "typo"}},
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "istio", "namespace": "istio-system"},
     "data": {"mesh": "outboundTrafficPolicy: {mode: REGISTRY_ONLY}"}},
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"}, "spec": {"ports": [{"port": 80}]}},
    {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "s"}},
]  # fmt: skip
LISTING = {"apiVersion": "v1", "kind": "List", "items": ITEMS}


def summary(result: LoadResult) -> tuple[Any, ...]:
    problems = [(p.path, p.object, p.message, p.level, p.hint) for p in result.problems]
    return (result.objects, problems, result.documents, result.skipped, result.mesh)


def test_json_list_loads_like_the_yaml_list() -> None:
    from_json = load_text(json.dumps(LISTING), origin="mesh.json")
    from_yaml = load_text(yaml.safe_dump(LISTING), origin="mesh.json")
    assert summary(from_json) == summary(from_yaml)
    # What both give, independently of either loop.
    assert [o.name for o in from_json.objects] == ["a", "nested", "a", "svc"]
    assert from_json.mesh is not None and from_json.mesh.mode == "REGISTRY_ONLY"
    assert from_json.skipped == {"StatefulSet": 1}
    objects = {p.object for p in from_json.problems}
    assert "document 1 item 2" in objects and "document 1 item 5 item 1" in objects
    assert all(p.line is None for p in from_json.problems)
    assert any(p.line is not None for p in from_yaml.problems)


def test_api_list_loads_like_separate_documents() -> None:
    listed = load_documents([LISTING], origin="cluster")
    separate = load_documents(ITEMS, origin="cluster")
    assert [o.ref for o in listed.objects] == [o.ref for o in separate.objects]
    assert listed.documents == separate.documents
    assert [(p.message, p.level) for p in listed.problems] == [
        (p.message, p.level) for p in separate.problems
    ]
    assert next(p.object for p in listed.problems) == "document 1 item 2"
