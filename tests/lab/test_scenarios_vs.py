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


@pytest.mark.lab
def test_virtual_service_tcp_route_sends_the_connection_elsewhere() -> None:
    """A ``tcp`` rule on an entry's VIP-bound listener: the connection goes to the route's host
    (resolution DNS: a NONE destination cluster is ORIGINAL_DST and would keep the address dialled)."""
    from lab.names import RunNames, new_run_id
    from lab.runtime import Lab

    names = RunNames(new_run_id())
    a, b = f"10.{names.second_octet}.3.201", f"10.{names.second_octet}.3.202"
    objects = [
        service_entry("ssh-a", ["ssh-a.lab.example"], [(22, "TCP")], addresses=[a], resolution="NONE"),
        service_entry("ssh-b", ["ssh-b.lab.example"], [(22, "TCP")], addresses=[b], resolution="DNS"),
        virtual_service(
            "ssh-a", ["ssh-a.lab.example"], tcp=[{"route": [{"destination": {"host": "ssh-b.lab.example"}}]}]
        ),
    ]
    holder: list[Lab] = []
    lab = Lab(
        objects,
        mode="REGISTRY_ONLY",
        access_log=True,
        run_id=names.run_id,
        config_source=config_source(lab_ref=holder),
    )
    holder.append(lab)
    with lab:
        problems = run_cases(
            lab.pod(),
            [
                Case(
                    "tcp rule: ssh-a's address answers with ssh-b's banner",
                    "tcp",
                    "banner",
                    host="ssh-a.lab.example",
                    port=22,
                    body_has=f"ssh-b.lab.example {b}:22",
                    timeout=1.0,
                    log=LogExpect(cluster="outbound|22||ssh-b.lab.example"),
                ),
                Case(
                    "ssh-b itself",
                    "tcp",
                    "banner",
                    host="ssh-b.lab.example",
                    port=22,
                    body_has="ssh-b.lab.example",
                    timeout=1.0,
                    log=LogExpect(cluster="outbound|22||ssh-b.lab.example"),
                ),
            ],
        )
    assert problems == []
