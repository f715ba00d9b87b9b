"""The target's path reaches the prediction: VirtualService HTTP matches read it, so
`explain http://host/v1/x` and `explain http://host/other` can differ (404 NR, MP0119)."""

from __future__ import annotations

from diag.model.loader import load_text
from diag.model.snapshot import Snapshot
from diag.predict.sidecar import Source
from diag.report import assess_target
from probes.targets import parse_target

CONFIG = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: apps}
spec:
  hosts: [api.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api-versions, namespace: apps}
spec:
  hosts: [api.example.com]
  http:
  - match: [{uri: {prefix: /v1/}}]
    route: [{destination: {host: api.example.com}}]
"""


def _assess(target: str) -> object:
    loaded = load_text(CONFIG)
    snapshot = Snapshot.build(list(loaded.objects), loaded.mesh)
    source = Source(namespace="apps", mode_override="REGISTRY_ONLY")
    return assess_target(parse_target(target), snapshot=snapshot, source=source)


def test_a_matching_path_is_routed() -> None:
    result = _assess("http://api.example.com/v1/items")
    assert result.predicted.verdict == "allowed"  # type: ignore[attr-defined]
    assert "MP0119" not in [d.code for d in result.diagnoses]  # type: ignore[attr-defined]


def test_a_path_no_route_matches_is_mp0119() -> None:
    result = _assess("http://api.example.com/other")
    assert "MP0119" in [d.code for d in result.diagnoses]  # type: ignore[attr-defined]
