"""End-to-end lab scenarios: what a pod sees (exportTo, Sidecar egress hosts, Sidecar mode).

Mesh mode ALLOW_ANY; namespace ``team`` has a Sidecar importing only its own namespace with
REGISTRY_ONLY. Pods in ``default``, ``other`` and ``team`` make the same calls:

- ``pkg`` (exported everywhere) is routed for ``default`` and hidden from ``team`` (block_all 502);
- ``files`` (``exportTo: ["."]`` in ``other``) is routed only in ``other``; in ``default`` it is not
  visible and ALLOW_ANY passes it through (``allow_any`` → PassthroughCluster): hidden is not blocked;
- ``team``'s own entry is routed for ``team``.
"""

from __future__ import annotations

import pytest

from lab.istiod.samples import service_entry, sidecar
from tests.lab.test_scenarios_support import Case, LogExpect, config_source, run_cases

PKG = "pkg.lab.example"
FILES = "files.lab.example"
TEAM = "team.lab.example"


def routed(host: str) -> LogExpect:
    return LogExpect(cluster=f"outbound|80||{host}", route="default")


@pytest.mark.lab
def test_export_to_and_sidecar_scoping() -> None:
    from lab.runtime import Lab

    objects = [
        service_entry("pkg", [PKG], [(80, "HTTP")]),
        service_entry("files", [FILES], [(80, "HTTP")], namespace="other", export_to=["."]),
        service_entry("team", [TEAM], [(80, "HTTP")], namespace="team", export_to=["."]),
        sidecar("default", namespace="team", hosts=["./*"], mode="REGISTRY_ONLY"),
    ]
    holder: list[Lab] = []
    lab = Lab(
        objects,
        mesh={"outboundTrafficPolicy": {"mode": "ALLOW_ANY"}},
        access_log=True,
        config_source=config_source(lab_ref=holder),
    )
    holder.append(lab)
    with lab:
        default, other, team = lab.pod("default"), lab.pod("other"), lab.pod("team")
        problems = run_cases(
            default,
            [
                Case(
                    "default: exported entry is routed",
                    "http",
                    "status:200",
                    url=f"http://{PKG}/",
                    log=routed(PKG),
                ),
                Case(
                    "default: entry exported only to 'other' is not visible; ALLOW_ANY passes it",
                    "http",
                    "status:200",
                    url=f"http://{FILES}/",
                    log=LogExpect(cluster="PassthroughCluster", route="allow_any"),
                ),
            ],
        )
        problems += run_cases(
            other,
            [
                Case(
                    "other: its own namespace-private entry is routed",
                    "http",
                    "status:200",
                    url=f"http://{FILES}/",
                    log=routed(FILES),
                ),
            ],
        )
        problems += run_cases(
            team,
            [
                Case(
                    "team: Sidecar imports only ./*: exported entry hidden, block_all",
                    "http",
                    "status:502",
                    url=f"http://{PKG}/",
                    log=LogExpect(route="block_all"),
                ),
                Case("team: own entry routed", "http", "status:200", url=f"http://{TEAM}/", log=routed(TEAM)),
                Case(
                    "team: Sidecar REGISTRY_ONLY blackholes unknown TLS",
                    "http",
                    "reset",
                    url=f"https://{PKG}/",
                    log=LogExpect(cluster="BlackHoleCluster"),
                ),
            ],
        )
    assert problems == []
