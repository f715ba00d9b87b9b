"""Kubernetes ``metadata`` and string lists as every parser of the generator reads them.

Shared by the parsers of ``resources.py``, ``vsparse.py``, ``endpoints.py`` and
``gateway_servers.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ObjectMeta:
    """The parts of ``metadata`` the generator uses."""

    kind: str
    namespace: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    created: str = ""

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


def parse_meta(obj: Mapping[str, Any], kind: str) -> ObjectMeta:
    md = obj.get("metadata") or {}
    return ObjectMeta(
        kind=kind,
        namespace=str(md.get("namespace") or "default"),
        name=str(md.get("name") or ""),
        labels={str(k): str(v) for k, v in (md.get("labels") or {}).items()},
        annotations={str(k): str(v) for k, v in (md.get("annotations") or {}).items()},
        created=str(md.get("creationTimestamp") or ""),
    )


def strs(value: Any) -> tuple[str, ...]:
    if not value:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)
