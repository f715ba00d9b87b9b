"""The tokens of one line of YAML for `yamlfast`: plain and quoted scalars, mapping keys and
one-line flow collections, valued exactly as `kubeyaml` values them (go-yaml v2 resolution, JSON
string keys). What is outside the subset raises `Unsupported`.
"""

from __future__ import annotations

import re
from operator import itemgetter
from typing import Any

from yaml.nodes import ScalarNode

from diag.model import kubeyaml


class Unsupported(Exception):
    """The chunk uses YAML outside the subset."""


# How a value stored for a line becomes data: as is (a scalar), dict / list of a flat flow
# collection, or rebuilt from nested tuples.
AS_IS, FLAT_MAP, FLAT_SEQ, NESTED = range(4)

# Characters that may start a plain scalar here (YAML indicators, quotes and `<` of `<<` may not).
START = r"(?:[A-Za-z0-9_./~+$(=^]|-(?=[^ ,\[\]{}#:'\"]))"
# A flow plain scalar: no flow indicators, `#` or quotes; single blanks and colons inside.
_FLOW_CH = r"[^ ,\[\]{}#:'\"]"
_FLOW_PLAIN = START + _FLOW_CH + r"*(?:(?: |:+)[A-Za-z0-9_./~$(=^+-]" + _FLOW_CH + r"*)*"
SQ = r"'(?:[^']|'')*'"
DQ = r'"[^"\\]*"'
_FLOW_SCALAR = "(?:" + _FLOW_PLAIN + "|" + SQ + "|" + DQ + ")"
_FLOW_TOKENS = re.compile(r" *(?:([\[\]{},])|(: )|(" + _FLOW_SCALAR + r")|(#.*)|(.))")
# A scalar token in a simple flow collection or a simple key: plain (no blanks, colons, flow
# indicators, `#` or quotes), or quoted without doubled quotes or escapes.
_PLAIN_TOKEN = r"(?:[A-Za-z0-9_./~$(=^+]|-(?=[^ ,\[\]{}#:'\"]))[^ ,\[\]{}#:'\"]*"
_TOKEN = _PLAIN_TOKEN + r"|'[^']*'|\"[^\"\\]*\""
TOKEN = re.compile(_TOKEN)
_PAIR = re.compile(f"({_TOKEN}): ({_TOKEN})")
HINTED = frozenset("+-0123456789yYnNtTfFoO~.")  # as `kubeyaml.resolve_plain` reads them
_CONSTRUCTOR: Any = kubeyaml.KubeConstructor()
_SCALARS_SEEN: dict[str, Any] = {}
_KEYS_SEEN: dict[str, str] = {}
_PAIRS_SEEN: dict[str, tuple[str, Any]] = {}  # `key: value` of a simple flow mapping
_ITEMS_SEEN: dict[str, tuple[str, Any]] = {}  # an item of a simple flow sequence
_SECOND = itemgetter(1)
_CACHE_SIZE = 65536


def plain(text: str) -> Any:
    """A plain scalar's value, as `kubeyaml`'s resolver and constructor make it."""
    tag = kubeyaml.resolve_plain(text)
    if tag == kubeyaml.STR:
        return text
    if tag == kubeyaml.NULL:
        return None
    if tag == kubeyaml.INT:  # what KubeConstructor.construct_yaml_int does, without a node
        return kubeyaml.go_int(text.replace("_", ""))
    if tag in (kubeyaml.FLOAT, kubeyaml.BOOL):
        return _CONSTRUCTOR.yaml_constructors[tag](_CONSTRUCTOR, ScalarNode(tag, text))
    raise Unsupported(text)  # `<<`: a merge key


def scalar(token: str) -> Any:
    """The value of a plain or quoted scalar token (cached: tokens repeat across documents)."""
    value = _SCALARS_SEEN.get(token, _SCALARS_SEEN)
    if value is _SCALARS_SEEN:
        first = token[0]
        if first == "'":
            value = token[1:-1].replace("''", "'")
        elif first == '"':
            value = token[1:-1]
        else:  # go-yaml resolves only plain scalars starting with one of HINTED to non-strings
            value = plain(token) if first in HINTED else token
        if len(_SCALARS_SEEN) >= _CACHE_SIZE:
            _SCALARS_SEEN.clear()
        _SCALARS_SEEN[token] = value
    return value


