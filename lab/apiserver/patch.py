"""The three patch formats a PATCH may carry: JSON merge patch (RFC 7386), JSON patch (RFC 6902)
and strategic merge patch.

Strategic merge follows staging/src/k8s.io/apimachinery/pkg/util/strategicpatch/patch.go for the
lists that carry a ``patchMergeKey`` in the built-in types (containers, volumes, env, ports,
ownerReferences, conditions, ...) and its directives (``$patch: replace|delete``, ``$retainKeys``,
``$setElementOrder/<list>``, ``$deleteFromPrimitiveList/<list>``), which ``kubectl apply`` sends.
Other lists are replaced, as when the type carries no merge key.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from lab.apiserver.errors import ApiError, BadRequest

MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "imagePullSecrets": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "ownerReferences": "uid",
    "conditions": "type",
    "hostAliases": "ip",
    "resourceClaims": "name",
    "topologySpreadConstraints": "topologyKey",
    "containerStatuses": "name",
    "initContainerStatuses": "name",
    "ephemeralContainerStatuses": "name",
}
MERGED_PRIMITIVE_LISTS = {"finalizers"}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _merge_key(field: str, items: list[Any]) -> str | None:
    if field == "ports":
        sample = next((i for i in items if isinstance(i, dict) and i.get("$patch") is None), None) or {}
        return "containerPort" if "containerPort" in sample else "port"
    return MERGE_KEYS.get(field)


def _merge_list(field: str, original: list[Any], patch: list[Any]) -> list[Any]:
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
        return [i for i in patch if not (isinstance(i, dict) and i.get("$patch") == "replace")]
    if field in MERGED_PRIMITIVE_LISTS:
        return list(original) + [v for v in patch if v not in original]
    key = _merge_key(field, original + patch)
    if key is None:
        return copy.deepcopy(patch)
    out = copy.deepcopy(original)
    for item in patch:
        if not isinstance(item, dict):
            raise BadRequest(f"unable to find api field in struct for the list {field}")
        index = next(
            (n for n, o in enumerate(out) if isinstance(o, dict) and o.get(key) == item.get(key)), None
        )
        if item.get("$patch") == "delete":
            if index is not None:
                out.pop(index)
        elif index is None:
            out.append(strategic_merge({}, item))
        else:
            out[index] = strategic_merge(out[index], item)
    return out


def _order(items: list[Any], order: list[Any], key: str | None) -> list[Any]:
    def ident(item: Any) -> Any:
        return item.get(key) if key and isinstance(item, dict) else item

    wanted = [ident(o) for o in order]
    ranked = sorted(items, key=lambda i: wanted.index(ident(i)) if ident(i) in wanted else len(wanted))
    return ranked


def strategic_merge(original: Any, patch: Any) -> Any:
    """Apply a strategic merge patch (a dict) to ``original``."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    out: dict[str, Any] = copy.deepcopy(original) if isinstance(original, dict) else {}
    orders: dict[str, list[Any]] = {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$setElementOrder/"):
            orders[key.split("/", 1)[1]] = value
        elif key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            out[field] = [v for v in out.get(field) or [] if v not in value]
        elif value is None:
            out.pop(key, None)
        elif isinstance(value, list):
            existing = out.get(key)
            out[key] = _merge_list(key, existing if isinstance(existing, list) else [], value)
        elif isinstance(value, dict):
            merged = strategic_merge(out.get(key), value)
            if merged is None:
                out.pop(key, None)
            else:
                out[key] = merged
        else:
            out[key] = copy.deepcopy(value)
    for field, order in orders.items():
        if isinstance(out.get(field), list):
            out[field] = _order(out[field], order, _merge_key(field, out[field]))
    if isinstance(retain, list):
        out = {k: v for k, v in out.items() if k in retain}
    return out


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise BadRequest(f'json patch path "{path}" must start with "/"')
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str], op: str) -> tuple[Any, str]:
    node = doc
    for part in parts[:-1]:
        try:
            node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError, TypeError):
            raise ApiError(
                422,
                f"the server rejected our request due to an error in our request: "
                f'jsonpatch {op} operation does not apply: doc is missing path: "/{"/".join(parts)}"',
                "Invalid",
            ) from None
    return node, parts[-1]


def json_patch(doc: Any, operations: Any) -> Any:
    """RFC 6902 over a copy of ``doc``."""
    if not isinstance(operations, list):
        raise BadRequest("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(doc)
    for operation in operations:
        op, path = operation.get("op"), str(operation.get("path", ""))
        parts = _pointer(path)
        if op in ("move", "copy"):
            src_parent, src_key = _walk(doc, _pointer(str(operation.get("from"))), op)
            value = _get(src_parent, src_key)
            if op == "move":
                _remove(src_parent, src_key)
            operation = {"op": "add", "path": path, "value": value}
            op = "add"
        if op == "test":
            parent, key = _walk(doc, parts, op)
            if _get(parent, key) != operation.get("value"):
                raise ApiError(
                    422,
                    "the server rejected our request due to an error in our request: "
                    "testing value " + path + " failed: test failed",
                    "Invalid",
                )
            continue
        if not parts:
            doc = copy.deepcopy(operation.get("value"))
            continue
        parent, key = _walk(doc, parts, str(op))
        if op == "remove":
            _remove(parent, key)
        elif op in ("add", "replace"):
            value = copy.deepcopy(operation.get("value"))
            if isinstance(parent, list):
                index = len(parent) if key == "-" else int(key)
                if op == "add":
                    parent.insert(index, value)
                else:
                    parent[index] = value
            else:
                if op == "replace" and key not in parent:
                    raise ApiError(
                        422,
                        f"the server rejected our request due to an error in our request: "
                        f"jsonpatch replace operation does not apply: doc is missing key: {path}",
                        "Invalid",
                    )
                parent[key] = value
        else:
            raise BadRequest(f"Unexpected kind: {op}")
    return doc


def _get(parent: Any, key: str) -> Any:
    try:
        return parent[int(key)] if isinstance(parent, list) else parent[key]
    except (KeyError, IndexError, ValueError, TypeError):
        return None


def _remove(parent: Any, key: str) -> None:
    try:
        if isinstance(parent, list):
            parent.pop(int(key))
        else:
            del parent[key]
    except (KeyError, IndexError, ValueError, TypeError):
        raise ApiError(
            422,
            "the server rejected our request due to an error in our request: jsonpatch "
            f"remove operation does not apply: doc is missing path: {key}",
            "Invalid",
        ) from None


PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
}


def apply_patch(content_type: str, current: dict[str, Any], body: bytes, builtin: bool) -> dict[str, Any]:
    """The object after applying ``body`` of this patch type (415 for a type this resource refuses)."""
    kind = PATCH_TYPES.get(content_type.split(";")[0].strip())
    accepted = [t for t, k in PATCH_TYPES.items() if builtin or k != "strategic"]
    if kind is None or (kind == "strategic" and not builtin):
        from lab.apiserver.errors import unsupported_media_type

        raise unsupported_media_type(
            [
                "application/json-patch+json",
                "application/merge-patch+json",
                "application/apply-patch+yaml",
                *accepted[2:],
            ]
        )
    try:
        patch = json.loads(body or b"null")
    except ValueError as exc:
        raise BadRequest(f"error decoding patch: {exc}") from None
    if kind == "json":
        result = json_patch(current, patch)
    elif kind == "merge":
        result = merge_patch(current, patch)
    else:
        result = strategic_merge(current, patch)
    if not isinstance(result, dict):
        raise BadRequest("the patch did not produce an object")
    return result
