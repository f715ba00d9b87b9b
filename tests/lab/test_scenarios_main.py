"""End-to-end lab scenario "main": registered and unknown hosts, from every angle a client can call
them. HTTP/1.0 never gets Envoy's 426 (blackholed under REGISTRY_ONLY, passed through under
ALLOW_ANY): pilot's HTTP chain matches ALPN ``http/1.1`` and ``h2c`` only, unless ``PILOT_HTTP10``
is set (istio ``pilot/pkg/networking/core/listener.go``).

One lab: REGISTRY_ONLY first, then the same objects under ALLOW_ANY (``Lab.apply``). Each case is
made by curl and by a Python client (httpx / sockets) from the pod; the Envoy access log names the
cluster or route that handled it.
"""

from __future__ import annotations

import pytest

from lab.istiod.samples import service_entry
from tests.lab.test_scenarios_support import Case, LogExpect, config_source, run_cases

PKG = "pkg.lab.example"
OTHER = "other.lab.example"
GIT = "git.lab.example"
WRONG = "http-on-443.lab.example"
SSH = "ssh.lab.example"
SSH_OTHER = "ssh-other.lab.example"
DEAD = "dead.lab.example"
GHOST = "ghost.lab.example"
BLACKHOLE = LogExpect(cluster="BlackHoleCluster", flags="UH")


def main_objects(run: object) -> list[dict[str, object]]:
    from lab.names import RunNames

    names = run if isinstance(run, RunNames) else RunNames(str(run))
    ssh_address = f"10.{names.second_octet}.3.200"
    return [
        service_entry("pkg", [PKG], [(80, "HTTP"), (443, "TLS")]),
        service_entry("git", [GIT], [(443, "HTTPS")], resolution="NONE"),
        service_entry("wrong", [WRONG], [(443, "HTTP")]),
        service_entry("ssh", [SSH], [(22, "TCP")], addresses=[ssh_address], resolution="NONE"),
        # STATIC endpoint on a port nothing listens on: the origin refuses.
        service_entry(
            "dead",
            [DEAD],
            [(8080, "HTTP")],
            resolution="STATIC",
            endpoints=[{"address": names.dns_address, "ports": {"p8080": 8099}}],
        ),
        # The lab's resolver by address (the kube-dns stand-in): DNS over TCP is captured too.
        # (a wildcard host, so the lab internet does not also serve it as an origin)
        service_entry(
            "kube-dns", ["*.dns.lab.example"], [(53, "TCP")], addresses=[names.dns_address], resolution="NONE"
        ),
        # DNS endpoint that does not resolve: Envoy's cluster has no hosts.
        service_entry(
            "ghost",
            [GHOST],
            [(80, "HTTP"), (443, "TLS")],
            endpoints=[{"address": "ghost.nxdomain.lab.example"}],
        ),
    ]


