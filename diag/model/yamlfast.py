"""A fast reader for the plain YAML most Kubernetes manifests are written in.

`read(chunk)` gives the documents of one chunk (a document as `kubeyaml.split_documents` cuts it)
as plain data, exactly as `kubeyaml.documents` builds them (go-yaml v2 scalar resolution, JSON
string keys), or None when the chunk uses anything outside a conservative subset; the caller then
reads it with `kubeyaml.documents`, which also gives the YAML nodes for line and column.

The subset: block mappings and sequences (``- key: v`` items and the compact ``key:`` then
``- item`` form), single-line plain, single-quoted and escape-free double-quoted scalars,
single-line flow mappings and sequences (``{name: a, port: 80}``, ``[a, b]``, ``{}``), empty
values (null), comments on their own line or after a value. Anything else — anchors, aliases,
tags, block scalars, multi-line scalars, complex or duplicate keys, tabs, directives, document
markers, escapes, unusual characters or indentation — gives None.

How: `yamllines.classify_line` reads each distinct line once (cached) into a shape (indentation,
kind, key, how to build its value) and a value. Documents whose lines have the same shapes have
the same structure, so each such skeleton is turned once into a Python expression that builds the
document from its lines' values (`_compile`), and the next document of that skeleton costs one
call of it. `split_documents` is `kubeyaml.split_documents` found with a few scans of the text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from diag.model import kubeyaml, yamllines, yamltokens
from diag.model.yamllines import ITEM, ITEM_OPEN, KEY, KEY_OPEN, SHAPES, VALUE
from diag.model.yamltokens import Unsupported


class _Shapes(dict[str, int]):
    """The shape of each line seen (and its value in `_VALUE_OF`), read when first seen."""

    def __missing__(self, line: str) -> int:
        shape, _VALUE_OF[line] = yamllines.classify_line(line)
        self[line] = shape
        return shape


_SHAPE_OF = _Shapes()
_VALUE_OF: dict[str, Any] = {}
Builder = Callable[[list[Any]], Any]
_BUILDERS: dict[tuple[int, ...], Builder | None] = {}
_LINES_KEPT, _BUILDERS_KEPT, _SHAPES_KEPT = 65536, 1024, 65536
_MAX_LINES, _MAX_DEPTH = 4000, 40  # larger or deeper documents take the careful reader
_VALUE = ("v[{}]", "dict(v[{}])", "list(v[{}])", "_thaw(v[{}])")  # by a shape's build


def read(chunk: str) -> list[Any] | None:
    """The documents of ``chunk`` as `kubeyaml.documents` gives their data, or None when the
    chunk uses YAML outside the subset (read it with `kubeyaml.documents` then).

    ``[data for data, _node in kubeyaml.documents(chunk)] == read(chunk)`` whenever the latter
    is not None."""
    if len(_SHAPE_OF) >= _LINES_KEPT or len(SHAPES) >= _SHAPES_KEPT:
        _forget()
    lines = chunk.split("\n")
    try:
        skeleton = tuple(map(_SHAPE_OF.__getitem__, lines))
        builder = _BUILDERS.get(skeleton, _unseen)
        if builder is _unseen:
            if len(_BUILDERS) >= _BUILDERS_KEPT:
                _BUILDERS.clear()
            builder = _BUILDERS[skeleton] = _compile(skeleton)
    except Unsupported:
        return None
    if builder is None:
        return None
    return [builder(list(map(_VALUE_OF.__getitem__, lines)))] if builder is not _EMPTY else []


def split_documents(text: str) -> list[tuple[int, int, str]]:
    """What `kubeyaml.split_documents` gives (document number, 0-based first line, text), found
    with a few scans of the text instead of a loop over its lines when the text is ASCII without
    the line breaks other than LF that `str.splitlines` also splits at (else it asks kubeyaml)."""
    if not text.isascii() or any(brk in text for brk in _ODD_BREAKS):
        return kubeyaml.split_documents(text)
    markers = [0] if text.startswith("---") else []
    found = text.find("\n---")
    while found >= 0:
        markers.append(found + 1)
        found = text.find("\n---", found + 1)
    starts = [(0, 0, 0)]  # (first line, start of the marker line, start of the text after it)
    line = at = 0
    for marker in markers:
        if text[marker + 3 : marker + 4] in ("", " ", "\t", "\n"):
            line += text.count("\n", at, marker)
            at = marker
            end = text.find("\n", marker)
            starts.append((line, marker, len(text) if end < 0 else end + 1))
    out: list[tuple[int, int, str]] = []
    for (first, begin, body), (_, following, _) in zip(starts, [*starts[1:], (0, len(text), 0)], strict=True):
        rest = text[begin + 3 : body].strip() if body else ""
        chunk = text[body:following]
        if rest and rest[0] != "#":
            chunk = rest + "\n" + chunk
        if _CONTENT.search(chunk):
            out.append((len(out) + 1, first, chunk))
    return out


_ODD_BREAKS = ("\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f")  # \x1f: blank for str.strip
_CONTENT = re.compile(r"^[ \t]*[^ \t\n#]", re.MULTILINE)


def _forget() -> None:
    """Empty the caches (shape indexes are kept by cached lines and builders, so all go together)."""
    _SHAPE_OF.clear()
    _VALUE_OF.clear()
    _BUILDERS.clear()
    SHAPES.clear()
    yamllines.SHAPE_IDS.clear()


def _unseen(values: list[Any]) -> Any:
    """A marker: no builder compiled for the skeleton yet."""


def _EMPTY(values: list[Any]) -> Any:
    """The builder of a chunk without content (no document)."""


def _compile(skeleton: tuple[int, ...]) -> Builder | None:
    """A function building the document whose lines have these shapes from the lines' values;
    None when the lines do not make a document of the subset."""
    shapes = [(*part, line) for line, shape in enumerate(skeleton) for part in SHAPES[shape]]
    if not shapes:
        return _EMPTY
    if len(shapes) > _MAX_LINES:
        return None
    out: list[str] = []
    try:
        end = _node(shapes, 0, out, 0)
    except Unsupported:
        return None
    if end != len(shapes):
        return None
    # The expression is made only of dict/list displays, keys written with repr() (a str's repr is
    # always a plain string literal) and v[i] subscripts with integer i: nothing read from the input
    # is ever evaluated as code, and no builtins are reachable.
    code = "lambda v: " + "".join(out)
    return eval(code, {"__builtins__": {}, "dict": dict, "list": list, "_thaw": yamltokens.thaw})  # type: ignore[no-any-return]


def _node(shapes: list[tuple[int, int, str | None, int, int]], at: int, out: list[str], depth: int) -> int:
    """Write to ``out`` the expression of the block node whose first line is ``shapes[at]``, and
    return the index of the line after it (the same walk a block parser makes)."""
    if depth > _MAX_DEPTH:
        raise Unsupported("depth")
    indent, kind, _, build, line = shapes[at]
    if kind == VALUE:
        out.append(_VALUE[build].format(line))
        return at + 1
    end = len(shapes)
    if kind <= KEY_OPEN:
        keys: set[str | None] = set()
        out.append("{")
        while True:
            _, kind, key, build, line = shapes[at]
            if kind > KEY_OPEN or key in keys:
                raise Unsupported("not a key, or a duplicate key")
            keys.add(key)
            out.append(f"{key!r}:")
            at += 1
            following = shapes[at] if at < end else None
            if kind == KEY:
                out.append(_VALUE[build].format(line))
            elif following is not None and (
                following[0] > indent or (following[0] == indent and following[1] in (ITEM, ITEM_OPEN))
            ):
                at = _node(shapes, at, out, depth + 1)  # the value below, or a compact sequence
            else:
                out.append("None")
            out.append(",")
            if at == end or shapes[at][0] < indent:
                out.append("}")
                return at
            if shapes[at][0] > indent:
                raise Unsupported("indentation")
    out.append("[")
    while True:
        _, kind, _, build, line = shapes[at]
        at += 1
        if kind == ITEM:
            out.append(_VALUE[build].format(line))
        elif at < end and shapes[at][0] > indent:
            at = _node(shapes, at, out, depth + 1)
        else:
            out.append("None")
        out.append(",")
        if at == end or shapes[at][0] < indent or shapes[at][1] not in (ITEM, ITEM_OPEN):
            out.append("]")
            return at  # the caller checks what follows (a key of a compact sequence's mapping)
        if shapes[at][0] > indent:
            raise Unsupported("indentation")
