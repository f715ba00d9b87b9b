"""The lab generator is written independently of ``diag/`` (docs/lab-config.md; why: docs/vectors.md): nothing
under ``lab/istiod`` may import ``diag`` (its matching, visibility or prediction logic), or the lab
would stop being a check on them."""

from __future__ import annotations

import ast
from pathlib import Path

import lab.istiod

PACKAGE = Path(lab.istiod.__file__).parent


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_lab_istiod_never_imports_diag() -> None:
    files = sorted(PACKAGE.glob("*.py"))
    assert len(files) > 10
    offenders = {
        f.name: sorted(m for m in imported_modules(f) if m == "diag" or m.startswith("diag.")) for f in files
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_lab_istiod_imports_only_stdlib_and_itself() -> None:
    allowed_roots = {"__future__", "collections", "dataclasses", "typing", "ipaddress", "copy", "json", "lab"}
    for f in sorted(PACKAGE.glob("*.py")):
        roots = {m.split(".")[0] for m in imported_modules(f)}
        assert roots <= allowed_roots, (f.name, roots - allowed_roots)
        lab_modules = {m for m in imported_modules(f) if m.startswith("lab")}
        assert all(m == "lab.istiod" or m.startswith("lab.istiod.") for m in lab_modules), (
            f.name,
            lab_modules,
        )
