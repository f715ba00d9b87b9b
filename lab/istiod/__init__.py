"""istiod in miniature: the lab's config generator (docs/lab-config.md).

Turns raw Kubernetes/Istio objects (dicts, as ``kubectl get -o yaml`` gives them: ServiceEntry,
Service, EndpointSlice, Sidecar, DestinationRule, VirtualService HTTP routes, Namespace) into the
Envoy v3 listeners and clusters pilot would push to one sidecar, with pilot's names, plus the table
the agent's DNS proxy would answer from. Written independently of ``diag/``'s visibility, matching and
prediction logic so the lab can check them (why: docs/vectors.md).

Public API (stable; the lab runtime and the vector tests depend on it):

- :class:`PodView` — the proxy the config is generated for (namespace, labels, DNS capture, mesh).
- :class:`GeneratedConfig` — listeners, clusters (static; EDS flattened), DNS table, notes.
- :func:`generate` — ``generate(objects, pod) -> GeneratedConfig``.
- :class:`GatewayView` / :func:`generate_gateway` — the same for a gateway proxy (an egress
  gateway): Gateway servers, VirtualServices bound to it, AuthorizationPolicies as RBAC filters.
- :class:`InternetHost` / :func:`internet_hosts` — what the lab internet must serve.

Routes are inlined in each HTTP connection manager (``route_config``), never RDS. Each
generation rule cites the pilot source it follows (see ``docs/lab-config.md``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lab.istiod.views import (
    DEFAULT_CONNECT_TIMEOUT_S,
    GatewayView,
    GeneratedConfig,
    InternetHost,
    InternetPort,
    PodView,
)


def generate(objects: Sequence[Mapping[str, Any]], pod: PodView) -> GeneratedConfig:
    """Generate the sidecar config istiod would push to ``pod`` for these objects.

    Objects of kinds the generator does not model are ignored (and named in ``notes``).
    Malformed objects are skipped with a note, never raised on.
    """
    from lab.istiod.build import build_config

    return build_config(objects, pod)


def generate_gateway(objects: Sequence[Mapping[str, Any]], gw: GatewayView) -> GeneratedConfig:
    """Generate the config istiod would push to the gateway proxy ``gw`` (``dns`` is empty).

    Unmodelled kinds and settings are named in ``notes``; malformed objects are skipped with a note.
    """
    from lab.istiod.gateway import build_gateway_config

    return build_gateway_config(objects, gw)


def internet_hosts(objects: Sequence[Mapping[str, Any]]) -> list[InternetHost]:
    """The non-wildcard hosts named by ServiceEntries (and ExternalName Services) with the ports
    and protocols the config declares for them, sorted by host."""
    from lab.istiod.internet import hosts_from_objects

    return hosts_from_objects(objects)


__all__ = [
    "DEFAULT_CONNECT_TIMEOUT_S",
    "GatewayView",
    "GeneratedConfig",
    "InternetHost",
    "InternetPort",
    "PodView",
    "generate",
    "generate_gateway",
    "internet_hosts",
]
