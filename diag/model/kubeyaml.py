"""YAML read the way kubectl reads it, so that a file means here what it means to the API server.

kubectl turns YAML into JSON with sigs.k8s.io/yaml, which parses with go-yaml v2. PyYAML's safe
loader follows YAML 1.1 and differs where it matters for Kubernetes objects:

- `10:20` is a base-60 integer (620) for PyYAML, a string for go-yaml; `2024-01-01` a date for
  PyYAML, a string for go-yaml (timestamps stay strings when decoded into untyped JSON);
  `1e3` and `0o17` are strings for PyYAML, numbers for go-yaml; `y`/`n` are booleans for go-yaml.
- In a flow sequence such as `addresses: [1.2.3.4, 001:db8::]` go-yaml ends a plain scalar only
  at `: ` (colon and blank) or a flow indicator, so `001:db8::` is one string; libyaml rejects
  it ("found unexpected ':'") and PyYAML's pure-Python scanner silently reads a mapping.
- Mapping keys become JSON strings: `1: a` is `{"1": "a"}`; an unknown `!tag` is ignored.

`documents(text)` yields ``(data, node)`` for each document of ``text``: ``data`` as kubectl would
see it, ``node`` the composed YAML node (for line and column of a field, see `locate`). It uses
libyaml's fast parser with go-yaml's scalar resolution, and re-reads a document with a scanner that
ends plain scalars like go-yaml only when libyaml stops at a colon inside a flow collection.
Malformed input raises `yaml.YAMLError` (a `MarkedYAMLError` carries the position): `position`,
`where` and `problem` turn it into a line, a column and PyYAML's own words for what is wrong
(without its ``while parsing ...`` context). `split_documents` cuts a file into its documents, with
the line each starts at, so that one bad document does not lose the others.

Source: go-yaml v2 `resolve.go` (resolveTable, resolve) and `scannerc.go`
(yaml_parser_scan_plain_scalar), as vendored by sigs.k8s.io/yaml.
"""

from __future__ import annotations

import math
import re
from collections.abc import Hashable, Iterator, Sequence
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_PREFIX = "tag:yaml.org,2002:"
NULL, BOOL, INT, FLOAT, STR, MERGE = (_PREFIX + t for t in ("null", "bool", "int", "float", "str", "merge"))
_BOOLS = {
    **dict.fromkeys(("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"), True),
    **dict.fromkeys(("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"), False),
}
_NULLS = frozenset(("", "~", "null", "Null", "NULL"))
_SPECIAL_FLOATS = {
    **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf),
}
_HINTED = frozenset("+-0123456789yYnNtTfFoO~.")  # go-yaml's resolveTable: other first characters are strings
_DECIMAL_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_DIGITS = {2: frozenset("01"), 8: frozenset("01234567"), 10: frozenset("0123456789")}
_DIGITS[16] = frozenset("0123456789abcdefABCDEF")
_BLANK = "\0 \t\r\n\x85\u2028\u2029"


def go_int(text: str) -> int | None:
    """Go's ``strconv.ParseInt(text, 0, 64)``, then ``ParseUint``: sign, 0x/0o/0b or leading-0
    octal prefixes, int64 (or, unsigned, uint64) range; None when it is not such an integer."""
    body = text[1:] if text[:1] in "+-" else text
    prefix = body[:2].lower()
    if prefix in ("0x", "0o", "0b"):
        base, digits = {"0x": 16, "0o": 8, "0b": 2}[prefix], body[2:]
    elif body.startswith("0") and len(body) > 1:
        base, digits = 8, body[1:]
    else:
        base, digits = 10, body
    if not digits or not set(digits) <= _DIGITS[base]:
        return None
    value = int(digits, base) * (-1 if text.startswith("-") else 1)
    if -(2**63) <= value < 2**63 or (text[:1] not in "+-" and value < 2**64):
        return value
    return None


def go_float(text: str) -> float | None:
    """Go's ``strconv.ParseFloat`` for the decimal forms go-yaml tries; None when it would fail
    (including out of range, where Go reports an error)."""
    if "_" in text or not _DECIMAL_FLOAT.match(text):
        return None
    value = float(text)
    return None if math.isinf(value) else value


