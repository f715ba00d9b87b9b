"""``meshprobe manifests watch``: ``meshprobe watch`` as a meshed Deployment (docs/watch.md,
Running it in a cluster) — its ServiceAccount and least-privilege RBAC, the Deployment, a
Service for scraping, a ServiceMonitor (Prometheus Operator) and a PrometheusRule whose alerts are
keyed on the diagnosis code.

RBAC, what the watch calls and nothing else:

- ClusterRole ``meshprobe-watch-mesh`` (bound cluster-wide): list and watch Istio's kinds and
  Namespaces, list Services and EndpointSlices (``diag.live.meshread``; entries exported from other
  namespaces apply to the watch's);
- Role ``meshprobe-watch-istio`` in istio-system: get, list and watch the ``istio`` ConfigMap by
  name, list Deployments (istiod's version);
- Role ``meshprobe-watch`` in the watch's namespace: get, list and watch the targets ConfigMap by
  name, create Events.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from diag.live.meshread import CORE_KINDS, ISTIO_KINDS, ROOT_NAMESPACE
from diag.manifests.common import DEFAULT_NAMESPACE, DEFAULT_TARGETS, PART_OF, check_label, meta, target_hosts
from diag.manifests.rbac import RBAC_GROUP, Rule
from diag.manifests.workloads import CLI_REPOSITORY

WATCH = "meshprobe-watch"
MESH_ROLE = "meshprobe-watch-mesh"
ISTIO_ROLE = "meshprobe-watch-istio"
TARGETS_CONFIGMAP = "meshprobe-watch-targets"
PORT = 9146
# Alerts: name, PromQL, for, severity, summary. ``code`` is a label of meshprobe_probe_verdict.
ALERTS: tuple[tuple[str, str, str, str, str], ...] = (
    (
        "MeshprobeEgressBlockedByMesh",
        'max by (namespace, target, signature, code) (meshprobe_probe_verdict{code=~"MP01.*|MP03.*"})'
        " and on (namespace, target) (probe_success == 0)",
        "2m", "critical",
        "Egress to {{ $labels.target }} fails because of mesh config: {{ $labels.code }}",
    ),
    (
        "MeshprobeEgressFailsOutsideMesh",
        'max by (namespace, target, signature, code) (meshprobe_probe_verdict{code=~"MP02.*|none"})'
        " and on (namespace, target) (probe_success == 0)",
        "5m", "warning",
        "Egress to {{ $labels.target }} fails for a reason outside the mesh ({{ $labels.signature }},"
        " {{ $labels.code }})",
    ),
    (
        "MeshprobeWatchStalled",
        "rate(meshprobe_watch_cycles_total[5m]) == 0",
        "5m", "warning",
        "meshprobe watch in {{ $labels.namespace }} has run no probe cycle for 5 minutes",
    ),
)  # fmt: skip
# Where a code's page is (each code has one: symptom, Istio behaviour, fix). Point it at your copy.
RUNBOOK = "docs/codes/{{ $labels.code }}.md"


def watch_rules(targets_configmap: str) -> dict[str, list[Rule]]:
    """Role name → its rules (module docstring)."""
    istio = sorted({g for g, _, _ in ISTIO_KINDS})
    mesh = [
        Rule(g, tuple(r for gg, r, _ in ISTIO_KINDS if gg == g), ("list", "watch"), "mesh config, watched")
        for g in istio
    ]
    mesh += [Rule(g, (r,), ("list",), f"{k}s (read with the mesh)") for g, _, r, k in CORE_KINDS]
    mesh.append(Rule("", ("namespaces",), ("list", "watch"), "namespace labels, watched"))
    return {
        MESH_ROLE: mesh,
        ISTIO_ROLE: [
            Rule("", ("configmaps",), ("get", "list", "watch"), "MeshConfig, watched by name", ("istio",)),
            Rule("apps", ("deployments",), ("list",), "istiod's Deployment (Istio version)"),
        ],
        WATCH: [
            Rule("", ("configmaps",), ("get", "list", "watch"), "the targets, watched by name",
                 (targets_configmap,)),
            Rule("", ("events",), ("create",), "an Event per verdict change"),
        ],
    }  # fmt: skip


def watch_manifests(
    namespace: str = DEFAULT_NAMESPACE,
    *,
    targets: Sequence[str] = DEFAULT_TARGETS,
    cli_image: str | None = None,
    interval: int = 30,
) -> list[dict[str, Any]]:
    """Every object ``meshprobe manifests watch`` prints (module docstring)."""
    from probes import __version__

    check_label(namespace, "namespace")
    target_hosts(targets)
    labels = {"app.kubernetes.io/name": WATCH, **PART_OF}
    rules = watch_rules(TARGETS_CONFIGMAP)
    account = {"kind": "ServiceAccount", "namespace": namespace, "name": WATCH}

    def role(kind: str, name: str, ns: str | None) -> list[dict[str, Any]]:
        binding_kind = "ClusterRoleBinding" if kind == "ClusterRole" else "RoleBinding"
        return [
            {"apiVersion": f"{RBAC_GROUP}/v1", "kind": kind, "metadata": meta(name, ns),
             "rules": [r.to_json() for r in rules[name]]},
            {"apiVersion": f"{RBAC_GROUP}/v1", "kind": binding_kind, "metadata": meta(name, ns),
             "roleRef": {"apiGroup": RBAC_GROUP, "kind": kind, "name": name}, "subjects": [account]},
        ]

    configmap = {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(TARGETS_CONFIGMAP, namespace),
        "data": {"targets": "".join(f"{t}\n" for t in targets)},
    }
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(WATCH, namespace)},
        *role("ClusterRole", MESH_ROLE, None),
        *role("Role", ISTIO_ROLE, ROOT_NAMESPACE),
        *role("Role", WATCH, namespace),
        configmap,
        _deployment(namespace, labels, cli_image or f"{CLI_REPOSITORY}:{__version__}", interval),
        {
            "apiVersion": "v1", "kind": "Service", "metadata": {**meta(WATCH, namespace), "labels": labels},
            "spec": {"selector": dict(labels),
                     "ports": [{"name": "http-metrics", "port": PORT, "targetPort": "http-metrics"}]},
        },
        {
            "apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
            "metadata": {**meta(WATCH, namespace), "labels": labels},
            "spec": {"selector": {"matchLabels": dict(labels)},
                     "endpoints": [{"port": "http-metrics", "path": "/metrics",
                                    "interval": f"{interval}s"}]},
        },
        _prometheus_rule(namespace, labels),
    ]


def _deployment(namespace: str, labels: dict[str, str], image: str, interval: int) -> dict[str, Any]:
    from diag.pod.image import PROBE_GID, PROBE_UID

    probe = {"httpGet": {"path": "/healthz", "port": "http-metrics"}, "periodSeconds": 30,
             "failureThreshold": 3, "timeoutSeconds": 5}  # fmt: skip
    container = {
        "name": "watch",
        "image": image,
        "args": ["watch", "--targets-configmap", TARGETS_CONFIGMAP, "--interval", str(interval),
                 "--listen", f"0.0.0.0:{PORT}"],
        "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "HOME", "value": "/tmp"},
            {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
            {"name": "PYTHONUNBUFFERED", "value": "1"},
        ],
        "ports": [{"name": "http-metrics", "containerPort": PORT}],
        "livenessProbe": {**probe, "initialDelaySeconds": 3 * interval},
        "readinessProbe": {**probe, "periodSeconds": 10,
                           "httpGet": {"path": "/readyz", "port": "http-metrics"}},
        "securityContext": {
            "runAsNonRoot": True, "runAsUser": PROBE_UID, "runAsGroup": PROBE_GID,
            "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"},
        },
        "resources": {"requests": {"cpu": "50m", "memory": "96Mi"},
                      "limits": {"cpu": "500m", "memory": "256Mi"}},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }  # fmt: skip
    annotations = {
        "sidecar.istio.io/inject": "true",  # the sidecar is the source under test
        "proxy.istio.io/config": '{"holdApplicationUntilProxyStarts": true}',
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {**meta(WATCH, namespace), "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": {**labels, "sidecar.istio.io/inject": "true"},
                             "annotations": annotations},
                "spec": {
                    "serviceAccountName": WATCH,
                    "automountServiceAccountToken": True,  # the watch reads the mesh through the API
                    "enableServiceLinks": False,
                    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}}],
                },
            },
        },
    }


def _prometheus_rule(namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    rules = [
        {
            "alert": name,
            "expr": expr,
            "for": wait,
            "labels": {"severity": severity},
            "annotations": {"summary": summary, **({"runbook_url": RUNBOOK} if "code" in expr else {})},
        }
        for name, expr, wait, severity, summary in ALERTS
    ]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {**meta(WATCH, namespace), "labels": labels},
        "spec": {"groups": [{"name": "meshprobe-egress", "rules": rules}]},
    }


HEADER = """\
`meshprobe watch` as a meshed Deployment: its own sidecar is the source under test. Edit the
targets in the ConfigMap meshprobe-watch-targets (one per line); the watch follows its edits.
The ServiceMonitor and PrometheusRule need the Prometheus Operator's CRDs (drop them otherwise).
Rendered by `meshprobe manifests watch` (docs/watch.md).
"""


def render_watch(**options: Any) -> str:
    """``meshprobe manifests watch`` (the options of ``watch_manifests``)."""
    from diag.manifests.yamlout import to_yaml

    comments = {f"{kind}/{name}": [r.why for r in rules]
                for name, rules in watch_rules(TARGETS_CONFIGMAP).items()
                for kind in (("ClusterRole",) if name == MESH_ROLE else ("Role",))}  # fmt: skip
    return to_yaml(watch_manifests(**options), HEADER, comments)
