"""The REST verbs on stored resources: get, list, create, update, patch, delete, deletecollection
(watch and pods/log stream, see ``lab.apiserver.streams``).

Handler behaviour from staging/src/k8s.io/apiserver/pkg/endpoints/handlers (create.go, update.go,
patch.go, delete.go, get.go): name/namespace checks between URL and body, ``dryRun=All``, a patch
retried on a concurrent write unless it carries its own resourceVersion, DeleteOptions from the
body or the query, the batch/v1 Job default of orphaning its pods (with the real warning).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import yaml

from lab.apiserver import protobuf
from lab.apiserver.errors import ApiError, BadRequest, Conflict, NotFound
from lab.apiserver.patch import apply_patch
from lab.apiserver.rbac import Authorizer, access_review_status
from lab.apiserver.requestinfo import RequestInfo
from lab.apiserver.resources import ResourceType
from lab.apiserver.selectors import field_matcher, label_matcher
from lab.apiserver.store import Store

JOB_ORPHAN_WARNING = (
    '299 - "child pods are preserved by default when jobs are deleted; set propagationPolicy=Background to '
    'remove them or set propagationPolicy=Orphan to suppress this warning"'
)
RETURNS_DELETED = {("", "pods"), ("", "services"), ("", "namespaces")}


@dataclass(frozen=True)
class Caller:
    user: str
    groups: tuple[str, ...]


@dataclass
class Reply:
    code: int
    body: dict[str, Any]
    headers: list[tuple[str, str]] = field(default_factory=list)


def present(obj: dict[str, Any], rtype: ResourceType, version: str) -> dict[str, Any]:
    """The object as the request's version shows it (custom resources are stored once)."""
    obj["apiVersion"] = rtype.api_version(version)
    obj.setdefault("kind", rtype.kind)
    return obj


def decode_body(body: bytes, content_type: str = "application/json") -> dict[str, Any]:
    if "protobuf" in content_type:
        return protobuf.decode_object(body)
    try:
        doc = yaml.safe_load(body.decode()) if "yaml" in content_type else json.loads(body or b"null")
    except (ValueError, yaml.YAMLError) as exc:
        raise BadRequest(f"the object provided is unrecognized: {exc}") from None
    if not isinstance(doc, dict):
        raise BadRequest("the object provided is unrecognized (must be of type object)")
    return doc


def _dry_run(info: RequestInfo, options: dict[str, Any] | None = None) -> bool:
    values = info.query.get("dryRun", "")
    if options and options.get("dryRun"):
        values = ",".join(options["dryRun"])
    if values and values != "All":
        raise BadRequest(f'dryRun: Unsupported value: "{values}": supported values: "All"')
    return values == "All"


