"""End-to-end lab scenario: a mesh-bound VirtualService on an external HTTP entry.

Its routes replace the entry's default route, and pilot adds no fallback: a path no rule matches
gets Envoy's local 404 ``NR`` (MP0119); a route to a subset no DestinationRule defines gets the
empty 503 ``NC`` (the MP0112 sub-reason "subset/DR missing"); redirects and direct responses are
answered by the sidecar itself.
"""

from __future__ import annotations

import pytest

from lab.istiod.samples import service_entry, virtual_service
from tests.lab.test_scenarios_support import Case, LogExpect, config_source, run_cases

API = "api.lab.example"


@pytest.mark.lab
def test_virtual_service_routes_no_fallback_and_missing_subset() -> None:
    from lab.runtime import Lab

    dest = [{"destination": {"host": API}}]
    objects = [
        service_entry("api", [API], [(80, "HTTP")]),
        virtual_service(
            "api",
            [API],
            [
                {"name": "v1", "match": [{"uri": {"prefix": "/v1"}}], "route": dest},
                {
                    "name": "moved",
                    "match": [{"uri": {"prefix": "/old"}}],
                    "redirect": {"uri": "/v1/new", "redirectCode": 302},
                },
                {
                    "name": "tea",
                    "match": [{"uri": {"prefix": "/tea"}}],
                    "directResponse": {"status": 418, "body": {"string": "teapot"}},
                },
                {
                    "name": "canary",
                    "match": [{"uri": {"prefix": "/canary"}}],
                    "route": [{"destination": {"host": API, "subset": "canary"}}],
                },
            ],
        ),
    ]
    holder: list[Lab] = []
    lab = Lab(objects, mode="REGISTRY_ONLY", access_log=True, config_source=config_source(lab_ref=holder))
    holder.append(lab)
    with lab:
        problems = run_cases(
            lab.pod(),
            [
                Case(
                    "VS route",
                    "http",
                    "status:200",
                    url=f"http://{API}/v1/x",
                    body_has='"path": "/v1/x"',
                    log=LogExpect(cluster=f"outbound|80||{API}", route="v1"),
                ),
                Case(
                    "no VS rule matches: local 404 NR",
                    "http",
                    "status:404",
                    url=f"http://{API}/",
                    log=LogExpect(flags="NR", code="404"),
                ),
                Case(
                    "VS redirect answered by the sidecar",
                    "http",
                    "status:302",
                    url=f"http://{API}/old",
                    log=LogExpect(route="moved", code="302"),
                ),
                Case(
                    "VS direct response",
                    "http",
                    "status:418",
                    url=f"http://{API}/tea",
                    body_has="teapot",
                    log=LogExpect(route="tea", code="418"),
                ),
                Case(
                    "subset without a DestinationRule: empty 503 NC",
                    "http",
                    "status:503",
                    url=f"http://{API}/canary",
                    log=LogExpect(route="canary", flags="NC"),
                ),
            ],
        )
    assert problems == []
