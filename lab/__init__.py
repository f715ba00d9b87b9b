"""The lab: an Istio-like mesh on one Linux host (network namespaces, Istio's iptables capture,
a real Envoy as the sidecar, an "internet" namespace), for tests and `meshprobe demo` (SPEC §10)."""

from __future__ import annotations