def _fit_body(obj: dict[str, Any], info: RequestInfo, rtype: ResourceType) -> dict[str, Any]:
    """Check the body against the URL and bring it to the stored apiVersion."""
    api_version = obj.get("apiVersion") or rtype.api_version(info.version)
    kind = obj.get("kind") or rtype.kind
    if kind != rtype.kind or api_version.rpartition("/")[0] != rtype.group:
        raise BadRequest(
            f"the API version in the data ({api_version}) does not match the expected API "
            f"version ({rtype.api_version(info.version)})"
            if kind == rtype.kind
            else f'no kind "{kind}" is registered for version "{api_version}"'
        )
    obj["apiVersion"], obj["kind"] = rtype.api_version(), rtype.kind
    meta = obj.setdefault("metadata", {})
    if rtype.namespaced:
        if meta.get("namespace") and meta["namespace"] != info.namespace:
            raise BadRequest(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        meta["namespace"] = info.namespace
    if info.name and meta.get("name") and meta["name"] != info.name:
        raise BadRequest(
            f"the name of the object ({meta['name']}) does not match the name on the URL ({info.name})"
        )
    if info.name:
        meta["name"] = info.name
    return obj


def get(store: Store, info: RequestInfo, rtype: ResourceType) -> Reply:
    obj = store.get(rtype.plural, info.namespace or None, info.name, rtype.group)
    if obj is None:
        raise NotFound(rtype.plural, info.name, rtype.group)
    return Reply(200, present(obj, rtype, info.version))


def list_(store: Store, info: RequestInfo, rtype: ResourceType) -> Reply:
    labels = label_matcher(info.query.get("labelSelector"))
    fields = field_matcher(info.query.get("fieldSelector"), rtype.group, rtype.plural)
    items, rv = store.list_with_rv(
        rtype.plural, info.namespace or None, rtype.group, lambda o: labels(o) and fields(o)
    )
    body = {
        "kind": rtype.list_kind,
        "apiVersion": rtype.api_version(info.version),
        "metadata": {"resourceVersion": rv},
        "items": [present(i, rtype, info.version) for i in items],
    }
    return Reply(200, body)


def create(
    store: Store,
    authorizer: Authorizer,
    info: RequestInfo,
    rtype: ResourceType,
    caller: Caller,
    body: bytes,
    content_type: str,
) -> Reply:
    obj = decode_body(body, content_type)
    if not rtype.stored:  # SelfSubjectAccessReview, SelfSubjectReview
        obj.setdefault("apiVersion", rtype.api_version(info.version))
        obj.setdefault("kind", rtype.kind)
        obj.setdefault("metadata", {})["creationTimestamp"] = None
        if rtype.kind == "SelfSubjectReview":
            obj["status"] = {"userInfo": {"username": caller.user, "groups": list(caller.groups)}}
        else:
            obj["status"] = access_review_status(
                authorizer, obj.get("spec") or {}, caller.user, caller.groups
            )
        return Reply(201, obj)
    obj = _fit_body(obj, info, rtype)
    created = store.create(obj, admission=True, dry_run=_dry_run(info), user=(caller.user, caller.groups))
    return Reply(201, present(created, rtype, info.version))


def update(
    store: Store, info: RequestInfo, rtype: ResourceType, caller: Caller, body: bytes, content_type: str
) -> Reply:
    obj = _fit_body(decode_body(body, content_type), info, rtype)
    updated = store.update(
        obj,
        admission=True,
        dry_run=_dry_run(info),
        subresource=info.subresource,
        user=(caller.user, caller.groups),
    )
    return Reply(200, present(updated, rtype, info.version))


def patch(
    store: Store, info: RequestInfo, rtype: ResourceType, caller: Caller, body: bytes, content_type: str
) -> Reply:
    for _ in range(5):
        current = store.get(rtype.plural, info.namespace or None, info.name, rtype.group)
        if current is None:
            raise NotFound(rtype.plural, info.name, rtype.group)
        patched = apply_patch(content_type, current, body, builtin="." not in rtype.group)
        patched = _fit_body(patched, info, rtype)
        own_rv = patched["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]
        patched["metadata"]["resourceVersion"] = (
            patched["metadata"].get("resourceVersion") or current["metadata"]["resourceVersion"]
        )
        try:
            updated = store.update(
                patched,
                admission=True,
                dry_run=_dry_run(info),
                subresource=info.subresource,
                user=(caller.user, caller.groups),
            )
        except Conflict:
            if own_rv:
                raise
            continue
        return Reply(200, present(updated, rtype, info.version))
    raise Conflict(rtype.plural, info.name, rtype.group)


def delete_options(info: RequestInfo, body: bytes) -> dict[str, Any]:
    options: dict[str, Any] = decode_body(body) if body.strip() else {}
    for key in ("propagationPolicy", "gracePeriodSeconds", "orphanDependents"):
        if key in info.query and key not in options:
            options[key] = info.query[key]
    if options.get("orphanDependents") in (True, "true") and "propagationPolicy" not in options:
        options["propagationPolicy"] = "Orphan"
    return options


def delete(store: Store, info: RequestInfo, rtype: ResourceType, caller: Caller, body: bytes) -> Reply:
    options = delete_options(info, body)
    headers: list[tuple[str, str]] = []
    propagation = options.get("propagationPolicy")
    if propagation is None:
        propagation = "Orphan" if (rtype.group, rtype.plural) == ("batch", "jobs") else "Background"
        if rtype.plural == "jobs":
            headers.append(("Warning", JOB_ORPHAN_WARNING))
    grace = options.get("gracePeriodSeconds")
    try:
        grace = int(grace) if grace is not None else None
    except ValueError:
        raise BadRequest(f'invalid value for gracePeriodSeconds: "{grace}"') from None
    obj, gone = store.delete_object(
        rtype.plural,
        info.namespace or None,
        info.name,
        rtype.group,
        propagation=str(propagation),
        grace_period=grace,
        dry_run=_dry_run(info, options),
        preconditions=options.get("preconditions"),
        admission=True,
        user=(caller.user, caller.groups),
    )
    if (rtype.group, rtype.plural) in RETURNS_DELETED or not gone:
        return Reply(200, present(obj, rtype, info.version), headers)
    details = {"name": info.name, "group": rtype.group, "kind": rtype.plural, "uid": obj["metadata"]["uid"]}
    if not rtype.group:
        del details["group"]
    return Reply(
        200,
        {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details},
        headers,
    )


def delete_collection(
    store: Store, info: RequestInfo, rtype: ResourceType, caller: Caller, body: bytes
) -> Reply:
    listed = list_(store, info, rtype).body
    deleted = []
    for item in listed["items"]:
        one = RequestInfo(
            info.method,
            info.path,
            info.query,
            True,
            "delete",
            info.group,
            info.version,
            item["metadata"].get("namespace", ""),
            info.resource,
            item["metadata"]["name"],
        )
        try:
            deleted.append(delete(store, one, rtype, caller, body).body)
        except ApiError as exc:
            if exc.code != 404:
                raise
    listed["items"] = [d for d in deleted if d.get("kind") != "Status"]
    return Reply(200, listed)
