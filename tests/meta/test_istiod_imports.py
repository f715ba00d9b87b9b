"""lab/istiod's modules import each other without a cycle, counting imports inside functions too.

The graph is read from the source with ``ast``: an edge ``a -> b`` for every ``import`` or
``from ... import`` in module ``a`` (at any depth) that names module ``b`` of the package, or a
name defined in the package's ``__init__`` (edge to ``__init__``). The implicit edge from every
submodule to its parent package is not counted (Python always runs the parent first).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "lab.istiod"


def import_graph(pkg_dir: Path, package: str) -> dict[str, set[str]]:
    """Module name (file stem, ``__init__`` for the package) → the package modules it imports."""
    modules = {p.stem for p in pkg_dir.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for name in sorted(modules):
        tree = ast.parse((pkg_dir / f"{name}.py").read_text(), filename=f"{name}.py")
        deps: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith(package + "."):
                        deps.add(alias.name[len(package) + 1 :].split(".")[0])
            elif isinstance(node, ast.ImportFrom):
                if node.level == 1:
                    base = node.module or ""
                elif node.level == 0 and node.module and (node.module + ".").startswith(package + "."):
                    base = node.module[len(package) + 1 :]
                else:
                    continue
                if base:
                    deps.add(base.split(".")[0])
                else:  # from <package> import x: a submodule, else a name of __init__
                    deps.update(a.name if a.name in modules else "__init__" for a in node.names)
        graph[name] = (deps & modules) - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle as a path ``[a, b, ..., a]``, or ``[]`` when the graph is acyclic."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return []


def test_lab_istiod_has_no_import_cycle() -> None:
    graph = import_graph(ROOT / "lab" / "istiod", PACKAGE)
    assert len(graph) > 20  # the package was found and read
    assert find_cycle(graph) == []


def test_graph_counts_function_level_and_package_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("def entry():\n    from pkg.a import run\n    return run()\n")
    (pkg / "a.py").write_text("from pkg import b\n\ndef run():\n    return b.value()\n")
    (pkg / "b.py").write_text("def value():\n    from .c import helper\n    return helper()\n")
    (pkg / "c.py").write_text("def helper():\n    from pkg.a import run\n    return run\n")
    (pkg / "d.py").write_text("from pkg import entry\n")
    graph = import_graph(pkg, "pkg")
    assert graph == {"__init__": {"a"}, "a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"__init__"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    (pkg / "c.py").write_text("def helper():\n    return 1\n")
    assert find_cycle(import_graph(pkg, "pkg")) == []
