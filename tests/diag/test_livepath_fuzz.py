"""Robustness: odd or truncated Envoy config never makes the live-path matcher raise, and
fuzzed YAML inputs to `meshprobe explain` / `meshprobe lint` never produce a traceback — only
exit 0/1/2/3 with at most one ``error:`` line.

The matcher answers ``invalid_config`` only for a field Envoy itself would reject, naming that
field; any other exception (a bug in the matcher) propagates, so this test fails on it."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diag.cli import main
from diag.live import path as livepath
from diag.live.path import LiveCall

ENVOY = Path(__file__).parent / "testdata" / "envoy"
DUMP = json.loads((ENVOY / "sidecar-config-dump-ALLOW_ANY.json").read_text())

JUNK = st.one_of(
    st.none(),
    st.integers(-5, 70000),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.booleans(),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(_paths(v, (*prefix, i)))
    return out


PATHS = [p for p in _paths(DUMP) if p]

CALLS = st.builds(
    LiveCall,
    st.sampled_from([80, 443, 5432, 7777, 8080, 15001]),
    st.sampled_from([None, "10.20.30.40", "240.240.0.5", "::1", "not-an-ip"]),
    st.sampled_from(["raw_buffer", "tls"]),
    st.sampled_from([None, "a.example.org", "x.deep.example.org", ""]),
    st.sampled_from([(), ("h2", "http/1.1")]),
    st.sampled_from([None, "api.example.com", "[::1]:80", "x:y:z", ""]),
    st.sampled_from([None, "1.0", "1.1", "2"]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(PATHS), junk=JUNK, call=CALLS)
def test_matcher_never_raises_on_mangled_config(path: tuple[Any, ...], junk: Any, call: LiveCall) -> None:
    doc = copy.deepcopy(DUMP)
    target: Any = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = junk
    result = livepath.match(doc, call)
    if result.outcome == "invalid_config":
        # only a field Envoy itself would reject gives invalid_config, and the note names it
        named = [k for k in path if isinstance(k, str)]
        assert named and named[-1] in result.notes[0], (path, junk, result.notes)
    assert result.outcome in {
        "cluster",
        "direct_response",
        "redirect",
        "no_listener",
        "no_filter_chain",
        "no_route_config",
        "no_vhost",
        "no_route",
        "protocol_error",
        "http10_rejected",
        "unknown_filter",
        "invalid_config",
    }
    livepath.effective_mode(doc)
    livepath.rejected_updates(doc, {"x.update_rejected": 1})


@settings(max_examples=30, deadline=None)
@given(
    st.one_of(
        st.text(max_size=200),
        st.recursive(
            st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10)),
            lambda inner: st.one_of(
                st.lists(inner, max_size=3),
                st.dictionaries(
                    st.sampled_from(
                        [
                            "apiVersion",
                            "kind",
                            "metadata",
                            "spec",
                            "hosts",
                            "ports",
                            "name",
                            "namespace",
                            "resolution",
                            "exportTo",
                            "number",
                            "protocol",
                            "addresses",
                        ]
                    ),
                    inner,
                    max_size=4,
                ),
            ),
            max_leaves=12,
        ).map(
            lambda v: json.dumps(
                {
                    "apiVersion": "networking.istio.io/v1",
                    "kind": "ServiceEntry",
                    "metadata": {"name": "x", "namespace": "a"},
                    "spec": v,
                }
            )
        ),
    )
)
def test_fuzzed_yaml_never_gives_a_traceback(text: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in.yaml"
        path.write_text(text)
        for argv in (
            ["explain", "api.example.com", "--config", str(path), "-n", "a", "-o", "json"],
            ["lint", "--config", str(path), "-o", "sarif"],
        ):
            code = _quiet(argv)
            assert code in (0, 1, 2, 3), (argv, code)


def _quiet(argv: list[str]) -> int:
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(argv)
    assert "Traceback" not in err.getvalue() and "internal error" not in err.getvalue(), err.getvalue()
    assert len([line for line in err.getvalue().splitlines() if line.startswith("error:")]) <= 1
    return code


@pytest.mark.parametrize(
    "doc",
    [
        {},
        [],
        "text",
        {"configs": "x"},
        {"listeners": [None, 1, "x"]},
        {"static_resources": {"listeners": [{"name": "a", "address": "x"}]}},
    ],
)
def test_matcher_on_shapes_that_are_not_config(doc: Any) -> None:
    result = livepath.match(doc, LiveCall(443, "10.0.0.1", "tls", "a.example.org"))
    assert result.outcome in ("no_listener", "invalid_config")
