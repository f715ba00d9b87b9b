"""The live-path matcher on the lab generator's output (``lab.istiod.generate``, written
independently from ``diag.predict.sidecar``): for a matrix of calls, modes and DNS capture, Envoy's choice
read by ``diag.live.path`` agrees with ``diag.predict.sidecar``. A disagreement names a bug in one of the
three; auto-allocated VIP values differ between generator and model, so each side dials its own
DNS answer."""

from __future__ import annotations

import pytest
import yaml

from diag.live import path as livepath
from diag.model.loader import load_text
from diag.model.snapshot import Snapshot
from diag.predict import sidecar as predict
from lab.istiod import PodView, generate

CONFIG = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: pkg, namespace: apps}
spec:
  hosts: [pkg.lab.example]
  ports: [{number: 443, name: https, protocol: HTTPS}]
  resolution: DNS
  exportTo: ["other"]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web, namespace: apps}
spec:
  hosts: [web.lab.example]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ssh, namespace: apps}
spec:
  hosts: [github.com]
  ports: [{number: 22, name: ssh, protocol: TCP}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: apps}
spec:
  hosts: [db.example.net]
  addresses: [203.0.113.9]
  ports: [{number: 5432, name: pg, protocol: TCP}]
  resolution: NONE
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: wild, namespace: apps}
spec:
  hosts: ["*.wild.example"]
  ports: [{number: 443, name: tls, protocol: TLS}, {number: 80, name: http, protocol: HTTP}]
  resolution: NONE
"""

CALLS = [
    ("pkg.lab.example", 443, "https", "198.51.100.1"),
    ("web.lab.example", 80, "http", "198.51.100.2"),
    ("web.lab.example", 443, "https", "198.51.100.2"),
    ("nope.example", 443, "https", "198.51.100.3"),
    ("nope.example", 80, "http", "198.51.100.3"),
    ("gitlab.example", 22, "tcp", "198.51.100.4"),
    ("github.com", 22, "tcp", "198.51.100.5"),
    ("db.example.net", 5432, "tcp", "203.0.113.9"),
    ("db.example.net", 5432, "tcp", "203.0.113.10"),
    ("a.wild.example", 443, "tls", "198.51.100.6"),
    ("wild.example", 443, "tls", "198.51.100.6"),
    ("a.wild.example", 80, "http", "198.51.100.6"),
]


@pytest.mark.parametrize("dns_capture", [False, True])
@pytest.mark.parametrize("mode", ["REGISTRY_ONLY", "ALLOW_ANY"])
def test_matcher_on_generated_config_agrees_with_prediction(mode: str, dns_capture: bool) -> None:
    generated = generate(
        list(yaml.safe_load_all(CONFIG)),
        PodView(namespace="apps", mode_override=mode, dns_capture=dns_capture),
    )
    snapshot = Snapshot.build(load_text(CONFIG).objects)
    source = predict.Source(namespace="apps", mode_override=mode, dns_capture=dns_capture)
    assert livepath.effective_mode(generated) == mode
    disagreements = []
    for host, port, protocol, address in CALLS:
        model_dns = predict.dns_answer(snapshot, source, host) if dns_capture else None
        lab_dns = generated.dns.get(host) if dns_capture else None
        model_call = predict.Call(
            host=host, port=port, protocol=protocol, address=(model_dns or (address,))[0]
        )
        lab_call = predict.Call(host=host, port=port, protocol=protocol, address=(lab_dns or (address,))[0])
        live = livepath.match(generated, lab_call)
        predicted = predict.predict(snapshot, source, model_call)
        same_listener = live.listener == predicted.path.listener or bool(model_dns and lab_dns)
        if (live.envoy, live.filter_chain) != (
            predicted.envoy,
            predicted.path.filter_chain,
        ) or not same_listener:
            disagreements.append(
                (host, port, protocol, live.listener, live.envoy, predicted.path.listener, predicted.envoy)
            )
    assert disagreements == []
