"""Fixtures for the lab runtime's tests: one shared lab per module (≈0.3 s to build)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest

from tests.conftest import require_lab

DNS_TABLE = {"vip.lab.example": ("240.240.0.7",)}
STATS_OPT_IN = {
    "proxyStatsMatcher": {"inclusionPrefixes": ["cluster.BlackHoleCluster", "tcp.BlackHoleCluster"]}
}


def table_source(
    objects: Sequence[Mapping[str, Any]], spec: Any, mesh: Mapping[str, Any], mode: str | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, tuple[str, ...]]]:
    """The hand-written catch-all config, plus a DNS table for DNS-capture pods."""
    from lab.runtime import handwritten_source

    listeners, clusters, _ = handwritten_source(objects, spec, mesh, mode)
    return listeners, clusters, dict(DNS_TABLE)


@pytest.fixture(scope="module")
def runtime_lab() -> Iterator[Any]:
    """REGISTRY_ONLY catch-all lab with three pods: plain, DNS capture, stats opt-in."""
    require_lab()
    from lab.pod import PodSpec
    from lab.runtime import Lab

    pods = [
        PodSpec(),
        PodSpec(namespace="dns", dns_capture=True),
        PodSpec(namespace="stats", proxy_config=STATS_OPT_IN),
    ]
    with Lab(
        mode="REGISTRY_ONLY",
        internet=["pkg.lab.example", "files.lab.example", "other.lab.example"],
        access_log=True,
        pods=pods,
        drain_seconds=0.1,
        config_source=table_source,
    ) as lab:
        yield lab
