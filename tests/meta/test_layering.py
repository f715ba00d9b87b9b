"""The data plane stays small: probes/ imports only the stdlib, httpx and dnspython, and only
diag/render/ imports rich (README.md, Layout)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBES_ALLOWED = {"httpx", "httpcore", "dns", "probes"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_probes_import_only_stdlib_httpx_dnspython() -> None:
    bad: list[str] = []
    for path in sorted((ROOT / "probes").rglob("*.py")):
        for name in _imports(path):
            if name in sys.stdlib_module_names or name in PROBES_ALLOWED or name == "__future__":
                continue
            bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert bad == []


def test_only_render_imports_rich() -> None:
    bad = [
        str(p.relative_to(ROOT))
        for p in sorted((ROOT / "diag").rglob("*.py"))
        if "rich" in _imports(p) and "render" not in p.relative_to(ROOT).parts
    ]
    assert bad == []


def test_only_cluster_module_imports_kubernetes() -> None:
    bad = [
        str(p.relative_to(ROOT))
        for p in sorted((ROOT / "diag").rglob("*.py"))
        if "kubernetes" in _imports(p) and p.name != "cluster.py"
    ]
    assert bad == []


def test_the_layering_test_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text("import rich\nfrom diag import cli\nimport httpx\n")
    assert _imports(bad) == {"rich", "diag", "httpx"}