def json_key(token: str) -> str:
    """A mapping key as sigs.k8s.io/yaml makes it: a JSON string (a null key is an error there)."""
    key = _KEYS_SEEN.get(token)
    if key is not None:
        return key
    if len(token) > 1000:  # not a simple key for libyaml
        raise Unsupported(token)
    value = scalar(token)
    if type(value) is str:
        key = value
    elif value is None:
        raise Unsupported(token)
    elif isinstance(value, bool):
        key = "true" if value else "false"
    else:
        key = format(value, "g") if isinstance(value, float) else str(value)
    if len(_KEYS_SEEN) >= _CACHE_SIZE:
        _KEYS_SEEN.clear()
    _KEYS_SEEN[token] = key
    return key


def flat_flow(text: str) -> tuple[Any, int] | None:
    """A one-line flow mapping or sequence of scalars written `{k: v, k: v}` / `[a, b]`; None
    when it is written otherwise (the careful tokenizer reads it then)."""
    is_map = text[0] == "{"
    if text[-1] != ("}" if is_map else "]"):
        return None
    inner = text[1:-1]
    if not inner:
        return (), (FLAT_MAP if is_map else FLAT_SEQ)
    seen = _PAIRS_SEEN if is_map else _ITEMS_SEEN
    if ", " not in inner:  # one entry
        entry = seen.get(inner)
        if entry is None:
            entry = _pair(inner) if is_map else _item(inner)
            if entry is None:
                return None
            if len(seen) >= _CACHE_SIZE:
                seen.clear()
            seen[inner] = entry
        return ((entry,), FLAT_MAP) if is_map else ((entry[1],), FLAT_SEQ)
    parts = inner.split(", ")
    found: list[Any] = list(map(seen.get, parts))
    if None in found:
        if len(seen) + len(parts) > _CACHE_SIZE:
            seen.clear()
        for at, entry in enumerate(found):
            if entry is None:
                entry = _pair(parts[at]) if is_map else _item(parts[at])
                if entry is None:
                    return None
                found[at] = seen[parts[at]] = entry
    if not is_map:
        return tuple(map(_SECOND, found)), FLAT_SEQ
    if len(found) > 1 and len(dict(found)) != len(found):
        raise Unsupported(text)
    return tuple(found), FLAT_MAP


def _pair(part: str) -> tuple[str, Any] | None:
    """(key, value) of ``key: value`` in a simple flow mapping; None when written otherwise."""
    found = _PAIR.fullmatch(part)
    return None if found is None else (json_key(found[1]), scalar(found[2]))


def _item(part: str) -> tuple[str, Any] | None:
    """("", value) of an item of a simple flow sequence; None when written otherwise."""
    return None if TOKEN.fullmatch(part) is None else ("", scalar(part))


class _Map(tuple):  # type: ignore[type-arg]
    """A flow mapping's (key, value) pairs, values possibly nested."""


class _Seq(tuple):  # type: ignore[type-arg]
    """A flow sequence's values, possibly nested."""


def nested(text: str) -> Any:
    """A single-line flow collection with collections inside, as nested `_Map` / `_Seq`."""
    tokens = _FLOW_TOKENS.findall(text)
    value, at = _flow(tokens, 0, 0)
    if at < len(tokens):  # nothing, not even a comment, may follow a nested flow collection here
        raise Unsupported(text)
    return value


def _flow(tokens: list[tuple[str, ...]], at: int, depth: int) -> tuple[Any, int]:
    """The flow node starting at token ``at``, and the index after it."""
    if at >= len(tokens) or depth > 20:
        raise Unsupported("flow")
    indicator, _colon, token, _comment, _other = tokens[at]
    if token:
        return scalar(token), at + 1
    if indicator not in ("[", "{"):
        raise Unsupported(indicator)
    close, items = ("]" if indicator == "[" else "}"), []
    at += 1
    if at < len(tokens) and tokens[at][0] == close:
        return (_Seq() if close == "]" else _Map()), at + 1
    while True:
        if close == "}":
            key = tokens[at][2] if at < len(tokens) else ""
            if not key or at + 1 >= len(tokens) or not tokens[at + 1][1]:
                raise Unsupported("flow key")
            value, at = _flow(tokens, at + 2, depth + 1)
            items.append((json_key(key), value))
        else:
            value, at = _flow(tokens, at, depth + 1)
            items.append(value)
        following = tokens[at][0] if at < len(tokens) else ""
        if following == close:
            break
        if following != ",":
            raise Unsupported("flow")
        at += 1
    if close == "}":
        if len({k for k, _ in items}) != len(items):
            raise Unsupported("duplicate key")
        return _Map(items), at + 1
    return _Seq(items), at + 1


def thaw(value: Any) -> Any:
    """Fresh data from a stored nested flow value."""
    kind = type(value)
    if kind is _Map:
        return {k: thaw(v) for k, v in value}
    if kind is _Seq:
        return [thaw(v) for v in value]
    return value
