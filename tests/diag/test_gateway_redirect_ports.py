"""The gateway hop's httpsRedirect (a plaintext server's virtual hosts require TLS: a 301), an
HTTP-port server read as plaintext whatever its tls block, and the port translation of a gateway
exposed by a ServiceEntry endpoint at the proxy's address (`endpoint_ports`)."""

from __future__ import annotations

from diag.model.loader import load_text
from diag.model.snapshot import Snapshot
from diag.predict.gateway_workload import endpoint_ports
from tests.diag.test_gateway_predict import hop_for

SERVER_HOSTS = (
    "    hosts: [api.example.com]\n---",
    "    hosts: [api.example.com]\n    tls: {httpsRedirect: true}\n---",
)


def test_https_redirect_server_answers_a_plaintext_request_with_a_redirect() -> None:
    hop = hop_for("http.yaml", SERVER_HOSTS)
    assert hop is not None
    assert (hop.reason, hop.verdict, hop.listener, hop.route, hop.vhost) == (
        "tls-redirect",
        "blocked",
        "0.0.0.0_8080",
        "http.8080",
        "api.example.com:80",
    )
    assert (hop.signature, hop.origin, hop.server_tls) == ("HTTP_STATUS", "via-route", "")


def test_redirect_applies_to_a_server_host_no_virtual_service_covers() -> None:
    hop = hop_for(
        "http.yaml",
        (
            "    hosts: [api.example.com]\n---",
            "    hosts: [api.example.com, other.example.com]\n    tls: {httpsRedirect: true}\n---",
        ),
        (
            "- match: [{gateways: [istio-system/egress], port: 80}]",
            "- match: [{gateways: [istio-system/egress], port: 81}]",
        ),
    )
    assert hop is not None and hop.reason == "tls-redirect"


def test_a_tls_block_on_an_http_port_is_not_a_tls_server() -> None:
    hop = hop_for(
        "http.yaml",
        ("    hosts: [api.example.com]\n---", "    hosts: [api.example.com]\n    tls: {mode: SIMPLE}\n---"),
    )
    assert hop is not None
    assert (hop.reason, hop.server_tls, hop.cluster) == ("", "", "outbound|80||api.example.com")


ENTRIES = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: labelled
  namespace: istio-system
  labels: {experimental.istio.io/disable-gateway-port-translation: "true"}
spec:
  hosts: [a.example.com]
  ports: [{number: 80, targetPort: 8081, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 1.1.1.1}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: exposing, namespace: istio-system}
spec:
  hosts: [b.example.com]
  ports:
  - {number: 80, targetPort: 8080, name: http, protocol: HTTP}
  - {number: 443, targetPort: 8443, name: https, protocol: HTTPS}
  - {number: 15021, name: status, protocol: HTTP}
  resolution: STATIC
  endpoints: [{address: 1.1.1.1, ports: {https: 9443}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: elsewhere, namespace: istio-system}
spec:
  hosts: [c.example.com]
  ports: [{number: 90, targetPort: 9090, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 2.2.2.2}]
"""


def test_endpoint_ports_translate_through_entries_at_the_proxy_address() -> None:
    loaded = load_text(ENTRIES, "entries.yaml")
    assert not [p for p in loaded.problems if p.level == "error"], loaded.problems
    snap = Snapshot.build(loaded.objects, loaded.mesh)
    # the labelled entry opts out; the endpoint's own port wins over targetPort; no targetPort: as is
    assert endpoint_ports(snap, ("1.1.1.1",)) == {80: 8080, 443: 9443, 15021: 15021}
    assert endpoint_ports(snap, ("2.2.2.2",)) == {90: 9090}
    assert endpoint_ports(snap, ("3.3.3.3",)) == {}
