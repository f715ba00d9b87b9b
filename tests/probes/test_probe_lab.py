"""`python -m probes` inside a lab pod, behind a real Envoy with Istio's capture rules (REGISTRY_ONLY):
the signatures docs/signatures.md names for blocked traffic, `captured` connects, and the sidecar's own
evidence read by `--sidecar auto` (detection, readiness, filtered config_dump)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from lab.istiod.samples import service_entry

ROOT = Path(__file__).resolve().parents[2]
PKG = "pkg.lab.example"
OTHER = "other.lab.example"

pytestmark = pytest.mark.lab


def test_probe_in_a_lab_pod_sees_what_the_sidecar_does() -> None:
    from lab import Lab

    objects = [service_entry("pkg", [PKG], [(80, "HTTP"), (443, "TLS")])]
    with Lab(objects, mode="REGISTRY_ONLY", internet=[OTHER]) as lab:
        pod = lab.pod("default")
        proc = pod.exec(
            [sys.executable, "-m", "probes", "--timeout", "3", "--compact",
             f"http://{PKG}/", f"https://{PKG}/", f"http://{OTHER}/", f"https://{OTHER}/", "nx.lab.example"],
            env={"PYTHONPATH": str(ROOT)}, timeout=60,
        )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    by_target = {r["target"]["raw"]: r for r in report["results"]}
    registered_http = by_target[f"http://{PKG}/"]
    assert registered_http["signature"] == "OK" and registered_http["origin"] == "via-route"
    assert registered_http["http"]["upstream_service_time"] is not None
    assert registered_http["tcp"]["captured"] is True and "sidecar" in registered_http["tcp"]["note"]
    registered_https = by_target[f"https://{PKG}/"]
    assert registered_https["signature"] == "OK" and registered_https["origin"] == "end-to-end-tls"
    assert registered_https["tls"]["verified"] and f"DNS:{PKG}" in registered_https["tls"]["peer_sans"]
    blocked_http = by_target[f"http://{OTHER}/"]
    assert blocked_http["signature"] == "ENVOY_BLACKHOLE_502" and blocked_http["origin"] == "local-sidecar"
    assert blocked_http["http"]["envoy_reason"] == "block_all"
    blocked_https = by_target[f"https://{OTHER}/"]
    assert blocked_https["signature"] == "RESET_BEFORE_RESPONSE", blocked_https["error_class"]
    assert blocked_https["tcp"]["captured"] is True
    assert by_target["nx.lab.example"]["signature"] == "DNS_NXDOMAIN"
    sidecar = report["sidecar"]
    assert sidecar["present"] and sidecar["ready"] and sidecar["config"]
    assert not sidecar["quit_requested"]


def test_a_tcp_target_the_sidecar_cannot_reach_is_not_ok() -> None:
    """ALLOW_ANY passes tcp://ADDRESS:5432 through to an address the lab internet drops: Envoy
    accepts the connection and keeps dialling, so nothing comes back. That was reported ✓ OK
    "silent"; a connect accepted by the sidecar proves nothing, so it is READ_TIMEOUT now (and a
    blackholed one under REGISTRY_ONLY is closed by the sidecar)."""
    from lab import Lab

    with Lab([], mode="ALLOW_ANY", drain_seconds=0.1) as lab:
        pod = lab.pod("default")
        dropped = f"tcp://{lab.drop_address}:5432"
        proc = pod.exec(
            [sys.executable, "-m", "probes", "--timeout", "2", "--compact", dropped],
            env={"PYTHONPATH": str(ROOT)}, timeout=60,
        )  # fmt: skip
        (result,) = json.loads(proc.stdout)["results"]
        assert result["tcp"]["captured"] is True
        assert result["signature"] == "READ_TIMEOUT" and result["tcp"]["silent"] is True, result
        assert proc.returncode == 1
        lab.apply([], mode="REGISTRY_ONLY")
        proc = pod.exec(
            [sys.executable, "-m", "probes", "--timeout", "2", "--compact", dropped],
            env={"PYTHONPATH": str(ROOT)}, timeout=60,
        )  # fmt: skip
        (result,) = json.loads(proc.stdout)["results"]
        assert result["signature"] == "TCP_CLOSED_AFTER_CONNECT", result
