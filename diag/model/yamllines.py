"""The lines of the plain YAML most Kubernetes manifests are written in, read one by one.

`yamlfast.read` builds documents from what `classify_line` finds on each line: its indentation,
whether it holds a key, a sequence item or a bare value, and the value written on it.

`yamlfast.read(chunk)` gives the documents of one chunk (a document as `kubeyaml.split_documents` cuts it)
as plain data, exactly as `kubeyaml.documents` builds them (go-yaml v2 scalar resolution, JSON
string keys), or None when the chunk uses anything outside a conservative subset; the caller then
reads it with `kubeyaml.documents`, which also gives the YAML nodes for line and column.

The subset, read line by line: block mappings and sequences (``- key: v`` items and the compact
``key:`` then ``- item`` form), single-line plain, single-quoted and escape-free double-quoted
scalars, single-line flow mappings and sequences (``{name: a, port: 80}``, ``[a, b]``, ``{}``),
empty values (null), comments on their own line or after a value. Anything else — anchors,
aliases, tags, block scalars, multi-line scalars, complex or duplicate keys, tabs, directives,
document markers, escapes, unusual characters or indentation — gives None.
"""

from __future__ import annotations

import re
from operator import itemgetter
from typing import Any

from yaml.nodes import ScalarNode

from diag.model import kubeyaml


class Unsupported(Exception):
    """The chunk uses YAML outside the subset."""


# Line kinds: a key with its value on the line, a key whose value follows (or is null), a
# sequence item with its value on the line, a sequence item whose value follows, a bare value.
KEY, KEY_OPEN, ITEM, ITEM_OPEN, VALUE = range(5)
# How a value stored for a line becomes data: as is (a scalar), dict / list of a flat flow
# collection, or rebuilt from nested tuples.
_AS_IS, _FLAT_MAP, _FLAT_SEQ, _NESTED = range(4)

# Characters that may start a plain scalar here (YAML indicators, quotes and `<` of `<<` may not).
_START = r"(?:[A-Za-z0-9_./~+$(=^]|-(?=[^ ,\[\]{}#:'\"]))"
# A flow plain scalar: no flow indicators, `#` or quotes; single blanks and colons inside.
_FLOW_CH = r"[^ ,\[\]{}#:'\"]"
_FLOW_PLAIN = _START + _FLOW_CH + r"*(?:(?: |:+)[A-Za-z0-9_./~$(=^+-]" + _FLOW_CH + r"*)*"
_SQ = r"'(?:[^']|'')*'"
_DQ = r'"[^"\\]*"'
_COMMENT = r"(?: +#.*)?"

