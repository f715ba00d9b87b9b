"""End-to-end lab scenarios: shared ports and DNS capture (docs/codes/MP0107.md).

- A TCP entry without ``addresses`` (resolution DNS) owns ``0.0.0.0:22``: every port-22 connection
  goes to that entry's host, whatever address the client dialled.
- With resolution NONE the same entry lets any port-22 destination through, even in REGISTRY_ONLY.
- A pod with DNS capture resolves the DNS entry to its auto-allocated VIP and the listener binds
  that VIP: the capture disappears. It never does for NONE.
- Plain HTTP and the HTTP service on port 80: without any visible HTTP service on 80 unknown HTTP
  is reset by the catch-all (not 502); an unnamed Kubernetes port binds its ClusterIP and changes
  nothing; an ``http``-named one makes ``0.0.0.0_80`` and brings back ``block_all``.
"""

from __future__ import annotations

import pytest

from lab.istiod.samples import kube_service, service_entry
from tests.lab.test_scenarios_support import Case, LogExpect, config_source, run_cases

GIT = "git.lab.example"
ELSEWHERE = "elsewhere.lab.example"
OTHER = "other.lab.example"


def _pods(lab: object) -> tuple[object, object]:
    from lab.runtime import Lab

    assert isinstance(lab, Lab)
    return lab.pod("default", "probe"), lab.pod("default", "dns", dns_capture=True)


@pytest.mark.lab
def test_tcp_entry_without_addresses_captures_port_and_dns_capture_removes_it() -> None:
    from lab.runtime import Lab

    holder: list[Lab] = []
    dns_entry = [service_entry("git-ssh", [GIT], [(22, "TCP")], resolution="DNS")]
    none_entry = [service_entry("git-ssh", [GIT], [(22, "TCP")], resolution="NONE")]
    lab = Lab(
        dns_entry,
        mode="REGISTRY_ONLY",
        internet=[ELSEWHERE],
        access_log=True,
        config_source=config_source(lab_ref=holder),
    )
    holder.append(lab)
    git_cluster = LogExpect(cluster=f"outbound|22||{GIT}")
    with lab:
        plain, capture = _pods(lab)
        problems = run_cases(
            plain,
            [
                Case(
                    "DNS entry, no capture: own host",
                    "tcp",
                    "banner",
                    host=GIT,
                    port=22,
                    body_has=GIT,
                    timeout=1.0,
                    log=git_cluster,
                ),
                Case(
                    "DNS entry, no capture: any host on :22 goes to the entry's host",
                    "tcp",
                    "banner",
                    host=ELSEWHERE,
                    port=22,
                    body_has=GIT,
                    timeout=1.0,
                    log=git_cluster,
                ),
            ],
        )
        problems += run_cases(
            capture,
            [
                Case(
                    "DNS entry, DNS capture: the entry's VIP",
                    "tcp",
                    "banner",
                    host=GIT,
                    port=22,
                    body_has=GIT,
                    timeout=1.0,
                    log=git_cluster,
                ),
                Case(
                    "DNS entry, DNS capture: other hosts on :22 are no longer captured",
                    "tcp",
                    "closed",
                    host=ELSEWHERE,
                    port=22,
                    timeout=1.0,
                    log=LogExpect(cluster="BlackHoleCluster"),
                ),
            ],
        )
        # Keep git.lab.example in every apply: the lab internet re-adds a removed host's address.
        auto_entry = [*dns_entry, service_entry("auto", ["auto.lab.example"], [(80, "")])]
        lab.apply(auto_entry)
        problems += run_cases(
            plain,
            [
                Case(
                    "unset protocol, no VIP: plain HTTP still routed by Host (block_all)",
                    "http",
                    "status:502",
                    url=f"http://{ELSEWHERE}/",
                    log=LogExpect(route="block_all"),
                ),
                Case(
                    "unset protocol, no VIP: the entry's own host is routed",
                    "http",
                    "status:200",
                    url="http://auto.lab.example/",
                    log=LogExpect(cluster="outbound|80||auto.lab.example", route="default"),
                ),
                Case(
                    "unset protocol, no VIP: non-HTTP on :80 is captured by the entry's host",
                    "tcp",
                    "banner",
                    body_has="auto.lab.example",
                    host=ELSEWHERE,
                    port=80,
                    send="\x01\x02 not http\r\n\r\n",
                    curl=False,
                    timeout=1.0,
                    log=LogExpect(cluster="outbound|80||auto.lab.example"),
                ),
            ],
        )
        lab.apply(none_entry)
        problems += run_cases(
            plain,
            [
                Case(
                    "NONE entry: any :22 destination passes, even REGISTRY_ONLY",
                    "tcp",
                    "banner",
                    host=ELSEWHERE,
                    port=22,
                    body_has=ELSEWHERE,
                    timeout=1.0,
                    log=git_cluster,
                ),
            ],
        )
        problems += run_cases(
            capture,
            [
                Case(
                    "NONE entry, DNS capture: still captured (no VIP for NONE)",
                    "tcp",
                    "banner",
                    host=ELSEWHERE,
                    port=22,
                    body_has=ELSEWHERE,
                    timeout=1.0,
                    log=git_cluster,
                ),
            ],
        )
    assert problems == []


