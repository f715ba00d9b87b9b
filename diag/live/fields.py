"""Reading one field of an Envoy config the way Envoy's own parser would accept it: an absent field
is empty, a field of the wrong type is :class:`InvalidConfig` naming where it is. Every step of
the live path reads the config through these.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Json = Mapping[str, Any]


class InvalidConfig(Exception):
    """A field Envoy itself would reject (wrong type, a port out of range, a regex RE2 refuses):
    the message names the field. Anything else raised while matching is a bug here, not bad input."""


def as_mapping(value: Any, where: str) -> Json:
    """A message field: absent → empty; anything but a mapping → :class:`InvalidConfig`."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidConfig(f"{where}: expected an object, got {type(value).__name__}")
    return value


def as_list(value: Any, where: str) -> list[Any]:
    """A repeated field: absent → empty; anything but a list → :class:`InvalidConfig`."""
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise InvalidConfig(f"{where}: expected a list, got {type(value).__name__}")
    return list(value)


def as_messages(value: Any, where: str) -> list[Json]:
    """A repeated message field (every item an object)."""
    items = as_list(value, where)
    for item in items:
        if not isinstance(item, Mapping):
            raise InvalidConfig(f"{where}: expected objects, got {type(item).__name__}")
    return items


def as_number(value: Any, where: str, default: int = 0) -> int:
    """A uint32 (JSON number, numeric string, or a wrapper ``{"value": n}``)."""
    if isinstance(value, Mapping):
        value = value.get("value")
    if value is None:
        return default
    if isinstance(value, bool):
        raise InvalidConfig(f"{where}: expected a number, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise InvalidConfig(f"{where}: expected a number, got {value!r}"[:120])


def as_text(value: Any, where: str) -> str:
    """A string field (absent → "")."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidConfig(f"{where}: expected a string, got {type(value).__name__}")
    return value