_KEY_LINE = re.compile(r"(" + _START + r"[^ :#]*(?:(?: +|:+)[^ :#]+)*|" + _SQ + "|" + _DQ + r"):(?: +(.*))?")
_SQ_VALUE = re.compile("(" + _SQ + ")" + _COMMENT)
_DQ_VALUE = re.compile("(" + _DQ + ")" + _COMMENT)
_FLOW_SCALAR = "(?:" + _FLOW_PLAIN + "|" + _SQ + "|" + _DQ + ")"
_FLOW_TOKENS = re.compile(r" *(?:([\[\]{},])|(: )|(" + _FLOW_SCALAR + r")|(#.*)|(.))")
# Characters YAML does not allow, or that end lines, or that need care (tab, CR, BOM, NEL, LS, PS).
_BAD_CHARS = re.compile(
    "[^\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)

# A scalar token in a simple flow collection or a simple key: plain (no blanks, colons, flow
# indicators, `#` or quotes), or quoted without doubled quotes or escapes.
_PLAIN_TOKEN = r"(?:[A-Za-z0-9_./~$(=^+]|-(?=[^ ,\[\]{}#:'\"]))[^ ,\[\]{}#:'\"]*"
_TOKEN = re.compile(_PLAIN_TOKEN + r"|'[^']*'|\"[^\"\\]*\"")
HINTED = frozenset("+-0123456789yYnNtTfFoO~.")  # as `kubeyaml.resolve_plain` reads them
_PLAIN_FIRST = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./~$(=^+")
_CONSTRUCTOR: Any = kubeyaml.KubeConstructor()
_SCALARS_SEEN: dict[str, Any] = {}
_KEYS_SEEN: dict[str, str] = {}
_PAIRS_SEEN: dict[str, tuple[str, Any]] = {}  # `key: value` of a simple flow mapping
_ITEMS_SEEN: dict[str, tuple[str, Any]] = {}  # an item of a simple flow sequence
_SECOND = itemgetter(1)
# Line shapes seen, by index (documents of one shape share a builder; see `yamlfast`).
Shape = tuple[tuple[int, int, "str | None", int], ...]
SHAPES: list[Shape] = []
SHAPE_IDS: dict[Shape, int] = {}
_CACHE_SIZE = 16384


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


def _scalar(token: str) -> Any:
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


def _key(token: str) -> str:
    """A mapping key as sigs.k8s.io/yaml makes it: a JSON string (a null key is an error there)."""
    key = _KEYS_SEEN.get(token)
    if key is not None:
        return key
    if len(token) > 1000:  # not a simple key for libyaml
        raise Unsupported(token)
    value = _scalar(token)
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


def _value(text: str) -> tuple[Any, int] | None:
    """(stored value, how to build it) of the text after `key: ` or `- `; None when empty."""
    first = text[0]
    if first == "#":
        return None
    if first == "{" or first == "[":
        closer = "}" if first == "{" else "]"
        cut = text.find(" #")
        while text[-1] != closer and cut > 0:  # a comment after it: where what is before ends it
            if text[:cut].rstrip(" ")[-1] == closer:
                text = text[:cut].rstrip(" ")
                break
            cut = text.find(" #", cut + 1)
        flat = _flat_flow(text)
        if flat is not None:
            return flat
        return _nested(text), _NESTED
    if first == "'" or first == '"':
        found = (_SQ_VALUE if first == "'" else _DQ_VALUE).fullmatch(text)
        if found is None:
            raise Unsupported(text)
        return _scalar(found[1]), _AS_IS
    cut = text.find(" #")
    if cut >= 0:
        text = text[:cut].rstrip(" ")
    # A block plain scalar ends at ` #` and at `: ` (or `:` at the end); it may start with `-`
    # only when a non-blank follows.
    if (
        ": " in text
        or text[-1] == ":"
        or not (first in _PLAIN_FIRST or (first == "-" and text[1:2] in _PLAIN_FIRST))
    ):
        raise Unsupported(text)
    return _scalar(text), _AS_IS


def _flat_flow(text: str) -> tuple[Any, int] | None:
    """A one-line flow mapping or sequence of scalars written `{k: v, k: v}` / `[a, b]`; None
    when it is written otherwise (the careful tokenizer reads it then)."""
    if text[-1] != ("}" if text[0] == "{" else "]"):
        return None
    inner = text[1:-1]
    if not inner:
        return (), (_FLAT_MAP if text[0] == "{" else _FLAT_SEQ)
    is_map = text[0] == "{"
    seen = _PAIRS_SEEN if is_map else _ITEMS_SEEN
    found = []
    for part in inner.split(", "):
        entry = seen.get(part)
        if entry is None:
            entry = _pair(part) if is_map else _item(part)
            if entry is None:
                return None
            if len(seen) >= _CACHE_SIZE:
                seen.clear()
            seen[part] = entry
        found.append(entry)
    if not is_map:
        return tuple(map(_SECOND, found)), _FLAT_SEQ
    if len(dict(found)) != len(found):
        raise Unsupported(text)
    return tuple(found), _FLAT_MAP


def _pair(part: str) -> tuple[str, Any] | None:
    """(key, value) of ``key: value`` in a simple flow mapping; None when written otherwise."""
    key, colon, value = part.partition(": ")
    if not colon or _TOKEN.fullmatch(key) is None or _TOKEN.fullmatch(value) is None:
        return None
    return _key(key), _scalar(value)


def _item(part: str) -> tuple[str, Any] | None:
    """("", value) of an item of a simple flow sequence; None when written otherwise."""
    return None if _TOKEN.fullmatch(part) is None else ("", _scalar(part))


class _Map(tuple):  # type: ignore[type-arg]
    """A flow mapping's (key, value) pairs, values possibly nested."""


class _Seq(tuple):  # type: ignore[type-arg]
    """A flow sequence's values, possibly nested."""


def _nested(text: str) -> Any:
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
    indicator, _colon, scalar, _comment, _other = tokens[at]
    if scalar:
        return _scalar(scalar), at + 1
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
            items.append((_key(key), value))
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


def classify_line(line: str) -> tuple[int, Any]:
    """(shape, value) of what ``line`` holds; the shape is the index in `SHAPES` of the nodes the
    line opens, each ``(indent, kind, key, build)``: none for a blank or comment line, two for a
    ``- key: ...`` item (the open item, then its mapping's first key, which the value is for)."""
    content = line.lstrip(" ")
    if not content or content[0] == "#":
        return _shape(()), None
    if (not (line.isascii() and line.isprintable()) and _BAD_CHARS.search(line)) or line.startswith(
        ("---", "...")
    ):
        raise Unsupported(line)
    indent = len(line) - len(content)
    entry = _classify(content.rstrip(" "))
    if len(entry) == 3:
        _, offset, (kind, key, value, build) = entry
        return _shape(((indent, ITEM_OPEN, None, _AS_IS), (indent + offset, kind, key, build))), value
    kind, key, value, build = entry
    return _shape(((indent, kind, key, build),)), value


def _shape(shape: tuple[tuple[int, int, str | None, int], ...]) -> int:
    """The index in `SHAPES` of a line's shape."""
    found = SHAPE_IDS.get(shape)
    if found is None:
        found = SHAPE_IDS[shape] = len(SHAPES)
        SHAPES.append(shape)
    return found


def _classify(content: str) -> tuple[Any, ...]:
    """What one line (without its indentation and trailing blanks) holds: (kind, key, value,
    build) or, for a ``- key: ...`` item, (ITEM_OPEN, offset of the key, the key line's entry)."""
    if content[:2] == "- " or content == "-":
        rest = content[1:].lstrip(" ")
        if not rest or rest[0] == "#":
            return ITEM_OPEN, None, None, _AS_IS
        if rest[:2] == "- " or rest == "-":
            raise Unsupported(content)
        inner = _key_line(rest)
        if inner is not None:
            return ITEM_OPEN, len(content) - len(rest), inner
        value, build = _value(rest) or (None, _AS_IS)
        return ITEM, None, value, build
    entry = _key_line(content)
    if entry is not None:
        return entry
    found = _value(content)
    if found is None:
        raise Unsupported(content)
    return VALUE, None, found[0], found[1]


def _key_line(content: str) -> tuple[Any, ...] | None:
    """(KEY or KEY_OPEN, key, value, build) of a ``key: value`` line; None when it is not one."""
    token, colon, rest = content.partition(": ")
    if not colon:
        token = content[:-1] if content[-1] == ":" else ""
    if token and _TOKEN.fullmatch(token) is not None:
        key, rest = _key(token), rest.lstrip(" ")
    else:  # a key with blanks, colons or doubled quotes in it
        found = _KEY_LINE.fullmatch(content)
        if found is None:
            return None
        key, rest = _key(found[1]), found[2]
    parsed = _value(rest) if rest else None
    if parsed is None:
        return KEY_OPEN, key, None, _AS_IS
    return KEY, key, parsed[0], parsed[1]
