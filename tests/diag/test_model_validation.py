"""Istio admission validation, table-driven from `testdata/model/validation.yaml`."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diag.model import validation_rules as model_validation
from diag.model.loader import load_paths
from diag.model.resources import MeshConfig, Resource
from diag.model.snapshot import Snapshot
from diag.model.validation import validate

TABLE = Path(__file__).parent / "testdata" / "model" / "validation.yaml"
_loaded = load_paths([TABLE])
assert _loaded.problems == (), _loaded.problems
CASES = [pytest.param(obj, id=obj.name) for obj in _loaded.objects]


@pytest.mark.parametrize("obj", CASES)
def test_validation_table(obj: Resource) -> None:
    expect = obj.annotations["meshprobe.test/expect"]
    messages = validate(obj)
    if expect == "valid":
        assert [m.message for m in messages if m.level == "error"] == []
        return
    level, _, text = expect.partition(": ")
    found = [m for m in messages if m.level == level and text in m.message]
    assert found, f"expected {level} containing {text!r}, got {[(m.level, m.message) for m in messages]}"
    assert found[0].ref == obj.ref and found[0].istio_source


def test_snapshot_leaves_invalid_objects_out() -> None:
    snapshot = Snapshot.build(_loaded.objects, MeshConfig())
    kept = {se.name for se in snapshot.service_entries}
    assert "wildcard-dns" not in kept and "star" not in kept
    assert {"ok-dns", "wildcard-dns-endpoints", "none-selector"} <= kept
    assert all(m.level == "error" for m in snapshot.invalid)
    assert any(m.ref == "ServiceEntry t/star" for m in snapshot.invalid)
    assert any(m.ref == "ServiceEntry t/none-selector" for m in snapshot.warnings)
    assert not any(s.host == "*" for s in snapshot.mesh_services)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="abcXYZ019-.*_", max_size=40))
def test_domain_fast_path_agrees_with_label_by_label_check(name: str) -> None:
    """The whole-name regex accepts exactly what the label-by-label check (Istio's) accepts."""
    slow_ok = bool(name) and len(name) <= 255 and model_validation._labels_ok(name) is None
    assert model_validation._domain_ok(name) == slow_ok
