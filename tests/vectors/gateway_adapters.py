"""Vector cases on a gateway proxy (``proxy.type: router``) through the predict and generated paths.

- generated: ``lab.istiod.generate_gateway(objects, GatewayView)`` read by ``diag.live.path.match``
  (a gateway listener binds ``0.0.0.0:<port>`` without original-destination matching, so the call's
  port picks it);
- predict: ``diag.predict.gateway.predict_gateway(snapshot, GatewayWorkload, Call, Source,
  cluster=...)``. That API follows a sidecar's call to a gateway Service port; a vector calls a
  gateway *listener* port. The adapter asks the prediction once per server port of the Gateways
  selecting the proxy and keeps the answer whose predicted listener is the called port (the
  prediction's own port translation decides); none: the prediction has no listener there.

``OBSERVABLE`` says which expectation fields each path sees on a gateway.
"""

from __future__ import annotations

from typing import Any

from tests.vectors import adapters
from tests.vectors.outcome import Observed
from tests.vectors.vector_format import VectorCall, VectorCase

OBSERVABLE = {
    # GatewayHop: listener, filter chain, route config, vhost, cluster and a failure reason; it has
    # no route name and no local status.
    "predict": frozenset({"listener", "filter_chain", "route_config", "vhost", "cluster", "error"}),
    "generated": adapters.OBSERVABLE["generated"],
}

HOP_ERRORS = {
    "": "none",
    "no-server": "no_listener",
    "no-vhost": "no_virtual_host",
    "no-route": "no_route",
    "no-filter-chain": "no_filter_chain",
    "tls-redirect": "tls_redirect",
    # a route to a cluster the gateway lacks, or one without endpoints, is still a matched route
    # (Istio's simulator reports the cluster, not an error)
    "no-cluster": "none",
    "no-endpoints": "none",
}
"""``GatewayHop.reason`` in Istio's error vocabulary (others are reported as themselves)."""

SERVICE_HOST = "istio-egressgateway.istio-system.svc.cluster.local"


# ------------------------------------------------------------------------------------------
# Generated config (lab.istiod.generate_gateway) through diag.live.path
# ------------------------------------------------------------------------------------------


CERT_FILES = {
    "cert_chain_file": "cert-chain.pem",
    "private_key_file": "key.pem",
    "mesh_ca_file": "root-cert.pem",
}
"""The gateway's own certificate and the mesh root as the generator names them (an ISTIO_MUTUAL
server is built only with them); nothing here reads the files."""


def gateway_view(case: VectorCase) -> Any:
    """A ``lab.istiod.GatewayView`` for the case's gateway proxy."""
    from lab.istiod import GatewayView

    return GatewayView(
        namespace=case.proxy.namespace,
        labels=dict(case.proxy.labels),
        mesh=dict(case.mesh),
        ips=tuple(case.proxy.ips),
        **CERT_FILES,
    )


def generate(case: VectorCase) -> Any:
    from lab.istiod import generate_gateway

    return generate_gateway([dict(o) for o in case.config], gateway_view(case))


# ------------------------------------------------------------------------------------------
# Predictions (diag.predict.gateway)
# ------------------------------------------------------------------------------------------


def _selected(selector: Any, labels: Any) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in dict(selector).items())


def workload(snapshot: Any, case: VectorCase) -> Any:
    """The case's gateway proxy as a ``GatewayWorkload``: its labels, the Gateways selecting it, and
    the ports of a Kubernetes Service in its namespace selecting it (Service port -> target port),
    else of the ServiceEntries with an endpoint at the proxy's address."""
    from diag.predict.gateway_model import GatewayWorkload
    from diag.predict.gateway_workload import endpoint_ports

    labels = dict(case.proxy.labels)
    suffix = snapshot.mesh.domain_suffix
    service = next(
        (
            s
            for s in snapshot.services
            if s.namespace == case.proxy.namespace and _selected(s.selector, labels)
        ),
        None,
    )
    if service is not None:
        ports = {p.number: p.target_port or p.number for p in service.ports}
    else:
        ports = endpoint_ports(snapshot, tuple(case.proxy.ips))
    return GatewayWorkload(
        name=f"{service.name}.{service.namespace}" if service else "istio-egressgateway.istio-system",
        namespace=case.proxy.namespace,
        host=service.hostname(suffix) if service else SERVICE_HOST,
        labels=labels,
        service_ref=service.ref if service else None,
        ports=ports,
        gateways=tuple(g.ref for g in snapshot.gateways if _selected(g.selector, labels)),
    )


def predict(snapshot: Any, case: VectorCase, call: VectorCall) -> Observed:
    """The prediction for a call to the gateway's listener port ``call.port`` (see the module
    docstring); the source is a sidecar-less client in the gateway's namespace, presenting Istio
    mTLS (with the call's SNI) when the call says ``mtls``, else its own bytes."""
    from diag.predict.gateway import predict_gateway
    from diag.predict.model import Source

    gateway = workload(snapshot, case)
    server_ports = sorted(
        {s.port.number for g in snapshot.gateways if g.ref in gateway.gateways for s in g.servers}
    )
    wanted = f"0.0.0.0_{call.port}"
    seen = []
    for number in server_ports:
        hop = predict_gateway(
            snapshot,
            gateway,
            adapters.predict_call(call),
            Source(namespace=case.proxy.namespace),
            cluster=f"outbound|{number}||{gateway.host}",
            client_tls=("ISTIO_MUTUAL", call.sni or "") if call.mtls else ("DISABLE", ""),
        )
        seen.append(f"server port {number} -> {hop.listener}")
        if hop.listener == wanted:
            return observed_from_hop(hop)
    return Observed(error="no_listener", detail=f"(no predicted listener {wanted}: {seen})")


def observed_from_hop(hop: Any) -> Observed:
    """A ``GatewayHop`` as an observation."""
    return Observed(
        listener=hop.listener,
        filter_chain=hop.filter_chain,
        route_config=hop.route,
        vhost=hop.vhost,
        cluster=hop.cluster,
        error=HOP_ERRORS.get(hop.reason, hop.reason),
        detail=f"(verdict {hop.verdict}; reason {hop.reason!r}: {hop.message}; notes {list(hop.notes)})",
    )
