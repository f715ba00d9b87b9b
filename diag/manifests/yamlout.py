"""Manifests as YAML that kubectl reads exactly as written: block style, no folding, strings that
go-yaml (kubectl's YAML reader) would take for something else (``y``, ``on``, ``0x1F``) quoted,
multi-line strings as literal blocks, and a comment above each RBAC rule saying who needs it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml


class _Dumper(yaml.SafeDumper):
    """Block style; a string kubectl's YAML reader (go-yaml) would take for something else
    (``y``, ``on``, ``0x1F``, ``1e3``) is quoted; multi-line strings are literal blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    from diag.model.kubeyaml import STR, resolve_plain

    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    style = "'" if value and resolve_plain(value) != STR else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _dump(data: Any, flow: bool | None = False) -> str:
    # No folding: a long value (a plan, a proxy config) stays on one line, as written.
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=flow, width=1 << 20)


def object_yaml(obj: Mapping[str, Any], why: Sequence[str] = ()) -> str:
    """One object as YAML; ``why[i]`` is printed as a comment above rule ``i``."""
    rules = obj.get("rules")
    if rules is None:
        return _dump(dict(obj))
    head = _dump({k: v for k, v in obj.items() if k != "rules"})
    lines = ["rules:"]
    for i, rule in enumerate(rules):
        if i < len(why):
            lines.append(f"# {why[i]}")
        lines.append(_dump([rule], flow=None).rstrip("\n"))
    return head + "\n".join(lines) + "\n"


def to_yaml(
    objects: Sequence[Mapping[str, Any]], header: str, comments: Mapping[str, Sequence[str]] | None = None
) -> str:
    """A YAML stream: ``header`` as comment lines, then each object (``---`` between them);
    ``comments["Kind/name"]`` are the comments of that role's rules, in order."""
    parts = []
    for obj in objects:
        key = f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"
        parts.append(object_yaml(obj, (comments or {}).get(key, ())))
    top = "".join(f"# {line}".rstrip() + "\n" for line in header.strip("\n").splitlines())
    return top + "---\n".join(parts)
