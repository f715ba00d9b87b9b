"""The loader's fast YAML path (diag/model/yamlfast.py, nodes composed only for a problem's position)
gives the same objects, documents and problems — line and column included — as reading every
document with kubeyaml's nodes."""

from __future__ import annotations

from pathlib import Path

import pytest

from diag.model import loader, yamlfast
from diag.model.loader import load_paths

TESTS = Path(__file__).resolve().parents[1]
FILES = sorted(p for p in TESTS.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def _both(paths: list[Path], monkeypatch: pytest.MonkeyPatch) -> tuple[loader.LoadResult, loader.LoadResult]:
    fast = load_paths(paths)
    with monkeypatch.context() as m:
        m.setattr(yamlfast, "read", lambda chunk: None)
        careful = load_paths(paths)
    return fast, careful


def _same(fast: loader.LoadResult, careful: loader.LoadResult) -> None:
    assert fast.problems == careful.problems
    assert fast.documents == careful.documents
    assert [repr(o) for o in fast.objects] == [repr(o) for o in careful.objects]
    assert fast.mesh == careful.mesh and fast.skipped == careful.skipped


def test_every_yaml_file_of_the_tests_loads_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(FILES) > 50
    for path in FILES:
        _same(*_both([path], monkeypatch))


BAD = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: typo
  namespace: shop
spec:
  hosts: [api.example.com]
  hostz: [x]
  ports:
  - number: 443
    name: tls
    protocol: TLS
  resolution: DNS
---
apiVersion: v1
kind: List
items:
- apiVersion: networking.istio.io/v1
  kind: ServiceEntry
  metadata: {name: bad-port, namespace: shop}
  spec:
    hosts: [db.example.com]
    ports:
    - {number: 5432, name: tcp, protocol: TCP, extra: 1}
    resolution: DNS
- apiVersion: networking.istio.io/v1
  kind: Sidecarr
  metadata: {name: s, namespace: shop}
"""


def test_problems_in_fast_read_documents_keep_their_line_and_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    assert all(yamlfast.read(chunk) is not None for _, _, chunk in yamlfast.split_documents(BAD))
    fast, careful = _both([path], monkeypatch)
    _same(fast, careful)
    where = {(p.message, p.line, p.column) for p in fast.problems}
    # positions written by hand from the text above (1-based)
    assert ('unknown field "spec.hostz"', 8, 3) in where
    assert ('unknown field "spec.ports[0].extra"', 23, 48) in where
    assert any(line == 26 for message, line, _ in where if "Sidecarr" in message)