def resolve_plain(value: str) -> str:
    """The tag go-yaml gives an untagged plain scalar."""
    if value == "" or value in _NULLS:
        return NULL
    if value == "<<":
        return MERGE
    if value[0] not in _HINTED:
        return STR
    if value in _BOOLS:
        return BOOL
    if value in _SPECIAL_FLOATS:
        return FLOAT
    if value[0] == ".":
        return FLOAT if go_float(value) is not None else STR
    if value[0] in "+-0123456789":
        plain = value.replace("_", "")
        if go_int(plain) is not None:
            return INT
        if go_float(plain) is not None:
            return FLOAT
    return STR


# PyYAML's classes are mixins whose attributes its stubs do not declare on each mixin.
_BaseResolver: Any = yaml.resolver.BaseResolver
_SafeConstructor: Any = yaml.constructor.SafeConstructor
_Scanner: Any = yaml.scanner.Scanner


class KubeResolver(_BaseResolver):  # type: ignore[misc]
    """Implicit tags as go-yaml v2 resolves them (no YAML 1.1 base-60, dates or `=`)."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is ScalarNode and implicit[0]:
            tag = _RESOLVED.get(value)
            if tag is None:
                tag = resolve_plain(value)
                if len(_RESOLVED) < 8192:  # keys and enum values repeat across objects
                    _RESOLVED[value] = tag
            return tag
        return super().resolve(kind, value, implicit)


_RESOLVED: dict[str, str] = {}


class KubeConstructor(_SafeConstructor):  # type: ignore[misc]
    """Values as go-yaml builds them, then as sigs.k8s.io/yaml makes them JSON (string keys)."""

    def construct_yaml_int(self, node: Any) -> int:
        value = go_int(str(self.construct_scalar(node)).replace("_", ""))
        if value is None:
            raise yaml.constructor.ConstructorError(None, None, "not an integer", node.start_mark)
        return value

    def construct_yaml_float(self, node: Any) -> float:
        text = str(self.construct_scalar(node))
        value = _SPECIAL_FLOATS.get(text)
        value = value if value is not None else go_float(text.replace("_", "") if text[:1] != "." else text)
        if value is None:
            raise yaml.constructor.ConstructorError(None, None, "not a number", node.start_mark)
        return value

    def construct_yaml_bool(self, node: Any) -> bool:
        text = str(self.construct_scalar(node))
        if text not in _BOOLS:
            raise yaml.constructor.ConstructorError(None, None, "not a boolean", node.start_mark)
        return _BOOLS[text]

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[str, Any]:
        if not isinstance(node, MappingNode):
            raise yaml.constructor.ConstructorError(None, None, "expected a mapping", node.start_mark)
        self.flatten_mapping(node)  # merge keys (<<)
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            mapping[key if type(key) is str else _json_key(key, key_node)] = self.construct_object(
                value_node, deep=deep
            )
        return mapping

    def construct_unknown(self, node: Any) -> Any:
        """A local tag (``!foo``) go-yaml does not know: the value as if untagged."""
        if isinstance(node, ScalarNode):
            return self.construct_scalar(node)
        if isinstance(node, SequenceNode):
            return self.construct_sequence(node, deep=True)
        return self.construct_mapping(node, deep=True)


KubeConstructor.add_constructor(INT, KubeConstructor.construct_yaml_int)
KubeConstructor.add_constructor(FLOAT, KubeConstructor.construct_yaml_float)
KubeConstructor.add_constructor(BOOL, KubeConstructor.construct_yaml_bool)
KubeConstructor.add_constructor(None, KubeConstructor.construct_unknown)


def _json_key(key: Hashable, node: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, (int, float, str)):
        return key if isinstance(key, str) else format(key, "g") if isinstance(key, float) else str(key)
    raise yaml.constructor.ConstructorError(None, None, "a mapping key must be a string", node.start_mark)


class GoFlowScanner(_Scanner):  # type: ignore[misc]
    """PyYAML's scanner, except that a plain scalar ends like go-yaml's: at a blank, at `:`
    followed by a blank, or (in a flow collection) at one of ``,?[]{}``."""

    def scan_plain(self) -> Any:
        start = end = self.get_mark()
        indent = self.indent + 1
        chunks: list[str] = []
        spaces: list[str] = []
        while self.peek() != "#":
            length = 0
            while not self._ends_plain(length):
                length += 1
            if length == 0:
                break
            self.allow_simple_key = False
            chunks.extend(spaces)
            chunks.append(self.prefix(length))
            self.forward(length)
            end = self.get_mark()
            spaces = self.scan_plain_spaces(indent, start)
            if not spaces or self.peek() == "#" or (not self.flow_level and self.column < indent):
                break
        return yaml.tokens.ScalarToken("".join(chunks), True, start, end)

    def _ends_plain(self, at: int) -> bool:
        ch = self.peek(at)
        if ch == ":":
            return bool(self.peek(at + 1) in _BLANK)
        return ch in _BLANK or bool(self.flow_level and ch in ",?[]{}")


_CParser: Any = getattr(yaml.cyaml, "CParser", None) if yaml.__with_libyaml__ else None


class GoFlowLoader(
    yaml.reader.Reader, GoFlowScanner, yaml.parser.Parser, yaml.composer.Composer, KubeConstructor,
    KubeResolver,
):  # fmt: skip
    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        GoFlowScanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        KubeConstructor.__init__(self)
        KubeResolver.__init__(self)


if _CParser is not None:

    class FastLoader(_CParser, KubeConstructor, KubeResolver):  # type: ignore[misc]
        def __init__(self, stream: str) -> None:
            _CParser.__init__(self, stream)
            KubeConstructor.__init__(self)
            KubeResolver.__init__(self)

    _FAST: Any = FastLoader
else:  # PyYAML without libyaml: the go-like scanner is the only one
    _FAST = GoFlowLoader


def _read(loader_class: Any, text: str) -> list[tuple[Any, Node]]:
    loader = loader_class(text)
    try:
        out = []
        while loader.check_node():
            node = loader.get_node()
            out.append((loader.construct_document(node), node))
        return out
    finally:
        loader.dispose()


def documents(text: str) -> Iterator[tuple[Any, Node]]:
    """Each document of ``text`` as ``(data, node)``; raises `yaml.YAMLError` when malformed."""
    try:
        parsed = _read(_FAST, text)
    except yaml.scanner.ScannerError as exc:
        if _FAST is GoFlowLoader or exc.problem != "found unexpected ':'":
            raise
        parsed = _read(GoFlowLoader, text)
    yield from parsed


def load(text: str) -> Any:
    """The single document of ``text`` (None when empty); raises `yaml.YAMLError`."""
    parsed = list(documents(text))
    if len(parsed) > 1:
        raise yaml.YAMLError("expected one YAML document, found several")
    return parsed[0][0] if parsed else None


def locate(node: Node | None, path: Sequence[str | int]) -> tuple[int, int] | None:
    """0-based (line, column) of the key at ``path`` (mapping keys and list indexes) under
    ``node``, or of the deepest part of the path that exists; None without a node."""
    if node is None:
        return None
    where = node.start_mark
    for part in path:
        child: Node | None = None
        if isinstance(node, MappingNode):
            for key, value in node.value:
                if isinstance(key, ScalarNode) and key.value == part:
                    where, child = key.start_mark, value
                    break
        elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            child = node.value[part]
            where = child.start_mark
        if child is None:
            break
        node = child
    return where.line, where.column


def split_documents(text: str) -> list[tuple[int, int, str]]:
    """(document number, 0-based first line, text) for each document: split here so one bad
    document does not lose the others."""
    chunks: list[tuple[int, list[str]]] = [(0, [])]
    for number, line in enumerate(text.splitlines(keepends=True)):
        if line.startswith("---") and (len(line) == 3 or line[3] in " \t\r\n"):
            chunks.append((number, []))
            rest = line[3:].strip()
            if rest and not rest.startswith("#"):
                chunks[-1][1].append(rest + "\n")
            continue
        chunks[-1][1].append(line)
    kept = [(first, "".join(c)) for first, c in chunks
            if any(s.strip() and not s.lstrip().startswith("#") for s in c)]  # fmt: skip
    return [(i, first, chunk) for i, (first, chunk) in enumerate(kept, start=1)]


def position(exc: yaml.YAMLError, first_line: int = 0) -> tuple[int | None, int | None]:
    """1-based (line, column) of a parse error, counting from ``first_line`` (0-based)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is None:
        return None, None
    return first_line + mark.line + 1, mark.column + 1


def problem(exc: yaml.YAMLError) -> str:
    """PyYAML's own words for what is wrong, without its context (``while parsing ...``)."""
    problem = getattr(exc, "problem", None)
    return str(problem) if problem else "malformed"


def where(exc: yaml.YAMLError, prefix: str) -> str:
    """``prefix:LINE:COL`` (or ``line N`` when ``prefix`` is "line") of a parse error."""
    mark = getattr(exc, "problem_mark", None)
    if mark is None:
        return prefix
    return f"{prefix}:{mark.line + 1}:{mark.column + 1}" if prefix != "line" else f"line {mark.line + 1}"
