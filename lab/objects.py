"""Read raw Kubernetes/Istio objects for the lab from YAML/JSON files or directories.

The lab keeps objects as plain dicts (what ``kubectl get -o yaml`` gives); ``kind: List`` is
flattened. Bad input raises ``ObjectsError`` naming the file (the CLI maps it to exit 2).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

SUFFIXES = (".yaml", ".yml", ".json")


class ObjectsError(ValueError):
    """A file that cannot be read as Kubernetes objects."""


def _files(paths: Iterable[str | Path]) -> list[Path]:
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file()))
        elif path.is_file():
            out.append(path)
        else:
            raise ObjectsError(f"{path}: no such file or directory")
    return out


def _flatten(doc: Any, where: str) -> list[dict[str, Any]]:
    if doc is None:
        return []
    if not isinstance(doc, Mapping):
        raise ObjectsError(f"{where}: not a Kubernetes object (a mapping with kind)")
    if str(doc.get("kind", "")).endswith("List") and isinstance(doc.get("items"), list):
        return [obj for item in doc["items"] for obj in _flatten(item, where)]
    if not doc.get("kind"):
        raise ObjectsError(f"{where}: object without kind")
    return [dict(doc)]


def load_objects(paths: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Every object in ``paths`` (files or directories), in file order."""
    objects: list[dict[str, Any]] = []
    for path in _files(paths):
        try:
            docs = list(yaml.safe_load_all(path.read_text()))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ObjectsError(f"{path}: {str(exc).splitlines()[0]}") from exc
        for index, doc in enumerate(docs, 1):
            objects.extend(_flatten(doc, f"{path} (document {index})"))
    return objects


def namespaces_of(objects: Sequence[Mapping[str, Any]]) -> list[str]:
    """Names of ``kind: Namespace`` objects, in order."""
    return [
        str((o.get("metadata") or {}).get("name"))
        for o in objects
        if o.get("kind") == "Namespace" and (o.get("metadata") or {}).get("name")
    ]


def mesh_config_of(objects: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The MeshConfig carried by an ``istio`` (or ``istio-<rev>``) ConfigMap among ``objects``,
    as istiod reads it from its namespace (``data.mesh``, YAML); None when there is none.
    Istio: pilot/pkg/bootstrap/mesh.go (initMeshConfiguration) reads the ``istio`` ConfigMap."""
    for obj in objects:
        name = str((obj.get("metadata") or {}).get("name") or "")
        if obj.get("kind") != "ConfigMap" or not (name == "istio" or name.startswith("istio-")):
            continue
        text = (obj.get("data") or {}).get("mesh")
        if not isinstance(text, str):
            continue
        try:
            mesh = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ObjectsError(f"ConfigMap {name}: data.mesh is not YAML ({exc})") from exc
        if not isinstance(mesh, dict):
            raise ObjectsError(f"ConfigMap {name}: data.mesh is not a mapping")
        return mesh
    return None
