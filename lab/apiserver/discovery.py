"""Discovery documents (/api, /apis, /apis/{group}[/{version}]), /version, and the OpenAPI v3 index
kubectl reads to learn that the server does field validation.

Legacy (unaggregated) discovery as in staging/src/k8s.io/apiserver/pkg/endpoints/discovery; a client
asking for aggregated discovery (``as=APIGroupDiscoveryList``) gets the legacy form with a plain
``application/json`` content type, which client-go takes as "not supported" and falls back from.
OpenAPI v3: a per-group-version document with one PATCH operation per kind carrying
``x-kubernetes-group-version-kind`` and a ``fieldValidation`` query parameter — what kubectl's
``QueryParamVerifierV3`` (staging/src/k8s.io/cli-runtime/pkg/resource/query_param_verifier_v3.go)
looks for before sending ``fieldValidation=Strict`` instead of validating against a schema itself.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from lab.apiserver.resources import Registry, ResourceType, version_priority

KUBE_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-lab",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2024-12-11T00:00:00Z",
    "goVersion": "go1.23.3",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def api_versions(address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
    }


def _group(name: str, versions: tuple[str, ...]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def api_group_list(registry: Registry) -> dict[str, Any]:
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group(name, versions) for name, versions in registry.groups()],
    }


def api_group(registry: Registry, name: str) -> dict[str, Any] | None:
    for group, versions in registry.groups():
        if group == name:
            return {"kind": "APIGroup", "apiVersion": "v1", **_group(group, versions)}
    return None


def _entries(rtype: ResourceType) -> list[dict[str, Any]]:
    main: dict[str, Any] = {
        "name": rtype.plural,
        "singularName": rtype.singular,
        "namespaced": rtype.namespaced,
        "kind": rtype.kind,
        "verbs": list(rtype.verbs),
    }
    if rtype.short_names:
        main["shortNames"] = list(rtype.short_names)
    if rtype.categories:
        main["categories"] = list(rtype.categories)
    if rtype.stored:
        digest = hashlib.sha256(f"{rtype.group}/{rtype.plural}".encode()).digest()
        main["storageVersionHash"] = base64.b64encode(digest[:8]).decode()
    subs = [
        {
            "name": f"{rtype.plural}/{s.name}",
            "singularName": "",
            "namespaced": rtype.namespaced,
            "kind": s.kind or rtype.kind,
            "verbs": list(s.verbs),
        }
        for s in rtype.subresources
    ]
    return [main, *subs]


def resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    types = registry.in_version(group, version)
    if not types:
        return None
    group_version = f"{group}/{version}" if group else version
    resources = [entry for rtype in types for entry in _entries(rtype)]
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }


def _gv_paths(registry: Registry) -> list[tuple[str, str, str]]:
    out = [("api/v1", "", "v1")]
    for group, versions in registry.groups():
        out.extend((f"apis/{group}/{v}", group, v) for v in sorted(versions, key=version_priority))
    return out


def openapi_v3_root(registry: Registry) -> dict[str, Any]:
    paths = {}
    for path, group, version in _gv_paths(registry):
        digest = hashlib.sha256(json.dumps(openapi_v3_doc(registry, group, version)).encode()).hexdigest()
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest[:32].upper()}"}
    return {"paths": paths}


def openapi_v3_doc(registry: Registry, group: str, version: str) -> dict[str, Any]:
    """Enough of a group-version's OpenAPI v3 document for kubectl's field-validation probe."""
    prefix = f"/apis/{group}/{version}" if group else "/api/v1"
    paths: dict[str, Any] = {}
    for rtype in registry.in_version(group, version):
        if "patch" not in rtype.verbs:
            continue
        scope = "/namespaces/{namespace}" if rtype.namespaced else ""
        gvk = {"group": group, "version": version, "kind": rtype.kind}
        patch_types = [
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/apply-patch+yaml",
        ]
        paths[f"{prefix}{scope}/{rtype.plural}/{{name}}"] = {
            "patch": {
                "operationId": f"patch{rtype.kind}",
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": gvk,
                "parameters": [
                    {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
                    {
                        "name": "fieldManager",
                        "in": "query",
                        "schema": {"type": "string", "uniqueItems": True},
                    },
                    {
                        "name": "fieldValidation",
                        "in": "query",
                        "schema": {"type": "string", "uniqueItems": True},
                    },
                ],
                "requestBody": {"content": {t: {"schema": {"type": "object"}} for t in patch_types}},
                "responses": {"200": {"description": "OK"}},
            }
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0-lab"},
        "paths": paths,
        "components": {"schemas": {}},
    }
