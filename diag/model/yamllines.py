"""The lines of the plain YAML most Kubernetes manifests are written in, read one by one.

`yamlfast.read` builds documents from what `classify_line` finds on each line: its indentation,
whether it holds a key, a sequence item or a bare value, and the value written on it (read by
`yamltokens`). A line outside the subset raises `Unsupported`.

The subset: block mappings and sequences (``- key: v`` items and the compact ``key:`` then
``- item`` form), one-line plain, single-quoted and escape-free double-quoted scalars, one-line
flow collections, empty values, comments on their own line or after a value.
"""

from __future__ import annotations

import re
from typing import Any

from diag.model.yamltokens import (
    AS_IS,
    DQ,
    NESTED,
    SQ,
    START,
    TOKEN,
    Unsupported,
    flat_flow,
    json_key,
    nested,
    scalar,
)

# Line kinds: a key with its value on the line, a key whose value follows (or is null), a
# sequence item with its value on the line, a sequence item whose value follows, a bare value.
KEY, KEY_OPEN, ITEM, ITEM_OPEN, VALUE = range(5)
_COMMENT = r"(?: +#.*)?"

_KEY_LINE = re.compile(r"(" + START + r"[^ :#]*(?:(?: +|:+)[^ :#]+)*|" + SQ + "|" + DQ + r"):(?: +(.*))?")
_SQ_VALUE = re.compile("(" + SQ + ")" + _COMMENT)
_DQ_VALUE = re.compile("(" + DQ + ")" + _COMMENT)
# Characters YAML does not allow, or that end lines, or that need care (tab, CR, BOM, NEL, LS, PS).
_BAD_CHARS = re.compile(
    "[^\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)

# The commonest lines: `key: word` (a plain scalar without blanks or indicators) and `key: {...}`,
# `key: [...]`, `- {...}`, `- [...]` (a flow collection, read by `flat_flow` when simple).
_SIMPLE_LINE = re.compile(
    r"( *)(?:- ([\[{].*)|([A-Za-z_][A-Za-z0-9_./-]*): ([A-Za-z0-9_./][A-Za-z0-9_./-]*|[\[{].*))"
)
_PLAIN_FIRST = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./~$(=^+")
# Line shapes seen, by index (documents of one shape share a builder; see `yamlfast`).
Shape = tuple[tuple[int, int, "str | None", int], ...]
SHAPES: list[Shape] = []
SHAPE_IDS: dict[Shape, int] = {}


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
        flat = flat_flow(text)
        if flat is not None:
            return flat
        return nested(text), NESTED
    if first == "'" or first == '"':
        found = (_SQ_VALUE if first == "'" else _DQ_VALUE).fullmatch(text)
        if found is None:
            raise Unsupported(text)
        return scalar(found[1]), AS_IS
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
    return scalar(text), AS_IS


def classify_line(line: str) -> tuple[int, Any]:
    """(shape, value) of what ``line`` holds; the shape is the index in `SHAPES` of the nodes the
    line opens, each ``(indent, kind, key, build)``: none for a blank or comment line, two for a
    ``- key: ...`` item (the open item, then its mapping's first key, which the value is for)."""
    if line.isascii() and line.isprintable():
        simple = _SIMPLE_LINE.fullmatch(line)
        if simple is not None:  # what the general path below finds for `key: word` and `key: {k: v}`
            indent, item, key, text = simple.groups()
            text = text or item
            if text[0] not in "[{":
                return _shape(((len(indent), KEY, json_key(key), AS_IS),)), scalar(text)
            if text[-1] == ("}" if text[0] == "{" else "]"):
                flat = flat_flow(text)
                if flat is not None:
                    build = flat[1]
                    head = (
                        (len(indent), ITEM, None, build) if item else (len(indent), KEY, json_key(key), build)
                    )
                    return _shape((head,)), flat[0]
    elif _BAD_CHARS.search(line):  # even in a comment: NEL, LS and PS end lines for libyaml
        raise Unsupported(line)
    content = line.lstrip(" ")
    if not content or content[0] == "#":
        return _shape(()), None
    if line.startswith(("---", "...")):
        raise Unsupported(line)
    indent = len(line) - len(content)
    entry = _classify(content.rstrip(" "))
    if len(entry) == 3:
        _, offset, (kind, key, value, build) = entry
        return _shape(((indent, ITEM_OPEN, None, AS_IS), (indent + offset, kind, key, build))), value
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
            return ITEM_OPEN, None, None, AS_IS
        if rest[:2] == "- " or rest == "-":
            raise Unsupported(content)
        inner = _key_line(rest)
        if inner is not None:
            return ITEM_OPEN, len(content) - len(rest), inner
        value, build = _value(rest) or (None, AS_IS)
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
    if token and TOKEN.fullmatch(token) is not None:
        key, rest = json_key(token), rest.lstrip(" ")
    else:  # a key with blanks, colons or doubled quotes in it
        found = _KEY_LINE.fullmatch(content)
        if found is None:
            return None
        key, rest = json_key(found[1]), found[2]
    parsed = _value(rest) if rest else None
    if parsed is None:
        return KEY_OPEN, key, None, AS_IS
    return KEY, key, parsed[0], parsed[1]
