"""yamlfast.read against kubeyaml.documents, the careful reader it short-cuts: on every YAML file
of the tests, on generated meshes, on targeted cases of each feature of the subset and of what
it must leave to the careful reader, and on random documents in block and flow style."""

from __future__ import annotations

import importlib.util
import math
import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from diag.model import kubeyaml, yamlfast, yamltokens

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent


def same(a: Any, b: Any) -> bool:
    """Equal values of equal types, mappings in the same key order (NaN equals NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def careful(chunk: str) -> list[Any] | None:
    """kubeyaml's documents of ``chunk``; None when it is not valid YAML."""
    try:
        return [data for data, _node in kubeyaml.documents(chunk)]
    except yaml.YAMLError:
        return None


def check(chunk: str) -> bool:
    """True when the fast reader took ``chunk``; fails when it disagrees with the careful one."""
    fast = yamlfast.read(chunk)
    if fast is None:
        return False
    expected = careful(chunk)
    assert expected is not None, f"the fast reader accepted YAML the careful one rejects: {chunk!r}"
    assert same(fast, expected), f"{chunk!r}: {fast!r} != {expected!r}"
    return True


def _yaml_files() -> list[Path]:
    return sorted(p for p in TESTS.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def test_every_yaml_file_of_the_tests() -> None:
    taken = total = 0
    for path in _yaml_files():
        for _, _, chunk in kubeyaml.split_documents(path.read_text(encoding="utf-8")):
            taken += check(chunk)
            total += 1
    assert total > 300
    assert taken / total > 0.8  # most of what people write is in the subset


def _generate() -> Any:
    spec = importlib.util.spec_from_file_location("generate", ROOT / "benchmarks/explain_scale/generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("flow", [None, False])
def test_generated_meshes_all_take_the_fast_path(flow: bool | None) -> None:
    items = _generate().generate(300)["items"]
    text = yaml.safe_dump_all(items, default_flow_style=flow, sort_keys=False)
    chunks = kubeyaml.split_documents(text)
    assert len(chunks) == len(items)
    for (_, _, chunk), item in zip(chunks, items, strict=True):
        assert check(chunk), chunk
        assert yamlfast.read(chunk) == [item]


TAKEN = [
    ("a: 1\nb: x\n", {"a": 1, "b": "x"}),
    ("a:\n  b:\n    c: d\n", {"a": {"b": {"c": "d"}}}),
    ("a:\n- 1\n- x\nb: 2\n", {"a": [1, "x"], "b": 2}),
    ("a:\n  - 1\n  - x\n", {"a": [1, "x"]}),
    ("- a: 1\n  b: 2\n- c: 3\n", [{"a": 1, "b": 2}, {"c": 3}]),
    ("-   a: 1\n    b:\n    - x\n", [{"a": 1, "b": ["x"]}]),
    ("-\n  a: 1\n-\n", [{"a": 1}, None]),
    ("a:\nb: ~\nc: null\nd: Null\n", {"a": None, "b": None, "c": None, "d": None}),
    ("a: {}\nb: []\n", {"a": {}, "b": []}),
    (
        "metadata: {name: a, namespace: b}\nhosts: [a, b]\n",
        {"metadata": {"name": "a", "namespace": "b"}, "hosts": ["a", "b"]},
    ),
    ("a: {b: [1, {c: d}], e: []}\n", {"a": {"b": [1, {"c": "d"}], "e": []}}),
    ("a: [x y, 'p, q', \"r: s\"]\n", {"a": ["x y", "p, q", "r: s"]}),
    ("a: 'it''s'\nb: \"1\"\nc: ''\n", {"a": "it's", "b": "1", "c": ""}),
    (
        "# top\na: 1 # one\n  # indented comment\nb: [1] # two\nc: {d: e}  # three  # four\n",
        {"a": 1, "b": [1], "c": {"d": "e"}},
    ),
    ("a: on\nb: y\nc: No\nd: TRUE\ne: off\n", {"a": True, "b": True, "c": False, "d": True, "e": False}),
    (
        "a: 0o17\nb: 017\nc: 0x1F\nd: 0b11\ne: +1\nf: -1\ng: 1_000\n",
        {"a": 15, "b": 15, "c": 31, "d": 3, "e": 1, "f": -1, "g": 1000},
    ),
    ("a: 1e3\nb: .5\nc: -.inf\nd: 1.\n", {"a": 1000.0, "b": 0.5, "c": -math.inf, "d": 1.0}),
    (
        "a: 10:20\nb: 2024-01-01\nc: 1.2.3.4\nd: http://x/y?z#f\n",
        {"a": "10:20", "b": "2024-01-01", "c": "1.2.3.4", "d": "http://x/y?z#f"},
    ),
    ("1: a\ntrue: b\n0x10: d\n1e3: e\n~x: f\n", {"1": "a", "true": "b", "16": "d", "1000": "e", "~x": "f"}),
    ("addresses: [2001:db8::1, 10.0.0.0/8]\n", {"addresses": ["2001:db8::1", "10.0.0.0/8"]}),
    ("hosts: [./*, istio-system/*]\n", {"hosts": ["./*", "istio-system/*"]}),
    ("  a: 1\n  b: 2\n", {"a": 1, "b": 2}),
    ("just a string\n", "just a string"),
    ("[a, b]\n", ["a", "b"]),
    ("a:\n  x\n", {"a": "x"}),
    (
        "app.kubernetes.io/name: x\n'quoted key': 1\n\"dq\": 2\n",
        {"app.kubernetes.io/name": "x", "quoted key": 1, "dq": 2},
    ),
    ("a: {b: 'c} #d'}\n", {"a": {"b": "c} #d"}}),
    ("a: -x\nb: a,b\nc: x[0]\nd: $HOME\n", {"a": "-x", "b": "a,b", "c": "x[0]", "d": "$HOME"}),
]


@pytest.mark.parametrize(("text", "expected"), TAKEN)
def test_subset_features(text: str, expected: Any) -> None:
    assert check(text)
    assert same(yamlfast.read(text), [expected])


LEFT_TO_KUBEYAML = [
    "a: &x 1\nb: *x\n",  # anchors, aliases
    "a: !tag 1\n",
    "a: !!str 1\n",
    "a: |\n  text\n",
    "a: >-\n  text\n",
    "a: multi\n  line\n",
    "a: 'multi\n  line'\n",
    'a: "esc\\n"\n',
    "? a\n: b\n",
    "[a]: b\n",
    "{a: b}: c\n",
    "a:\n\t- b\n",
    "a: 1\t\n",
    "%YAML 1.1\n---\na: 1\n",
    "a: 1\n...\n",
    "a: 1\n---\nb: 2\n",
    "a: 1\na: 2\n",
    "a: {b: 1, b: 2}\n",
    "1: a\n'1': b\n",
    "a: [b, [c\n",
    "a: [b: c]\n",
    "a: {b}\n",
    "a: [b, ]\n",
    "a: {b: }\n",
    "true: a\ny: b\n",  # both keys are "true"
    "a: b: c\n",
    "a: b:\n",
    "a:\n    b: 1\n  c: 2\n",
    "a: 1\n  b: 2\n",
    "- a\nb: 1\n",
    "a: 1\n- b\n",
    "- - a\n",
    "a: - b\n",
    "a: <<\n",
    "<<: {a: 1}\n",
    "~: a\n",
    "a: @b\n",
    "a: `b`\n",
    "a: b\r\n",
    "a: \u2028\n",
    "\ufeffa: 1\n",
    "# c\u2028a: 1\n",  # LS ends a comment line for libyaml
    "a: [x\x85y]\n",
    "a: {b: c\x00}\n",
    "# \x07\na: 1\n",
    "a: 'x' y\n",
    "a: {b: 'c} #d'} # e\n",
]


@pytest.mark.parametrize("text", LEFT_TO_KUBEYAML)
def test_outside_the_subset_is_left_to_kubeyaml(text: str) -> None:
    assert yamlfast.read(text) is None


def test_empty_chunks_and_caches() -> None:
    assert yamlfast.read("") == careful("") == []
    assert yamlfast.read("# only a comment\n\n") == careful("# only a comment\n\n") == []
    yamlfast._forget()  # cold caches read the same
    assert yamlfast.read("a: {b: [1]}\n") == [{"a": {"b": [1]}}]


def test_data_is_fresh_each_read() -> None:
    text = "a: {b: 1}\nc: [1]\nd:\n- e: 1\nf: {g: [1]}\n"
    first = yamlfast.read(text)
    assert first is not None
    first[0]["a"]["b"] = 2
    first[0]["c"].append(2)
    first[0]["d"][0]["e"] = 9
    first[0]["f"]["g"].append(2)
    assert yamlfast.read(text) == [{"a": {"b": 1}, "c": [1], "d": [{"e": 1}], "f": {"g": [1]}}]


def test_hinted_first_characters_match_kubeyaml() -> None:
    assert yamltokens.HINTED == kubeyaml._HINTED


TRICKY = ["on", "0o17", "1e3", "10:20", "2024-01-01", "~", "-1", ".5", "0x1F", "+1", "1_000", "y", "n", "No",
          "null", "", "true", "False", "1.5", "-.inf", ".nan", "0", "00", "08", "9223372036854775808",
          "18446744073709551616", "-0", "1e400", "0b2", "._", "a b", "x:y", "a#b", "./*", "istio-system/*",
          "-x", "?x", "a,b", "it's", "1.2.3.4", "2001:db8::", "*.example.com", "x]", "'", '"', "#",
          "-", ": x", "x:", "{}", "[]", "é", "a  b", " lead", "trail ", "@x", "%x", "!x", "&x",
          "|", ">"]  # fmt: skip
KEYS = ["a", "name", "1", "true", "y", "0x10", "1e3", "on", "~", "a b", "x:y", "app.kubernetes.io/name",
        "-k", "k-", "it's", "'q'", "10:20", ".5", "null", "<<"]  # fmt: skip


def _plain_ok(text: str) -> bool:
    """A scalar that may be written plain in block and flow style (when it is, it need not
    mean the text: the readers resolve it)."""
    if not text or text != text.strip() or text[0] in "-?:,[]{}#&*!|>'\"%@`":
        return False
    return not (": " in text or " #" in text or text.endswith(":") or any(c in text for c in ",]}"))


def _scalar(rnd: random.Random, text: str) -> str:
    style = rnd.random()
    if style < 0.5 and _plain_ok(text):
        return text
    if style < 0.8:
        return "'" + text.replace("'", "''") + "'"
    return '"' + text + '"' if '"' not in text and "\\" not in text else "'" + text.replace("'", "''") + "'"


def _random(rnd: random.Random, depth: int) -> Any:
    roll = rnd.random()
    if depth > 3 or roll < 0.5:
        return rnd.choice(TRICKY)
    if roll < 0.75:
        return {rnd.choice(KEYS): _random(rnd, depth + 1) for _ in range(rnd.randint(0, 4))}
    return [_random(rnd, depth + 1) for _ in range(rnd.randint(0, 4))]


def _flow(rnd: random.Random, node: Any) -> str:
    if isinstance(node, dict):
        return "{" + ", ".join(f"{_scalar(rnd, k)}: {_flow(rnd, v)}" for k, v in node.items()) + "}"
    if isinstance(node, list):
        return "[" + ", ".join(_flow(rnd, v) for v in node) + "]"
    return _scalar(rnd, node)


def _block(rnd: random.Random, node: Any, indent: int, lines: list[str], lead: str) -> None:
    """``lead`` is what starts the first line (a key and `:` or a `- `)."""
    pad = " " * indent
    if not isinstance(node, (dict, list)) or not node or rnd.random() < 0.2:
        value = _flow(rnd, node)
        comment = " # c" if rnd.random() < 0.2 else ""
        lines.append(f"{pad}{lead} {value}{comment}".rstrip() if lead else f"{pad}{value}{comment}")
        return
    if lead == "-" and isinstance(node, dict) and rnd.random() < 0.5:  # a `- key: value` item
        item: list[str] = []
        _block(rnd, node, indent + 2, item, "")
        lines.append(pad + "- " + item[0][indent + 2 :])
        lines.extend(item[1:])
        return
    if lead:
        lines.append(pad + lead)
        indent += (
            rnd.choice([2, 4])
            if isinstance(node, dict) or not lead.endswith(":") or rnd.random() < 0.5
            else 0
        )
        pad = " " * indent
    if rnd.random() < 0.1:
        lines.append(pad + "# a comment")
    for key, value in node.items() if isinstance(node, dict) else ((None, v) for v in node):
        item_lead = f"{_scalar(rnd, key)}:" if key is not None else "-"
        _block(rnd, value, indent, lines, item_lead)


@pytest.mark.parametrize("seed", range(8))
def test_random_documents_block_and_flow(seed: int) -> None:
    rnd = random.Random(seed)
    taken = 0
    for _ in range(250):
        doc = _random(rnd, 0)
        lines: list[str] = []
        _block(rnd, doc, 0, lines, "")
        for text in ("\n".join(lines) + "\n", _flow(rnd, doc) + "\n"):
            taken += check(text)
    print(f"seed {seed}: {taken} of 500 read by the fast path")
    assert taken > 100  # the subset covers much of what is generated


MUTATIONS = [":", ": ", " #", "#", "'", '"', "[", "]", "{", "}", ",", ", ", "-", "- ", " ", "  ", "\n",
             "\n  ", "!", "&", "*", "|", ">", "?", "? ", "%", "@", "\\", "\t", "~", "0", "1", "y",
             ".", "\x85", "\u2028", "\x00", "\ufeff", "é"]  # fmt: skip


@pytest.mark.parametrize("seed", range(4))
def test_mutated_documents_are_read_the_same_or_left_alone(seed: int) -> None:
    rnd = random.Random(1000 + seed)
    for _ in range(400):
        lines: list[str] = []
        _block(rnd, _random(rnd, 0), 0, lines, "")
        text = "\n".join(lines) + "\n" if rnd.random() < 0.7 else _flow(rnd, _random(rnd, 0)) + "\n"
        for _ in range(rnd.randint(1, 3)):
            at = rnd.randrange(len(text))
            cut = rnd.choice([0, 0, 1])
            text = text[:at] + rnd.choice(MUTATIONS) + text[at + cut :]
        check(text)


SPLIT_PIECES = ["---", "--- ", "---\t", "---x", "a: 1", "# c", " ", "\t", "\n", "\n", "\n", "- b", "--- # z",
                "--- x: 1", "...", "\r", "é", "\x1f", "\u2028", "  #", "#", "\r\n"]  # fmt: skip


def test_split_documents_is_kubeyamls() -> None:
    texts = [path.read_text(encoding="utf-8") for path in _yaml_files()]
    texts += [t + "\n---" for t in texts[:20]] + ["---\n" + t for t in texts[:20]]
    texts += ["", "\n", "---", "--- a\n", "# c\n---\n#d\n", "a: 1\n---  # x\n--- b: 1", "---x\na: 1\n"]
    rnd = random.Random(5)
    texts += ["".join(rnd.choice(SPLIT_PIECES) for _ in range(rnd.randint(0, 12))) for _ in range(3000)]
    for text in texts:
        assert yamlfast.split_documents(text) == kubeyaml.split_documents(text), repr(text[:200])
    mesh = yaml.safe_dump_all(_generate().generate(200)["items"], default_flow_style=None, sort_keys=False)
    assert yamlfast.split_documents(mesh) == kubeyaml.split_documents(mesh)
