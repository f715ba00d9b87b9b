"""End-to-end lab scenarios: upstream TLS from DestinationRules and the SYN-dropping upstream.

- TLS origination (MP0116): an HTTP-declared port 80 entry with ``targetPort: 443`` and a
  DR ``SIMPLE``: the app speaks plain HTTP, the origin answers over TLS with the right SNI
  (auto_sni from the Host header). Without the DR the origin's TLS port gets plaintext: 503.
- A DR ``ISTIO_MUTUAL`` on an external host (MP0109): Envoy expects a mesh certificate; the origin's
  public one fails verification: 503 after the retries (the lab origin already refuses the
  cluster-name SNI, so the failure reason is a connection failure rather than a TLS one).
- Double TLS (MP0108): a DR ``SIMPLE`` on an HTTPS entry wraps the app's own TLS again; the app's
  handshake never completes (real origins answer their plaintext 400 inside the tunnel, which the
  client reads as "wrong version number"; the lab origin waits for a request line, so the client
  times out — either way no handshake and the log shows the entry's cluster).
- A registered HTTP destination whose address silently drops SYNs (MP0203): Envoy gives up after
  ``connect_timeout`` per attempt and retries twice (default route retry policy), so the 503
  ``URX,UF`` arrives after about three connect timeouts. Shortened to 0.5 s here; the full-length
  default (10 s) is the ``slow`` test.
"""

from __future__ import annotations

import pytest

from lab.istiod.samples import destination_rule, service_entry
from tests.lab.test_scenarios_support import Case, LogExpect, config_source, run_cases

API = "api.lab.example"
SEC = "sec.lab.example"
DROP = "drop.lab.example"  # the lab internet's SYN-dropping address (lab.internet.DROP_HOST)


@pytest.mark.lab
def test_tls_origination_and_double_tls() -> None:
    from lab.runtime import Lab

    origination = [
        service_entry("api", [API], [(80, "HTTP", 443)]),
        destination_rule("api", API, tls_mode="SIMPLE"),
        service_entry("sec", [SEC], [(443, "HTTPS")]),
        destination_rule("sec", SEC, tls_mode="SIMPLE"),
    ]
    holder: list[Lab] = []
    lab = Lab(origination, mode="REGISTRY_ONLY", access_log=True, config_source=config_source(lab_ref=holder))
    holder.append(lab)
    with lab:
        pod = lab.pod()
        problems = run_cases(
            pod,
            [
                Case(
                    "DR SIMPLE on HTTP port 80 -> targetPort 443: TLS origination",
                    "http",
                    "status:200",
                    url=f"http://{API}/",
                    body_has='"scheme": "https", "sni": "api.lab.example"',
                    log=LogExpect(cluster=f"outbound|80||{API}", route="default"),
                ),
                Case(
                    "DR SIMPLE on an HTTPS entry: double TLS, no handshake",
                    "http",
                    "timeout|tls-wrong-version|reset",
                    url=f"https://{SEC}/",
                    timeout=1.5,
                    log=LogExpect(cluster=f"outbound|443||{SEC}"),
                ),
            ],
        )
        lab.apply([o for o in origination if o["kind"] == "ServiceEntry"])
        problems += run_cases(
            pod,
            [
                Case(
                    "no DR: plaintext to the origin's TLS port -> 503",
                    "http",
                    "status:503",
                    url=f"http://{API}/",
                    log=LogExpect(cluster=f"outbound|80||{API}"),
                ),
                Case(
                    "no DR: HTTPS entry passes the app's TLS through",
                    "http",
                    "status:200",
                    url=f"https://{SEC}/",
                    body_has=f'"sni": "{SEC}"',
                    log=LogExpect(cluster=f"outbound|443||{SEC}"),
                ),
            ],
        )
        entries = [o for o in origination if o["kind"] == "ServiceEntry"]
        lab.apply([*entries, destination_rule("api", API, tls_mode="ISTIO_MUTUAL")])
        problems += run_cases(
            pod,
            [
                Case(
                    "DR ISTIO_MUTUAL to an external host: mesh certificate refused, 503",
                    "http",
                    "status:503",
                    url=f"http://{API}/",
                    body_has="upstream connect error",
                    log=LogExpect(cluster=f"outbound|80||{API}", flags="URX,UF"),
                ),
            ],
        )
    assert problems == []


def _drop_lab(connect_timeout_s: float | None) -> object:
    from lab.runtime import Lab

    holder: list[Lab] = []
    objects = [service_entry("drop", [DROP], [(80, "HTTP"), (22, "TCP")])]
    lab = Lab(
        objects,
        mode="REGISTRY_ONLY",
        access_log=True,
        config_source=config_source(connect_timeout_s=connect_timeout_s, lab_ref=holder),
    )
    holder.append(lab)
    return lab


@pytest.mark.lab
def test_syn_drop_times_out_through_connect_timeout_and_retries() -> None:
    from lab.runtime import Lab

    lab = _drop_lab(0.5)
    assert isinstance(lab, Lab)
    with lab:
        problems = run_cases(
            lab.pod(),
            [
                Case(
                    "HTTP to a dropping upstream: 503 after 3 x connect_timeout",
                    "http",
                    "status:503",
                    url=f"http://{DROP}/",
                    body_has="upstream connect error",
                    took=(1.4, 3.5),
                    log=LogExpect(cluster=f"outbound|80||{DROP}", flags="URX,UF"),
                ),
                Case(
                    "TCP to a dropping upstream: closed after one connect_timeout",
                    "tcp",
                    "closed",
                    host=DROP,
                    port=22,
                    timeout=3.0,
                    took=(0.4, 2.0),
                    log=LogExpect(cluster=f"outbound|22||{DROP}", flags="UF,URX"),
                ),
            ],
        )
    assert problems == []


@pytest.mark.lab
@pytest.mark.slow
def test_syn_drop_full_default_connect_timeout() -> None:
    """Default 10 s connect timeout x 3 attempts: about 30 s before the 503
    (istio ``pkg/config/mesh/mesh.go``, ``pilot/pkg/networking/core/route/retry/retry.go``)."""
    from lab.runtime import Lab

    lab = _drop_lab(None)
    assert isinstance(lab, Lab)
    with lab:
        problems = run_cases(
            lab.pod(),
            [
                Case(
                    "HTTP to a dropping upstream, default connect timeout",
                    "http",
                    "status:503",
                    url=f"http://{DROP}/",
                    timeout=45.0,
                    took=(29.0, 40.0),
                    python=False,
                    log=LogExpect(cluster=f"outbound|80||{DROP}", flags="URX,UF"),
                ),
            ],
        )
    assert problems == []
