"""Outbound clusters ``outbound|PORT||HOST`` (EDS flattened to STATIC).

Pilot sources (``pilot/pkg/networking/core``):
- ``cluster.go`` ``buildOutboundClusters`` (one cluster per service port, UDP and aliases skipped)
  and ``convertResolution`` (ClientSideLB → EDS, DNSLB → STRICT_DNS, DNSRoundRobinLB → LOGICAL_DNS,
  Passthrough → ORIGINAL_DST).
- ``cluster_builder.go`` ``buildCluster``: DNS clusters get ``dns_lookup_family`` V4_ONLY (an IPv4
  proxy), ``respect_dns_ttl``, ``dns_refresh_rate`` (mesh ``dnsRefreshRate``, 60s) and a load
  assignment; a DNS/STATIC cluster without endpoints is not built; ORIGINAL_DST honours an SE
  ``targetPort`` (``upstream_port_override``); ``setUpstreamProtocol`` (HTTP2/GRPC → h2, auto →
  use the downstream protocol); ``addTelemetryMetadata`` (``istio.services``).
- ``cluster_traffic_policy.go`` ``applyConnectionPool`` (DR ``tcp.connectTimeout``, else mesh
  ``connectTimeout``) and ``applyLoadBalancer`` (LEAST_REQUEST; ORIGINAL_DST → CLUSTER_PROVIDED).
- ``cluster_tls.go`` ``buildUpstreamClusterTLSContext``/``constructUpstreamTLS``/
  ``setAutoSniAndAutoSanValidation``: a user DestinationRule's TLS wins (SIMPLE, MUTUAL, ISTIO_MUTUAL,
  DISABLE), even for MESH_EXTERNAL; ``applyUpstreamTLSSettings``: auto-mTLS only through a transport
  socket match on endpoints labelled ``tlsMode: istio``, never for ORIGINAL_DST clusters.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from lab.istiod import protocol
from lab.istiod.destination_rules import tls_for_port
from lab.istiod.envoy import HTTP_PROTOCOL_OPTIONS, UPSTREAM_TLS, cluster_name, duration, socket_address
from lab.istiod.model import (
    ALIAS,
    CLIENT_SIDE_LB,
    DNS_LB,
    DNS_ROUND_ROBIN,
    PASSTHROUGH,
    MeshPort,
    MeshService,
)
from lab.istiod.resources import DestinationRule, TlsSettings

_TYPES = {
    CLIENT_SIDE_LB: "STATIC",  # EDS, flattened
    DNS_LB: "STRICT_DNS",
    DNS_ROUND_ROBIN: "LOGICAL_DNS",
    PASSTHROUGH: "ORIGINAL_DST",
}


@dataclass(frozen=True)
class TrustFiles:
    """Files standing in for the agent's SDS secrets: ``system`` roots, the mesh root and the
    workload certificate (SDS ``default``)."""

    system_ca: str | None = None
    mesh_ca: str | None = None
    cert_chain: str | None = None
    private_key: str | None = None


def _endpoint_port(svc: MeshService, port: MeshPort, ep_ports: dict[str, int]) -> int:
    if port.name in ep_ports:
        return ep_ports[port.name]
    return port.target_port or port.number


def _load_assignment(name: str, svc: MeshService, port: MeshPort) -> dict[str, Any]:
    lb_endpoints = []
    for ep in svc.endpoints:
        if svc.registry == "Kubernetes" and port.name not in ep.ports:
            continue
        if not ep.healthy:
            # pilot/pkg/xds/endpoints/endpoint_builder.go: a not-ready endpoint is left out, or (with
            # PILOT_AUTO_SEND_UNHEALTHY_ENDPOINTS) sent UNHEALTHY with the panic threshold at 0
            # (pilot/pkg/networking/core/cluster_traffic_policy.go) — either way no traffic reaches it
            continue
        entry: dict[str, Any] = {
            "endpoint": {"address": socket_address(ep.address, _endpoint_port(svc, port, dict(ep.ports)))}
        }
        if ep.tls_mode == "istio":
            entry["metadata"] = {"filter_metadata": {"envoy.transport_socket_match": {"tlsMode": "istio"}}}
        lb_endpoints.append(entry)
    endpoints = [{"lb_endpoints": lb_endpoints}] if lb_endpoints else []
    return {"cluster_name": name, "endpoints": endpoints}


def upstream_tls(tls: TlsSettings, svc: MeshService, name: str, http2: bool,
                 trust: TrustFiles) -> tuple[dict[str, Any] | None, bool, str | None]:
    """The UpstreamTlsContext for a DR TLS setting, whether auto SNI/SAN applies, and a note."""
    if tls.mode == "DISABLE":
        return None, False, None
    common: dict[str, Any] = {}
    note = None
    if tls.mode == "ISTIO_MUTUAL":
        common["alpn_protocols"] = ["istio-peer-exchange", "istio-h2" if http2 else "istio"]
        if trust.cert_chain and trust.private_key:  # SDS "default" in Istio; files in the lab
            common["tls_certificates"] = [{"certificate_chain": {"filename": trust.cert_chain},
                                           "private_key": {"filename": trust.private_key}}]
        mesh_root = trust.mesh_ca or trust.system_ca
        if mesh_root:
            # A mesh certificate is expected: external origins have no spiffe:// URI SAN, so the
            # handshake fails as it does against a real mesh root (MP0109).
            common["validation_context"] = {
                "trusted_ca": {"filename": mesh_root},
                "match_typed_subject_alt_names": [{"san_type": "URI", "matcher": {"prefix": "spiffe://"}}],
            }
        else:
            note = f"{name}: ISTIO_MUTUAL without a mesh root file: no peer validation in the lab"
        return {"@type": UPSTREAM_TLS, "common_tls_context": common, "sni": tls.sni or name}, False, note
    if tls.mode == "MUTUAL":
        if not (tls.client_certificate and tls.private_key):
            return None, False, f"{name}: MUTUAL without clientCertificate/privateKey: no TLS (as pilot)"
        common["tls_certificates"] = [{"certificate_chain": {"filename": tls.client_certificate},
                                       "private_key": {"filename": tls.private_key}}]
    ca = tls.ca_certificates or trust.system_ca
    sans = list(tls.subject_alt_names) or list(svc.service_accounts if svc.registry != "Kubernetes" else ())
    if ca and not tls.insecure_skip_verify:
        validation: dict[str, Any] = {"trusted_ca": {"filename": ca}}
        if sans:
            validation["match_typed_subject_alt_names"] = [
                {"san_type": "DNS", "matcher": {"exact": s}} for s in sans]
        common["validation_context"] = validation
    elif not tls.insecure_skip_verify:
        note = f"{name}: no CA file for 'system' roots in the lab: origin certificate not verified"
    if http2:
        common["alpn_protocols"] = ["h2"]
    context: dict[str, Any] = {"@type": UPSTREAM_TLS, "common_tls_context": common}
    if tls.sni:
        context["sni"] = tls.sni
    auto = not tls.sni
    return context, auto, note


def _apply_tls(cluster: dict[str, Any], http_options: dict[str, Any], svc: MeshService, port: MeshPort,
               tls: TlsSettings | None, trust: TrustFiles, notes: list[str]) -> None:
    """The DR's TLS as the transport socket (+ auto SNI/SAN), else auto-mTLS for ``tlsMode: istio``
    endpoints (never ORIGINAL_DST) — ``applyUpstreamTLSSettings``."""
    name = cluster["name"]
    if tls is not None:
        context, auto, note = upstream_tls(tls, svc, name, protocol.is_http2(port.protocol), trust)
        if note:
            notes.append(note)
        if context is not None:
            cluster["transport_socket"] = {"name": "envoy.transport_sockets.tls", "typed_config": context}
            if auto:
                validates = "validation_context" in context["common_tls_context"]
                options = {"auto_sni": True, "auto_san_validation": validates}
                http_options["upstream_http_protocol_options"] = options
        return
    if cluster["type"] == "ORIGINAL_DST" or not any(ep.tls_mode == "istio" for ep in svc.endpoints):
        return
    mtls, _, note = upstream_tls(TlsSettings(mode="ISTIO_MUTUAL"), svc, name, False, trust)
    if note:
        notes.append(note)
    raw = {"@type": "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"}
    cluster["transport_socket_matches"] = [
        {"name": "tlsMode-istio", "match": {"tlsMode": "istio"},
         "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": mtls}},
        {"name": "tlsMode-disabled", "match": {},
         "transport_socket": {"name": "envoy.transport_sockets.raw_buffer", "typed_config": raw}},
    ]


def build_cluster(svc: MeshService, port: MeshPort, rule: DestinationRule | None, timeout_s: float,
                  trust: TrustFiles, notes: list[str]) -> dict[str, Any] | None:
    name = cluster_name(port.number, svc.hostname)
    kind = _TYPES.get(svc.resolution, "STATIC")
    if rule is not None and rule.connect_timeout_s is not None:
        timeout_s = rule.connect_timeout_s
    cluster: dict[str, Any] = {"name": name, "type": kind, "connect_timeout": duration(timeout_s)}
    if kind in ("STRICT_DNS", "LOGICAL_DNS"):
        if not svc.endpoints:
            notes.append(f"{name}: DNS cluster without endpoints is not built (as pilot)")
            return None
        cluster.update(dns_lookup_family="V4_ONLY", respect_dns_ttl=True, dns_refresh_rate="60s")
    if kind == "ORIGINAL_DST":
        cluster["lb_policy"] = "CLUSTER_PROVIDED"
        if svc.registry != "Kubernetes" and port.target_port:
            cluster["original_dst_lb_config"] = {"upstream_port_override": port.target_port}
    else:
        cluster["lb_policy"] = "LEAST_REQUEST"
        cluster["load_assignment"] = _load_assignment(name, svc, port)
    cluster["metadata"] = {"filter_metadata": {"istio": {
        "services": [{"host": svc.hostname, "name": svc.object_name, "namespace": svc.namespace}],
        **({"config": f"/apis/networking.istio.io/v1/namespaces/{rule.meta.namespace}/destination-rule/"
                      f"{rule.meta.name}"} if rule is not None else {}),
    }}}
    http_options: dict[str, Any] = {}
    if protocol.is_http2(port.protocol):
        http_options["explicit_http_config"] = {"http2_protocol_options": {}}
    elif protocol.is_unsupported(port.protocol):
        http_options["use_downstream_protocol_config"] = {
            "http_protocol_options": {}, "http2_protocol_options": {}}
    _apply_tls(cluster, http_options, svc, port, tls_for_port(rule, port.number), trust, notes)
    if http_options:
        if not {"explicit_http_config", "use_downstream_protocol_config"} & set(http_options):
            http_options["explicit_http_config"] = {"http_protocol_options": {}}
        cluster["typed_extension_protocol_options"] = {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": HTTP_PROTOCOL_OPTIONS, **http_options}
        }
    return cluster


def build_clusters(services: Sequence[MeshService], rule_for: Any, timeout_s: float, trust: TrustFiles,
                   notes: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for svc in services:
        if svc.resolution == ALIAS:
            continue
        rule = rule_for(svc)
        for port in svc.ports:
            if port.protocol == protocol.UDP:
                continue
            cluster = build_cluster(svc, port, rule, timeout_s, trust, notes)
            if cluster is None or cluster["name"] in seen:
                continue
            seen.add(cluster["name"])
            out.append(cluster)
            out.extend(subset_clusters(cluster, svc, port, rule, (timeout_s, trust, notes)))
    return out


def subset_clusters(cluster: dict[str, Any], svc: MeshService, port: MeshPort, rule: DestinationRule | None,
                    rebuild: tuple[float, TrustFiles, list[str]]) -> list[dict[str, Any]]:
    """``buildSubsetCluster``: one ``outbound|PORT|SUBSET|HOST`` per DR subset, a copy of the default
    cluster (the lab does not filter endpoints by subset labels) — unless the subset's own
    ``trafficPolicy`` sets TLS: ``MergeSubsetTrafficPolicy`` (``pilot/pkg/networking/util``) lets the
    subset's port-level TLS, else its top-level TLS, replace the rule's for that port."""
    if rule is None:
        return []
    out = []
    for name, _labels in rule.subsets:
        if not name:
            continue
        sub_tls, sub_port_tls = rule.subset_tls.get(name, (None, {}))
        tls = sub_port_tls.get(port.number, sub_tls)
        if tls is not None:
            timeout_s, trust, notes = rebuild
            merged = replace(rule, tls=tls, port_tls={}, subsets=(), subset_tls={})
            copy_ = build_cluster(svc, port, merged, timeout_s, trust, notes) or {}
            if not copy_:
                continue
        else:
            copy_ = json.loads(json.dumps(cluster))
        copy_["name"] = cluster_name(port.number, svc.hostname, name)
        if "load_assignment" in copy_:
            copy_["load_assignment"]["cluster_name"] = copy_["name"]
        out.append(copy_)
    return out
