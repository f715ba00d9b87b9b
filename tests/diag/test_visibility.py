"""Visibility: exportTo, discoverySelectors, Sidecar selection and import, effective mode — and the
object each answer names (push_context.go, sidecar.go; docs/model.md)."""

from __future__ import annotations

import pytest

from diag.model.loader import load_text
from diag.model.mesh import parse_mesh_config
from diag.model.snapshot import MeshService, Snapshot
from diag.predict.sidecar import Call, Source, candidates, near_names, predict
from diag.predict.visibility import (
    effective_mode,
    egress_host_matches,
    in_discovery_scope,
    service_exported,
    sidecar_for,
)


def snap(text: str, mesh: dict[str, object] | None = None) -> Snapshot:
    loaded = load_text(text)
    assert loaded.problems == ()
    return Snapshot.build(loaded.objects, parse_mesh_config(mesh or {}, "ConfigMap istio-system/istio"))


def entry(ns: str, export: str | None = None, host: str = "api.example.com", name: str = "api") -> str:
    export_line = f"  exportTo: {export}\n" if export is not None else ""
    return (
        f"apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: {name}, namespace: {ns}}}\n"  # noqa: E501
        f"spec:\n  hosts: [{host}]\n  ports: [{{number: 443, name: tls, protocol: TLS}}]\n  resolution: DNS\n"
        f"{export_line}---\n"
    )


@pytest.mark.parametrize(
    ("export", "mesh_default", "to_ns", "allowed", "decided_by"),
    [
        (None, None, "other", True, "ConfigMap istio-system/istio"),
        ('["."]', None, "other", False, "ServiceEntry team/api"),
        ('["."]', None, "team", True, "ServiceEntry team/api"),
        ('["other"]', None, "team", False, "ServiceEntry team/api"),  # hides it from its own namespace
        ('["other"]', None, "other", True, "ServiceEntry team/api"),
        ('["~"]', None, "team", False, "ServiceEntry team/api"),
        ('["*"]', ["."], "other", True, "ServiceEntry team/api"),
        (None, ["."], "other", False, "ConfigMap istio-system/istio"),
        (None, ["."], "team", True, "ConfigMap istio-system/istio"),
    ],
)
def test_service_entry_export_to(
    export: str | None, mesh_default: list[str] | None, to_ns: str, allowed: bool, decided_by: str
) -> None:
    mesh = {"defaultServiceExportTo": mesh_default} if mesh_default else {}
    s = snap(entry("team", export), mesh)
    (svc,) = s.mesh_services
    decision = service_exported(s, svc, to_ns)
    assert (decision.allowed, decision.decided_by) == (allowed, decided_by)
    p = predict(s, Source(namespace=to_ns), Call(host="api.example.com", port=443))
    assert (p.verdict == "allowed") is allowed


def test_service_annotation_export_to() -> None:
    s = snap(
        "apiVersion: v1\nkind: Service\nmetadata: {name: db, namespace: data, annotations: "
        "{networking.istio.io/exportTo: '.'}}\nspec: {clusterIP: 10.0.0.1, ports: [{port: 5432, name: tcp}]}\n"  # noqa: E501
    )
    (svc,) = s.mesh_services
    assert not service_exported(s, svc, "web").allowed and service_exported(s, svc, "data").allowed


NAMESPACES = """
apiVersion: v1
kind: Namespace
metadata: {name: team, labels: {istio-discovery: enabled}}
---
apiVersion: v1
kind: Namespace
metadata: {name: legacy}
---
"""


def test_discovery_selectors_hide_namespaces() -> None:
    mesh = {
        "discoverySelectors": [{"matchLabels": {"istio-discovery": "enabled"}}],
        "outboundTrafficPolicy": {},
    }
    s = snap(NAMESPACES + entry("team", name="a") + entry("legacy", host="old.example.com", name="b"), mesh)
    assert in_discovery_scope(s, "team").allowed
    out = in_discovery_scope(s, "legacy")
    assert not out.allowed and out.decided_by == "ConfigMap istio-system/istio"
    assert predict(s, Source(namespace="team"), Call(host="api.example.com", port=443)).verdict == "allowed"
    hidden = predict(s, Source(namespace="team"), Call(host="old.example.com", port=443))
    assert hidden.verdict == "blocked"
    (cand,) = candidates(s, "old.example.com", Source(namespace="team"), 443)
    assert (
        cand.visible is not None and not cand.visible.allowed and "discoverySelectors" in cand.visible.reason
    )
    expr = {
        "discoverySelectors": [
            {
                "matchExpressions": [
                    {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["legacy"]}
                ]
            }
        ]
    }
    assert in_discovery_scope(snap(NAMESPACES, expr), "legacy").allowed


