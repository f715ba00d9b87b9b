"""Top level of the generator: objects + pod → :class:`lab.istiod.GeneratedConfig`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lab.istiod import GeneratedConfig, PodView
from lab.istiod.catchall import catchall_clusters, virtual_outbound_listener
from lab.istiod.resources import parse_objects


def build_config(objects: Sequence[Mapping[str, Any]], pod: PodView) -> GeneratedConfig:
    parsed = parse_objects(objects)
    mode = pod.mode_override or str((pod.mesh.get("outboundTrafficPolicy") or {}).get("mode") or "ALLOW_ANY")
    timeout = pod.connect_timeout_s if pod.connect_timeout_s is not None else 10.0
    notes = tuple(f"{p.ref}: {p.message}" for p in parsed.problems)
    return GeneratedConfig(
        listeners=[virtual_outbound_listener(mode, None)],
        clusters=catchall_clusters(timeout),
        dns={},
        notes=notes,
        mode=mode,
        mode_from="mesh",
    )
