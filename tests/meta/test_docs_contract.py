"""The user-facing contract pages under `docs/` say what the code does: the target examples and
rejections in `docs/targets.md` go through the real parser, and `docs/exit-codes.md` lists the
exit codes `diag.errors` defines."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from diag import errors
from probes.targets import TargetError, parse_target

DOCS = Path(__file__).resolve().parents[2] / "docs"
TARGETS = (DOCS / "targets.md").read_text()
EXIT_CODES = (DOCS / "exit-codes.md").read_text()


def section(text: str, title: str) -> str:
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def example_rows(text: str) -> list[tuple[str, str, str, int]]:
    rows = re.findall(r"^\| `([^`]+)` \| `([^`]+)` \| (\w+) \| (\d+) \|$", section(text, "Examples"), re.M)
    return [(target, url, protocol, int(port)) for target, url, protocol, port in rows]


def rejected_rows(text: str) -> list[str]:
    rows = re.findall(r"^\| `([^`]*)`(?: \(empty\))? \| [^|]+ \|$", section(text, "Rejected"), re.M)
    return list(rows)


EXAMPLES = example_rows(TARGETS)
REJECTED = rejected_rows(TARGETS)


def test_the_tables_were_read() -> None:
    assert len(EXAMPLES) >= 10
    assert len(REJECTED) >= 12 and "" in REJECTED


@pytest.mark.parametrize(("target", "url", "protocol", "port"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_documented_examples_parse_as_documented(target: str, url: str, protocol: str, port: int) -> None:
    spec = parse_target(target)
    assert (spec.url, spec.protocol.value, spec.port) == (url, protocol, port)


@pytest.mark.parametrize("target", REJECTED)
def test_documented_rejections_are_rejected(target: str) -> None:
    with pytest.raises(TargetError):
        parse_target(target)


def test_a_wrong_example_row_would_fail() -> None:
    row = "| `tls://api.example.com` | `tls://api.example.com:443` | tls | 443 |"
    wrong = TARGETS.replace(row, row.replace("443", "8443"))
    row = next(r for r in example_rows(wrong) if r[0] == "tls://api.example.com")
    assert parse_target(row[0]).port != row[3]


def test_exit_code_table_lists_the_codes_the_cli_uses() -> None:
    table = EXIT_CODES.split("## How errors read")[0]
    listed = {int(c) for c in re.findall(r"^\| (\d+) \|", table, re.M)}
    defined = {errors.EXIT_OK, errors.EXIT_MESH_FAILURE, errors.EXIT_USAGE, errors.EXIT_NOT_MESH}
    defined |= {errors.EXIT_INFRA}
    assert listed == defined | {130}
    assert errors.UsageError("x").exit_code == 2 and errors.InputError("x").exit_code == 2
    assert errors.LabError("x").exit_code == 4
