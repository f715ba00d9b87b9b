"""lab/bootstrap.py: Istio's bootstrap stats_config and the pod's proxyStatsMatcher opt-in."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from lab.bootstrap import (
    REQUIRED_PREFIXES,
    StatsAnnotations,
    StatsMatcher,
    build_bootstrap,
    build_stats_config,
)
from lab.handwritten import blackhole_config


def _patterns(stats: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for p in stats["stats_matcher"]["inclusion_list"]["patterns"]:
        ((kind, value),) = p.items()
        out.append((kind, value["regex"] if kind == "safe_regex" else value))
    return out


def test_stock_sidecar_inclusion_list_matches_istio_template_order() -> None:
    assert _patterns(build_stats_config(None)) == [
        ("prefix", "reporter="),
        ("prefix", "cluster_manager"),
        ("prefix", "listener_manager"),
        ("prefix", "server"),
        ("prefix", "cluster.xds-grpc"),
        ("prefix", "wasm"),
        ("suffix", "rbac.allowed"),
        ("suffix", "rbac.denied"),
        ("suffix", "shadow_allowed"),
        ("suffix", "shadow_denied"),
        ("safe_regex", r"vhost\..*\.route\..*"),
        ("prefix", "component"),
        ("prefix", "istio"),
    ]


def test_stock_sidecar_uses_istio_tags_not_envoy_defaults() -> None:
    stats = build_stats_config(None)
    assert stats["use_all_default_tags"] is False
    names = [t["tag_name"] for t in stats["stats_tags"]]
    assert names[:3] == ["cluster_name", "tcp_prefix", "response_code"]
    assert "authz_dry_run_result" in names


def test_opt_in_goes_before_required_entries() -> None:
    matcher = StatsMatcher(
        inclusion_prefixes=("cluster.BlackHoleCluster", "tcp.BlackHoleCluster"),
        inclusion_suffixes=("upstream_cx_total",),
        inclusion_regexps=(r"cluster\.outbound\|443\|\|.*",),
    )
    pats = _patterns(build_stats_config(matcher))
    prefixes = [v for k, v in pats if k == "prefix"]
    assert prefixes == [
        "reporter=",
        "cluster.BlackHoleCluster",
        "tcp.BlackHoleCluster",
        *REQUIRED_PREFIXES,
        "component",
        "istio",
    ]
    assert next(v for k, v in pats if k == "suffix") == "upstream_cx_total"
    regexps = [v for k, v in pats if k == "safe_regex"]
    assert regexps == [r"cluster\.outbound\|443\|\|.*", r"vhost\..*\.route\..*"]


def test_annotation_wins_over_proxy_config_and_pod_ip_is_substituted() -> None:
    matcher = StatsMatcher(inclusion_prefixes=("tcp.",))
    ann = StatsAnnotations(prefixes="http.{pod_ip}_,cluster.x")
    prefixes = [
        v
        for k, v in _patterns(build_stats_config(matcher, annotations=ann, pod_ips=["10.1.1.1"]))
        if k == "prefix"
    ]
    assert "tcp." not in prefixes
    assert prefixes[1:3] == ["http.10.1.1.1_", "cluster.x"]


def test_drain_suffix_only_with_exit_on_zero_active_connections() -> None:
    plain = [v for k, v in _patterns(build_stats_config(None)) if k == "suffix"]
    drain = [
        v
        for k, v in _patterns(build_stats_config(None, exit_on_zero_active_connections=True))
        if k == "suffix"
    ]
    assert "downstream_cx_active" not in plain
    assert drain[-1] == "downstream_cx_active"


@pytest.mark.parametrize(
    ("proxy_config", "expected"),
    [
        (None, None),
        ({}, None),
        (
            {"proxyStatsMatcher": {"inclusionPrefixes": ["a"], "inclusionRegexps": ["b.*"]}},
            StatsMatcher(("a",), (), ("b.*",)),
        ),
    ],
)
def test_stats_matcher_from_proxy_config(
    proxy_config: dict[str, Any] | None, expected: StatsMatcher | None
) -> None:
    assert StatsMatcher.from_proxy_config(proxy_config) == expected


def test_bootstrap_shape_admin_and_no_access_log_by_default() -> None:
    listeners, clusters = blackhole_config()
    boot = build_bootstrap(listeners, clusters)
    assert boot["admin"]["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 15000}
    assert "access_log" not in json.dumps(boot["static_resources"])
    assert "typed_dns_resolver_config" not in boot


def test_access_log_added_to_every_proxy_filter_without_touching_input() -> None:
    listeners, clusters = blackhole_config()
    boot = build_bootstrap(
        listeners, clusters, access_log_path="/tmp/a.log", dns_resolvers=[("10.9.0.1", 53)]
    )
    static = boot["static_resources"]["listeners"]
    filters = [f for ln in static for c in ln["filter_chains"] for f in c["filters"]]
    assert filters and all(
        f["typed_config"]["access_log"][0]["typed_config"]["path"] == "/tmp/a.log" for f in filters
    )
    assert "access_log" not in json.dumps(listeners)
    resolvers = boot["typed_dns_resolver_config"]["typed_config"]["resolvers"]
    assert resolvers == [{"socket_address": {"address": "10.9.0.1", "port_value": 53}}]


@pytest.mark.lab
def test_envoy_accepts_the_bootstrap(tmp_path: Path) -> None:
    listeners, clusters = blackhole_config()
    boot = build_bootstrap(
        listeners,
        clusters,
        stats_inclusions=StatsMatcher(("cluster.BlackHoleCluster",)),
        access_log_path=str(tmp_path / "a.log"),
        dns_resolvers=[("127.0.0.1", 53)],
    )
    path = tmp_path / "envoy.json"
    path.write_text(json.dumps(boot))
    envoy = shutil.which("envoy")
    assert envoy is not None
    done = subprocess.run(
        [envoy, "--mode", "validate", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "OK" in done.stdout + done.stderr