def registry_only_cases(other_ip: str, pkg_ip: str, dns_ip: str) -> list[Case]:
    return [
        Case(
            "registered HTTP, the origin's own 404 is relayed",
            "http",
            "status:404",
            url=f"http://{PKG}/status/404",
            log=LogExpect(cluster=f"outbound|80||{PKG}", route="default", code="404", flags="-"),
        ),
        Case(
            "DNS over UDP is not captured",
            "dns",
            "answer",
            host=dns_ip,
            port=53,
            sni=PKG,
            send="udp",
            body_has=pkg_ip,
            curl=False,
        ),
        Case(
            "DNS over TCP goes through the sidecar (resolver entry by address)",
            "dns",
            "answer",
            host=dns_ip,
            port=53,
            sni=PKG,
            body_has=pkg_ip,
            curl=False,
            log=LogExpect(cluster="outbound|53||*.dns.lab.example"),
        ),
        Case(
            "registered HTTP",
            "http",
            "status:200",
            url=f"http://{PKG}/",
            log=LogExpect(cluster=f"outbound|80||{PKG}", route="default"),
        ),
        Case(
            "unregistered HTTP -> block_all 502",
            "http",
            "status:502",
            url=f"http://{OTHER}/",
            log=LogExpect(route="block_all", code="502"),
        ),
        Case(
            "unregistered HTTP by IP -> block_all 502",
            "http",
            "status:502",
            url=f"http://{other_ip}/",
            log=LogExpect(route="block_all", code="502"),
        ),
        Case(
            "unregistered HTTP on a port no entry uses",
            "http",
            "reset",
            url=f"http://{OTHER}:8081/",
            log=BLACKHOLE,
        ),
        Case(
            "registered HTTP, upstream refuses",
            "http",
            "status:503",
            url=f"http://{DEAD}:8080/",
            body_has="upstream connect error",
            log=LogExpect(cluster=f"outbound|8080||{DEAD}", flags="URX,UF"),
        ),
        Case(
            "registered HTTP, Envoy cannot resolve",
            "http",
            "status:503",
            url=f"http://{GHOST}/",
            body_has="no healthy upstream",
            log=LogExpect(cluster=f"outbound|80||{GHOST}", flags="UH"),
        ),
        Case(
            "registered HTTPS (DNS)",
            "http",
            "status:200",
            url=f"https://{PKG}/",
            body_has=f'"sni": "{PKG}"',
            log=LogExpect(cluster=f"outbound|443||{PKG}"),
        ),
        Case(
            "registered HTTPS (NONE)",
            "http",
            "status:200",
            url=f"https://{GIT}/",
            body_has=f'"sni": "{GIT}"',
            log=LogExpect(cluster=f"outbound|443||{GIT}"),
        ),
        Case("unregistered HTTPS", "http", "reset", url=f"https://{OTHER}/", log=BLACKHOLE),
        Case("TLS without SNI", "tls", "reset", host=other_ip, port=443, log=BLACKHOLE),
        Case(
            "wrong protocol: TLS to an HTTP-declared 443",
            "http",
            "reset",
            url=f"https://{WRONG}/",
            log=BLACKHOLE,
        ),
        Case(
            "wrong protocol: plain HTTP to an HTTP-declared 443 (TLS origin)",
            "http",
            "status:503",
            url=f"http://{WRONG}:443/",
            log=LogExpect(cluster=f"outbound|443||{WRONG}"),
        ),
        Case(
            "registered TLS, Envoy cannot resolve",
            "tls",
            "reset",
            host=GHOST,
            port=443,
            sni=GHOST,
            log=LogExpect(cluster=f"outbound|443||{GHOST}", flags="UH"),
        ),
        Case(
            "TCP 22 listed in addresses",
            "tcp",
            "banner",
            host=SSH,
            port=22,
            body_has=SSH,
            timeout=1.0,
            log=LogExpect(cluster=f"outbound|22||{SSH}"),
        ),
        Case("TCP 22 not registered", "tcp", "closed", host=SSH_OTHER, port=22, timeout=1.0, log=BLACKHOLE),
        Case(
            "non-HTTP bytes to :80",
            "tcp",
            "reset",
            host=OTHER,
            port=80,
            send="\x01\x02not http\r\n\r\n",
            curl=False,
            log=BLACKHOLE,
        ),
        Case(
            "server-first protocol on sniffed :80 waits (protocolDetectionTimeout 0)",
            "tcp",
            "timeout",
            host="server-first.lab.example",
            port=80,
            timeout=1.0,
        ),
        Case(
            "HTTP/1.0 to a registered host is blackholed, not 426 (curl)",
            "http",
            "reset",
            url=f"http://{PKG}/",
            curl_extra=("--http1.0",),
            python=False,
            log=BLACKHOLE,
        ),
        Case(
            "HTTP/1.0 to a registered host is blackholed, not 426 (python)",
            "tcp",
            "reset",
            host=PKG,
            port=80,
            send=f"GET / HTTP/1.0\r\nHost: {PKG}\r\n\r\n",
            curl=False,
            log=BLACKHOLE,
        ),
        Case("host does not resolve", "http", "nxdomain", url="http://nx.lab.example/"),
    ]


def allow_any_cases(other_ip: str) -> list[Case]:
    passthrough = LogExpect(cluster="PassthroughCluster")
    return [
        Case(
            "ALLOW_ANY: registered HTTP",
            "http",
            "status:200",
            url=f"http://{PKG}/",
            log=LogExpect(cluster=f"outbound|80||{PKG}", route="default"),
        ),
        Case(
            "ALLOW_ANY: unregistered HTTP -> allow_any",
            "http",
            "status:200",
            url=f"http://{OTHER}/",
            body_has=OTHER,
            log=LogExpect(cluster="PassthroughCluster", route="allow_any"),
        ),
        Case(
            "ALLOW_ANY: unregistered HTTPS passes through",
            "http",
            "status:200",
            url=f"https://{OTHER}/",
            body_has=f'"sni": "{OTHER}"',
            log=passthrough,
        ),
        Case(
            "ALLOW_ANY: TLS without SNI passes through",
            "tls",
            "handshake",
            host=other_ip,
            port=443,
            log=passthrough,
        ),
        Case(
            "ALLOW_ANY: wrong protocol works but bypasses the entry",
            "http",
            "status:200",
            url=f"https://{WRONG}/",
            log=passthrough,
        ),
        Case(
            "ALLOW_ANY: unregistered TCP 22 reaches the host dialled",
            "tcp",
            "banner",
            host=SSH_OTHER,
            port=22,
            body_has=SSH_OTHER,
            timeout=1.0,
            log=passthrough,
        ),
        Case(
            "ALLOW_ANY: HTTP/1.0 passes through as TCP",
            "http",
            "status:200",
            url=f"http://{PKG}/",
            curl_extra=("--http1.0",),
            python=False,
            log=passthrough,
        ),
    ]


@pytest.mark.lab
def test_main_scenario_registry_only_then_allow_any() -> None:
    from lab.names import RunNames, new_run_id
    from lab.runtime import Lab

    names = RunNames(new_run_id())
    holder: list[Lab] = []
    lab = Lab(
        main_objects(names),
        mode="REGISTRY_ONLY",
        internet=[OTHER, SSH_OTHER],
        access_log=True,
        run_id=names.run_id,
        config_source=config_source(lab_ref=holder),
    )
    holder.append(lab)
    with lab:
        pod = lab.pod()
        other_ip = lab.address_of(OTHER)
        problems = run_cases(pod, registry_only_cases(other_ip, lab.address_of(PKG), lab.dns_address))
        lab.apply(mode="ALLOW_ANY")
        problems += run_cases(pod, allow_any_cases(other_ip))
    assert problems == []