@pytest.mark.lab
def test_http_on_port_80_with_and_without_an_http_service() -> None:
    from lab.runtime import Lab

    holder: list[Lab] = []
    unnamed = [
        kube_service("db", [{"port": 80}], cluster_ip="10.96.0.10"),
        service_entry("tls", ["tls.lab.example"], [(443, "TLS")]),
    ]
    named = [*unnamed, kube_service("web", [{"port": 80, "name": "http"}], cluster_ip="10.96.0.11")]
    lab = Lab(
        unnamed,
        mode="REGISTRY_ONLY",
        internet=[OTHER],
        access_log=True,
        config_source=config_source(lab_ref=holder),
    )
    holder.append(lab)
    with lab:
        pod = lab.pod()
        problems = run_cases(
            pod,
            [
                Case(
                    "no HTTP service on 80: unknown HTTP is reset by the catch-all",
                    "http",
                    "reset",
                    url=f"http://{OTHER}/",
                    log=LogExpect(cluster="BlackHoleCluster", flags="UH"),
                ),
            ],
        )
        lab.apply(named)
        problems += run_cases(
            pod,
            [
                Case(
                    "an http-named Service port makes 0.0.0.0_80: block_all 502",
                    "http",
                    "status:502",
                    url=f"http://{OTHER}/",
                    log=LogExpect(route="block_all"),
                ),
            ],
        )
    assert problems == []


@pytest.mark.lab
def test_dns_capture_answers_vips_and_binds_them() -> None:
    """The agent's DNS answers the auto-allocated VIP; plain-HTTP and TLS reach the entry through it."""
    from lab.runtime import Lab

    holder: list[Lab] = []
    objects = [service_entry("pkg", ["pkg.lab.example"], [(443, "TLS"), (8443, "TLS")])]
    lab = Lab(objects, mode="REGISTRY_ONLY", access_log=True, config_source=config_source(lab_ref=holder))
    holder.append(lab)
    with lab:
        plain, capture = _pods(lab)
        resolved = capture.exec(["getent", "ahostsv4", "pkg.lab.example"], timeout=10)
        assert resolved.stdout.split()[:1] == ["240.240.0.1"], resolved
        not_resolved = plain.exec(["getent", "ahostsv4", "pkg.lab.example"], timeout=10)
        assert not not_resolved.stdout.startswith("240.240."), not_resolved
        problems = run_cases(
            capture,
            [
                Case(
                    "TLS through the VIP-bound listener",
                    "http",
                    "status:200",
                    url="https://pkg.lab.example/",
                    body_has='"sni": "pkg.lab.example"',
                    log=LogExpect(cluster="outbound|443||pkg.lab.example"),
                ),
            ],
        )
    assert problems == []
