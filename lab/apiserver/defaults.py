"""Defaulting on create, as the API server's scheme defaults and registry strategies fill fields in.

Pods: pkg/apis/core/v1/defaults.go (``SetDefaults_PodSpec``, ``SetDefaults_Container``) plus the
DefaultTolerationSeconds admission plugin; Services: ``SetDefaults_Service`` and the ClusterIP
allocator; Jobs: pkg/apis/batch/v1/defaults.go and pkg/registry/batch/job/strategy.go
(``generateSelector``: the controller-uid labels); apps/v1 workloads: pkg/apis/apps/v1/defaults.go
(replicas, update strategies, history limits, the pod template's spec); Namespaces: the
``kubernetes`` finalizer and the ``kubernetes.io/metadata.name`` label
(pkg/registry/core/namespace/strategy.go).
"""

from __future__ import annotations

import datetime
import ipaddress
import itertools
import secrets
import uuid
from typing import Any

JOB_UID_LABELS = ("batch.kubernetes.io/controller-uid", "controller-uid")
JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")
NOT_READY_TOLERATIONS = (
    {
        "key": "node.kubernetes.io/not-ready",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 300,
    },
    {
        "key": "node.kubernetes.io/unreachable",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 300,
    },
)
_cluster_ips = itertools.count(10)


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> float:
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC).timestamp()


def rfc3339_at(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def generated_name(prefix: str) -> str:
    """``generateName`` + 5 random characters (names.SimpleNameGenerator)."""
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return prefix[:58] + "".join(secrets.choice(alphabet) for _ in range(5))


def default_metadata(meta: dict[str, Any], has_spec: bool) -> None:
    meta["uid"] = str(uuid.uuid4())
    meta["creationTimestamp"] = now_rfc3339()
    for key in ("deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion"):
        meta.pop(key, None)
    if has_spec:
        meta["generation"] = 1


def _container(c: dict[str, Any]) -> None:
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    image = str(c.get("image", ""))
    tagged = ":" in image.rsplit("/", 1)[-1] or "@" in image
    latest = image.endswith(":latest") or not tagged
    c.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
    c.setdefault("resources", {})
    for port in c.get("ports") or []:
        port.setdefault("protocol", "TCP")


def default_pod_spec(spec: dict[str, Any]) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    spec["serviceAccount"] = spec["serviceAccountName"]
    spec.setdefault("enableServiceLinks", True)
    for key in ("containers", "initContainers", "ephemeralContainers"):
        for c in spec.get(key) or []:
            _container(c)


def default_pod(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    default_pod_spec(spec)
    spec.setdefault("priority", 0)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    tolerations = spec.setdefault("tolerations", [])
    keys = {t.get("key") for t in tolerations}
    tolerations.extend(dict(t) for t in NOT_READY_TOLERATIONS if t["key"] not in keys)
    status = obj.setdefault("status", {})
    status.setdefault("phase", "Pending")
    limited = any(
        (c.get("resources") or {}).get("limits") or (c.get("resources") or {}).get("requests")
        for c in spec.get("containers") or []
    )
    status.setdefault("qosClass", "Burstable" if limited else "BestEffort")


def default_service(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if "clusterIP" not in spec and spec["type"] != "ExternalName":
        spec["clusterIP"] = str(ipaddress.IPv4Address("10.96.0.0") + next(_cluster_ips))
    if spec.get("clusterIP") and spec["type"] != "ExternalName":
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
    for port in spec.get("ports") or []:
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))
    obj.setdefault("status", {"loadBalancer": {}})


def default_job(obj: dict[str, Any]) -> None:
    meta, spec = obj["metadata"], obj.setdefault("spec", {})
    spec.setdefault("parallelism", 1)
    spec.setdefault("completions", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    template = spec.setdefault("template", {})
    labels = template.setdefault("metadata", {}).setdefault("labels", {})
    if "selector" not in spec:
        for key in JOB_UID_LABELS:
            labels[key] = meta["uid"]
        for key in JOB_NAME_LABELS:
            labels[key] = meta["name"]
        spec["selector"] = {"matchLabels": {JOB_UID_LABELS[0]: meta["uid"]}}
    default_pod_spec(template.setdefault("spec", {}))
    obj.setdefault("status", {})


def _default_template(spec: dict[str, Any]) -> None:
    """A workload's pod template: the PodSpec defaults, but no service account (only pods get
    ``default``, from the ServiceAccount admission plugin)."""
    template = spec.setdefault("template", {})
    template.setdefault("metadata", {})
    pod_spec = template.setdefault("spec", {})
    named = pod_spec.get("serviceAccountName") or pod_spec.get("serviceAccount")
    default_pod_spec(pod_spec)
    if not named:
        pod_spec.pop("serviceAccountName", None)
        pod_spec.pop("serviceAccount", None)


def default_deployment(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    _default_template(spec)
    obj.setdefault("status", {})


def default_replica_set(obj: dict[str, Any]) -> None:
    obj.setdefault("spec", {}).setdefault("replicas", 1)
    _default_template(obj["spec"])
    obj.setdefault("status", {"replicas": 0})


def default_stateful_set(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("podManagementPolicy", "OrderedReady")
    strategy = spec.setdefault("updateStrategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        strategy.setdefault("rollingUpdate", {}).setdefault("partition", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"})
    _default_template(spec)
    obj.setdefault("status", {"replicas": 0, "availableReplicas": 0})


def default_daemon_set(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    strategy = spec.setdefault("updateStrategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", 1)
        rolling.setdefault("maxSurge", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    _default_template(spec)
    obj.setdefault(
        "status",
        {"currentNumberScheduled": 0, "desiredNumberScheduled": 0, "numberMisscheduled": 0, "numberReady": 0},
    )


def default_namespace(obj: dict[str, Any]) -> None:
    meta = obj["metadata"]
    meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    obj.setdefault("status", {})["phase"] = "Active"


def default_event(obj: dict[str, Any]) -> None:
    obj.setdefault("involvedObject", {})
    obj.setdefault("reportingComponent", "")
    obj.setdefault("reportingInstance", "")


BY_KIND = {
    ("", "Pod"): default_pod,
    ("", "Service"): default_service,
    ("", "Namespace"): default_namespace,
    ("", "Event"): default_event,
    ("batch", "Job"): default_job,
    ("apps", "Deployment"): default_deployment,
    ("apps", "ReplicaSet"): default_replica_set,
    ("apps", "StatefulSet"): default_stateful_set,
    ("apps", "DaemonSet"): default_daemon_set,
}


def apply_defaults(group: str, kind: str, obj: dict[str, Any]) -> None:
    """Fill defaults into a new object (metadata already defaulted)."""
    fill = BY_KIND.get((group, kind))
    if fill is not None:
        fill(obj)
