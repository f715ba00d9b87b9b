"""The lab: an Istio-like mesh on one Linux host (network namespaces, Istio's iptables capture,
a real Envoy as the sidecar, an "internet" namespace), for tests and `meshprobe demo` (docs/lab.md).

``lab.Lab`` (in ``lab.runtime``; its docstring is the API) and ``lab.PodSpec`` are imported lazily
so that ``import lab.istiod`` stays light.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Lab", "PodSpec"]


def __getattr__(name: str) -> Any:
    if name == "Lab":
        from lab.runtime import Lab

        return Lab
    if name == "PodSpec":
        from lab.pod import PodSpec

        return PodSpec
    raise AttributeError(name)
