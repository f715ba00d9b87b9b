"""Where a lab pod's sidecar config comes from: a ``ConfigSource`` maps (objects, pod, mesh, mode)
to (listeners, clusters, DNS table). The default is the lab's config generator; the hand-written
catch-all keeps the runtime's own tests independent of it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lab.handwritten import blackhole_config
from lab.pod import PodSpec

ConfigOut = tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, tuple[str, ...]]]
ConfigSource = Callable[[Sequence[Mapping[str, Any]], PodSpec, Mapping[str, Any], "str | None"], ConfigOut]


class LabStartError(RuntimeError):
    """The lab could not be built (the CLI turns it into diag.errors.LabError)."""


def istiod_source(
    objects: Sequence[Mapping[str, Any]],
    spec: PodSpec,
    mesh: Mapping[str, Any],
    mode: str | None,
    *,
    ca_file: str | None = None,
    pod_ips: tuple[str, ...] = (),
    mesh_ca_file: str | None = None,
    cert_chain_file: str | None = None,
    private_key_file: str | None = None,
) -> ConfigOut:
    """The default: the lab's config generator (``lab.istiod.generate``). ``Lab`` passes the run's CA file
    (what origination DestinationRules without ``caCertificates`` verify against), the pod's
    own address, the mesh root and the pod's workload certificate (ISTIO_MUTUAL)."""
    from lab.istiod import PodView, generate

    view = PodView(
        namespace=spec.namespace,
        labels=dict(spec.labels),
        dns_capture=spec.captures_dns,
        mesh=dict(mesh),
        mode_override=mode,
        ca_file=ca_file,
        pod_ips=pod_ips,
        mesh_ca_file=mesh_ca_file,
        cert_chain_file=cert_chain_file,
        private_key_file=private_key_file,
    )
    out = generate(objects, view)
    return out.listeners, out.clusters, dict(out.dns)


def handwritten_source(
    objects: Sequence[Mapping[str, Any]], spec: PodSpec, mesh: Mapping[str, Any], mode: str | None
) -> ConfigOut:
    """Catch-all only (no generator): REGISTRY_ONLY unless ``mode``/mesh say ALLOW_ANY."""
    effective = mode or (mesh.get("outboundTrafficPolicy") or {}).get("mode") or "ALLOW_ANY"
    listeners, clusters = blackhole_config(effective)
    return listeners, clusters, {}
