"""Istio's API as the API server serves it: the kinds and versions of Istio's API groups, and the
field names each kind's `spec` accepts, so that input files are checked the way `kubectl apply`
would check them.

- `kind_problem(api_version, kind)`: an unknown kind or version in one of Istio's groups is what
  the API server refuses (kubectl: ``no matches for kind "ServiceEntyr" in version
  "networking.istio.io/v1"``); other groups are not Istio's business and pass.
- `unknown_fields(doc)`: the paths of fields the kind's schema does not have, in the API server's
  notation (``spec.ports[0].nmae``); the server prunes them from the stored object and warns
  (``unknown field "spec.prots"``).

`apischema.json` holds, per ``group/Kind``, the served versions and the tree of spec field names
(``null`` for a scalar, a map with free keys, or a field whose content is free-form). It is taken
from the CustomResourceDefinitions Istio installs (istio/api
``kubernetes/customresourcedefinitions.gen.yaml``); fields are only ever added to these schemas,
so the newest tree accepts every field of Istio 1.22–1.30.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ISTIO_GROUPS = frozenset(
    {"networking.istio.io", "security.istio.io", "telemetry.istio.io", "extensions.istio.io"}
    | {"install.istio.io"}
)
# Served by the operator's own CRD where it is installed; its spec is Helm values (free-form).
OPERATOR = {"install.istio.io/IstioOperator": ("v1alpha1",)}
TOP_LEVEL = frozenset({"apiVersion", "kind", "metadata", "spec", "status"})
OBJECT_META = frozenset(
    {
        "name", "namespace", "labels", "annotations", "generateName", "uid", "resourceVersion",
        "generation", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
        "ownerReferences", "finalizers", "managedFields", "selfLink",
    }
)  # fmt: skip
MAX_VISITS = 100_000  # YAML aliases can make a small file a huge tree: stop walking, never hang


@functools.cache
def _schemas() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(__file__).with_name("apischema.json").read_text(encoding="utf-8"))
    return data


def is_istio(api_version: str) -> bool:
    """Does ``api_version`` (``group/version``) name one of Istio's API groups?"""
    return api_version.partition("/")[0] in ISTIO_GROUPS


@functools.lru_cache(maxsize=1024)  # a pure function of two strings, asked once per document
def kind_problem(api_version: str, kind: str) -> str | None:
    """What the API server would say about ``kind`` in ``api_version``, or None when it serves it
    (or when the group is not Istio's)."""
    group, _, version = api_version.partition("/")
    if group not in ISTIO_GROUPS:
        return None
    key = f"{group}/{kind}"
    versions = OPERATOR.get(key) or tuple(_schemas().get(key, {}).get("versions", ()))
    if version in versions:
        return None
    if versions:
        return (
            f'no matches for kind "{kind}" in version "{api_version}" '
            f"(served versions: {', '.join(versions)})"
        )
    kinds = sorted(k.split("/", 1)[1] for k in (*_schemas(), *OPERATOR) if k.startswith(group + "/"))
    import difflib  # only for a kind that is refused

    close = difflib.get_close_matches(kind, kinds, n=1)
    known = f'did you mean "{close[0]}"?' if close else f"kinds in {group}: {', '.join(kinds)}"
    return f'no matches for kind "{kind}" in version "{api_version}" ({known})'


def unknown_fields(doc: Mapping[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    """``(path, "spec.ports[0].nmae")`` for each field of an Istio object that its kind's schema
    does not have; [] for other objects, and for kinds whose spec is free-form."""
    api_version, kind = str(doc.get("apiVersion", "")), str(doc.get("kind", ""))
    node = _fast_node(api_version, kind)
    if node is None:
        return []
    # Fast path: a plain-dict document the compiled tree fully accepts has no unknown field.
    if type(doc) is dict and _all_known(doc, node, MAX_VISITS) >= 0:
        return []
    found: list[tuple[tuple[str | int, ...], str]] = []
    budget = [MAX_VISITS]
    _walk(doc, _tree(f"{api_version.partition('/')[0]}/{kind}"), (), found, budget)
    return found


# A field tree compiled for the fast check: the accepted keys, and (key, its subtree's keys, its
# subtree's node or None when no field under it is walked) for each key whose subtree is walked.
_Node = tuple[frozenset[Any], tuple[tuple[str, frozenset[Any], Any], ...]]


def _compile(tree: Mapping[str, Any]) -> _Node:
    branches = tuple(
        (key, frozenset(sub), _compile(sub) if any(v is not None for v in sub.values()) else None)
        for key, sub in tree.items()
        if sub is not None
    )
    return frozenset(tree), branches


@functools.lru_cache(maxsize=256)
def _fast_node(api_version: str, kind: str) -> _Node | None:
    """The compiled tree of an Istio object of ``kind`` in ``api_version``; None when the object
    is not Istio's (nothing to check)."""
    if not is_istio(api_version):
        return None
    return _compile(_tree(f"{api_version.partition('/')[0]}/{kind}"))


def _all_known(value: dict[Any, Any], node: _Node, budget: int) -> int:
    """What is left of ``budget`` when `_walk` would find no unknown field under the plain dict
    ``value``, else -1: one C-level key-subset test per level, no paths built. Whatever `_walk`
    handles specially (a mapping that is not a plain dict, a list in a list, a huge alias tree)
    answers -1, and the careful walk runs."""
    keys, branches = node
    if not value.keys() <= keys:
        return -1
    for key, sub_keys, sub in branches:
        item = value.get(key)
        if item is None:
            continue
        kind = type(item)
        if kind is dict:
            if sub is None:
                if not item.keys() <= sub_keys:
                    return -1
            else:
                budget = _all_known(item, sub, budget)
                if budget < 0:
                    return -1
        elif kind is list:
            budget -= len(item)  # dicts reached through no list are bounded by the tree's size
            if budget < 0:
                return -1
            for entry in item:
                if type(entry) is dict:
                    if sub is None:
                        if not entry.keys() <= sub_keys:
                            return -1
                    else:
                        budget = _all_known(entry, sub, budget)
                        if budget < 0:
                            return -1
                elif isinstance(entry, (list, Mapping)):
                    return -1
        elif isinstance(item, (list, Mapping)):
            return -1
    return budget


@functools.cache
def _tree(key: str) -> Mapping[str, Any]:
    """The field tree of an object of ``group/Kind`` (built once per kind; never modified)."""
    schema = _schemas().get(key)
    tree: dict[str, Any] = {name: None for name in TOP_LEVEL} | {"metadata": dict.fromkeys(OBJECT_META)}
    if schema is not None:
        tree["spec"] = schema["spec"]
    return tree


def _walk(
    value: Any, tree: Mapping[str, Any], path: tuple[str | int, ...],
    found: list[tuple[tuple[str | int, ...], str]], budget: list[int],
) -> None:  # fmt: skip
    """Record unknown keys under ``value``; a field whose tree is None (a scalar or free-form
    content) is not entered."""
    if budget[0] <= 0:
        return
    budget[0] -= 1
    if isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, tree, (*path, index), found, budget)
    elif type(value) is dict or isinstance(value, Mapping):  # the exact type first: no ABC check
        for key, item in value.items():
            if key in tree:
                sub = tree[key]
                if sub is not None:
                    _walk(item, sub, (*path, key), found, budget)
            else:
                found.append(((*path, key), field_path((*path, key))))


def field_path(path: tuple[str | int, ...]) -> str:
    """The API server's notation: ``spec.ports[0].name``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
