"""diag/'s stages import only the stages before them (README.md, "Layout").

A stage is a subpackage of diag/ (model, predict, live, rules, ...) or one of its top-level
modules (cluster and portforward, the door to the API; report, assess, checkrun, cli, entry,
errors, apierrors). The table below is
the pipeline: a stage may import itself and the stages it lists, nothing later, so a change in a
later stage can never break an earlier one and the graph has no cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DIAG = ROOT / "diag"

BASE = {"errors"}
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "apierrors": BASE,
    "portforward": BASE | {"apierrors"},
    "cluster": BASE | {"apierrors", "portforward"},
    "model": BASE,
    "predict": BASE | {"model"},
    "live": BASE | {"model", "predict", "cluster"},
    "rules": BASE | {"model", "predict", "live"},
    "report": BASE | {"model", "predict", "live", "rules"},
    "lint": BASE | {"model", "predict", "rules", "report"},
    "render": BASE | {"model", "predict", "live", "rules", "report"},
    "presets": BASE | {"rules"},
    "assess": BASE | {"model", "predict", "live", "rules", "report", "lint", "presets"},
    "pod": BASE | {"cluster"},
    "manifests": BASE | {"model", "live", "pod"},
    "checkrun": BASE | {"cluster", "model", "live", "pod", "presets", "render", "report", "assess"},
    "watch": BASE | {"cluster", "model", "live", "rules", "report", "presets", "assess"},
    "commands": BASE
    | {"cluster", "model", "predict", "live", "rules", "report", "lint", "render", "presets", "assess",
       "pod", "manifests", "checkrun", "watch"},
    "cli": BASE | {"commands"},
    "entry": {"cli"},
}


def stage_of(path: Path, root: Path = DIAG) -> str:
    parts = path.relative_to(root).parts
    return parts[0] if len(parts) > 1 else path.stem


def diag_imports(path: Path) -> Iterator[str]:
    """Every diag stage a file imports, at module level or inside functions."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"diag.{a.name}" for a in node.names] if node.module == "diag" else [node.module]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "diag" and len(parts) > 1:
                yield parts[1]


def violations(root: Path = DIAG) -> list[str]:
    bad = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "__init__.py" and path.parent == root:
            continue
        mine, rel = stage_of(path, root), path.relative_to(root.parent)
        allowed = ALLOWED.get(mine)
        if allowed is None:
            bad.append(f"{rel}: stage {mine!r} is not in the layout table")
            continue
        for other in sorted(set(diag_imports(path))):
            if other != mine and other not in allowed:
                bad.append(f"{rel} ({mine}) imports diag.{other}")
    return bad


def test_every_stage_imports_only_earlier_stages() -> None:
    assert violations() == []


def test_the_table_is_a_pipeline() -> None:
    """No cycle in the table itself: a topological order exists."""
    order: list[str] = []
    pending = {k: set(v) for k, v in ALLOWED.items()}
    while pending:
        ready = sorted(k for k, deps in pending.items() if deps <= set(order))
        assert ready, f"cycle among {sorted(pending)}"
        order += ready
        for k in ready:
            del pending[k]
    assert order.index("model") < order.index("predict") < order.index("rules") < order.index("commands")


def test_the_stage_test_can_fail(tmp_path: Path) -> None:
    """A model module reaching into predict, and an unknown stage, are both reported."""
    root = tmp_path / "diag"
    (root / "model").mkdir(parents=True)
    (root / "model" / "x.py").write_text("def f():\n    from diag.predict import sidecar\n")
    (root / "stray.py").write_text("import diag.model.x\n")
    found = violations(root)
    assert any("imports diag.predict" in v for v in found)
    assert any("'stray' is not in the layout table" in v for v in found)