SIDECARS = """
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: mesh-default, namespace: istio-system, creationTimestamp: '2025-01-01T00:00:00Z'}
spec:
  egress: [{hosts: ["./*", "istio-system/*"]}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: ns-default, namespace: web, creationTimestamp: '2025-01-01T00:00:00Z'}
spec:
  egress: [{hosts: ["./*", "team/*"]}]
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: batch, namespace: web, creationTimestamp: '2026-01-01T00:00:00Z'}
spec:
  workloadSelector: {labels: {app: batch}}
  egress: [{hosts: ["*/*.example.com", "~/blocked.example.com"]}]
  outboundTrafficPolicy: {mode: ALLOW_ANY}
---
"""


@pytest.mark.parametrize(
    ("ns", "labels", "sidecar"),
    [
        ("web", {}, "Sidecar web/ns-default"),
        ("web", {"app": "batch"}, "Sidecar web/batch"),  # workloadSelector beats the namespace default
        ("team", {}, "Sidecar istio-system/mesh-default"),  # root namespace default
    ],
)
def test_sidecar_selection(ns: str, labels: dict[str, str], sidecar: str) -> None:
    s = snap(SIDECARS)
    chosen = sidecar_for(s, ns, labels)
    assert chosen is not None and chosen.ref == sidecar


def test_sidecar_import_and_mode() -> None:
    mesh = {"outboundTrafficPolicy": {"mode": "ALLOW_ANY"}}
    s = snap(SIDECARS + entry("team") + entry("other", host="x.example.com", name="x"), mesh)
    web = Source(namespace="web")
    mode = effective_mode(s, "web", {})
    assert (mode.mode, mode.decided_by) == ("REGISTRY_ONLY", "Sidecar web/ns-default")
    assert predict(s, web, Call(host="api.example.com", port=443)).verdict == "allowed"  # team/* imported
    hidden = predict(s, web, Call(host="x.example.com", port=443))
    assert (hidden.verdict, hidden.mode_from) == ("blocked", "Sidecar web/ns-default")
    (cand,) = candidates(s, "x.example.com", web, 443)
    assert cand.visible is not None and cand.visible.decided_by == "Sidecar web/ns-default"
    batch = Source(namespace="web", labels={"app": "batch"})
    assert effective_mode(s, "web", {"app": "batch"}).mode == "ALLOW_ANY"
    assert predict(s, batch, Call(host="x.example.com", port=443)).verdict == "allowed"
    assert effective_mode(s, "team", {}).decided_by == "ConfigMap istio-system/istio"
    # the live catch-all (override) wins over everything; --mode (mesh_mode) only over the mesh
    assert effective_mode(s, "web", {}, override="allow_any").decided_by == "sidecar catch-all"
    assert effective_mode(s, "web", {}, mesh_mode="allow_any").decided_by == "Sidecar web/ns-default"
    assert (effective_mode(s, "team", {}, mesh_mode="registry_only").mode) == "REGISTRY_ONLY"
    assert effective_mode(s, "team", {}, mesh_mode="registry_only").decided_by == "--mode"


def _svc(ns: str, host: str) -> MeshService:
    s = snap(entry(ns, host=f'"{host}"').replace("resolution: DNS", "resolution: NONE"))
    return s.mesh_services[0]


@pytest.mark.parametrize(
    ("pattern", "svc_ns", "host", "source_ns", "imported"),
    [
        ("*/*", "a", "api.example.com", "b", True),
        ("./*", "b", "api.example.com", "b", True),
        ("./*", "a", "api.example.com", "b", False),
        ("a/api.example.com", "a", "api.example.com", "b", True),
        ("a/*.example.com", "a", "api.example.com", "b", True),
        ("a/*.example.com", "a", "example.com", "b", False),
        ("*/*.com", "a", "*.example.com", "b", True),  # wildcard service inside a wider import
        ("a/*.example.com", "a", "*.com", "b", False),
        ("~/*", "a", "api.example.com", "b", False),
        ("a/api.example.com", "c", "api.example.com", "b", False),  # the namespace is where the entry lives
    ],
)
def test_egress_host_matching(pattern: str, svc_ns: str, host: str, source_ns: str, imported: bool) -> None:
    assert egress_host_matches(pattern, _svc(svc_ns, host), source_ns) is imported


def test_near_names() -> None:
    text = entry("a", host='"*.example.com"', name="wild").replace("resolution: DNS", "resolution: NONE")
    text += entry("a", host="www.shop.example.org", name="www") + entry(
        "a", host="Api.Example.net", name="caps"
    )
    s = snap(text)
    relations = {(n.relation, n.service.host) for n in near_names(s, "example.com")}
    assert ("wildcard-not-apex", "*.example.com") in relations
    assert ("sibling", "www.shop.example.org") in {
        (n.relation, n.service.host) for n in near_names(s, "cdn.shop.example.org")
    }
    assert ("trailing-dot", "www.shop.example.org") in {
        (n.relation, n.service.host) for n in near_names(s, "www.shop.example.org.")
    }
    assert ("case", "api.example.net") in {
        (n.relation, n.service.host) for n in near_names(s, "api.example.net")
    }
    (cand,) = candidates(s, "deep.sub.example.com", None, 80)
    assert (cand.host_match, cand.port_declared, cand.visible) == ("wildcard", False, None)
