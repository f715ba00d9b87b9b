"""The objects ``meshprobe check`` creates, as plain dicts (no cluster calls here): the per-run
Job that owns the probe pod, the pod template, and the ephemeral container of ``--from``.
The safety rules they encode are listed in ``docs/probe-pod.md``.

- **The Job is the per-run owner.** ``backoffLimit: 0`` (one pod, never retried),
  ``activeDeadlineSeconds`` (the Job controller kills a pod that outlives the run) and
  ``ttlSecondsAfterFinished`` (the TTL controller deletes a finished Job, and the garbage collector
  its pod): even if meshprobe is killed with SIGKILL, nothing stays behind for long. The pod's
  controller ownerReference is the Job, so no ReplicaSet/StatefulSet can adopt it.
- **Identity**: the image's non-root uid/gid (never the proxy's 1337, whose traffic the capture
  rules skip: istio/istio ``tools/istio-iptables/pkg/capture/run.go``), set on the container;
  ``runAsNonRoot``, read-only root filesystem with an ``emptyDir`` on ``/tmp``, every capability
  dropped, no privilege escalation, seccomp RuntimeDefault, no service-account token, small
  limits, ``restartPolicy: Never``.
- **Injection**: label ``sidecar.istio.io/inject: "true"``; ``proxy.istio.io/config`` with
  ``holdApplicationUntilProxyStarts`` and a ``proxyStatsMatcher`` opting in the counters stock
  sidecars filter out (``pkg/bootstrap/config.go`` and the bootstrap's inclusion list);
  ``sidecar.istio.io/nativeSidecar`` says explicitly which sidecar kind is wanted
  (``pkg/kube/inject/webhook.go``).
- **``--like``** copies what Istio selectors and the injector read (labels, service account,
  ``istio.io/rev``, ``sidecar.istio.io/*``, ``proxy.istio.io/config``,
  ``traffic.sidecar.istio.io/*``, DNS settings and host aliases) and drops controller hash labels;
  a ``readinessGates`` condition nobody sets keeps the pod out of every Service's ready endpoints.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from diag.pod.image import ENTRYPOINT, PROBE_GID, PROBE_UID

MANAGED_BY = "app.kubernetes.io/managed-by"
RUN_LABEL = "meshprobe.io/run-id"
READINESS_GATE = "meshprobe.io/never-ready"
PROBE_CONTAINER = "probe"
PLAN_ENV = "MESHPROBE_PLAN"
HASH_LABELS = (
    "pod-template-hash",
    "controller-revision-hash",
    "statefulset.kubernetes.io/pod-name",
    "apps.kubernetes.io/pod-index",
    "batch.kubernetes.io/job-completion-index",
)
CONTROLLER_LABELS = (
    "controller-uid",
    "job-name",
    "batch.kubernetes.io/controller-uid",
    "batch.kubernetes.io/job-name",
)
COPIED_LABELS = re.compile(r"^(istio\.io/rev|sidecar\.istio\.io/inject|istio\.io/dataplane-mode)$")
COPIED_ANNOTATIONS = re.compile(
    r"^(sidecar\.istio\.io/|traffic\.sidecar\.istio\.io/|proxy\.istio\.io/config$)"
)
STATS_PREFIXES = [
    "cluster.BlackHoleCluster",
    "cluster.PassthroughCluster",
    "tcp.BlackHoleCluster",
    "tcp.PassthroughCluster",
]


@dataclass(frozen=True)
class Workload:
    """What ``--like`` copies from a workload's pod template (or pod)."""

    kind: str
    name: str
    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    service_account: str | None = None
    dns_policy: str | None = None
    dns_config: Mapping[str, Any] | None = None
    host_aliases: tuple[Mapping[str, Any], ...] = ()
    proxy_env: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"

    @classmethod
    def from_template(cls, kind: str, name: str, namespace: str, template: Mapping[str, Any]) -> Workload:
        meta = template.get("metadata") or {}
        spec = template.get("spec") or {}
        env: dict[str, str] = {}
        for container in spec.get("containers") or []:
            for item in container.get("env") or []:
                if "value" in item and item.get("name") != "MESHPROBE_PLAN":
                    env.setdefault(str(item.get("name", "")), str(item["value"]))
        proxy_env = {k: v for k, v in env.items() if k.upper() in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")}
        return cls(
            kind=kind,
            name=name,
            namespace=namespace,
            labels={
                k: v
                for k, v in (meta.get("labels") or {}).items()
                if k not in HASH_LABELS + CONTROLLER_LABELS
            },
            annotations={
                k: v for k, v in (meta.get("annotations") or {}).items() if COPIED_ANNOTATIONS.match(k)
            },
            service_account=spec.get("serviceAccountName") or spec.get("serviceAccount"),
            dns_policy=spec.get("dnsPolicy"),
            dns_config=spec.get("dnsConfig"),
            host_aliases=tuple(spec.get("hostAliases") or ()),
            proxy_env=proxy_env,
            env=env,
        )

    @property
    def ambient(self) -> bool:
        return self.labels.get("istio.io/dataplane-mode") == "ambient"


@dataclass(frozen=True)
class ProbeRun:
    """One probe pod to create."""

    run_id: str
    namespace: str
    image: str
    plan: Mapping[str, Any]
    native_sidecar: bool
    deadline_s: int = 300
    ttl_s: int = 30  # a finished run is collected this soon even if meshprobe died (SIGKILL)
    like: Workload | None = None
    inject: bool = True

    @property
    def job_name(self) -> str:
        return f"meshprobe-{self.run_id}"


def pod_security() -> dict[str, Any]:
    """The pod-level security context of every pod meshprobe creates: non-root as the probe's uid/gid,
    the runtime's default seccomp profile (Pod Security "restricted")."""
    return {
        "runAsNonRoot": True,
        "runAsUser": PROBE_UID,
        "runAsGroup": PROBE_GID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security() -> dict[str, Any]:
    """A meshprobe container's security context: the pod's, plus a read-only root, no privilege
    escalation and every capability dropped."""
    pod = pod_security()
    seccomp = pod.pop("seccompProfile")
    return {
        **pod,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": seccomp,
    }


def proxy_config(run: ProbeRun, target_hosts: list[str]) -> dict[str, Any]:
    """``proxy.istio.io/config``: the workload's (``--like``), plus hold-until-ready and the stats
    opt-in for the BlackHole/Passthrough counters and the targets' clusters."""
    base: dict[str, Any] = {}
    if run.like is not None and run.like.annotations.get("proxy.istio.io/config"):
        loaded = yaml.safe_load(run.like.annotations["proxy.istio.io/config"])
        base = dict(loaded) if isinstance(loaded, Mapping) else {}
    base["holdApplicationUntilProxyStarts"] = True
    matcher = dict(base.get("proxyStatsMatcher") or {})
    matcher["inclusionPrefixes"] = sorted({*matcher.get("inclusionPrefixes", []), *STATS_PREFIXES})
    hosts = "|".join(re.escape(h) for h in sorted(set(target_hosts))) or "[^|]*"
    matcher["inclusionRegexps"] = sorted(
        {*matcher.get("inclusionRegexps", []), rf"cluster\.outbound\|[0-9]+\|[^|]*\|({hosts})\..*"}
    )
    base["proxyStatsMatcher"] = matcher
    return base


def pod_template(run: ProbeRun, target_hosts: list[str]) -> dict[str, Any]:
    """The probe pod (module docstring for the rules)."""
    like = run.like
    labels: dict[str, str] = dict(like.labels) if like is not None else {}
    labels.update(
        {MANAGED_BY: "meshprobe", RUN_LABEL: run.run_id, "app.kubernetes.io/name": "meshprobe-probe"}
    )
    if run.inject and not (like is not None and like.ambient):
        labels.setdefault("sidecar.istio.io/inject", "true")
    annotations: dict[str, str] = dict(like.annotations) if like is not None else {}
    annotations["proxy.istio.io/config"] = json.dumps(proxy_config(run, target_hosts), sort_keys=True)
    annotations["sidecar.istio.io/nativeSidecar"] = "true" if run.native_sidecar else "false"
    annotations["meshprobe.io/like"] = like.ref if like is not None else ""
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "activeDeadlineSeconds": run.deadline_s,
        "terminationGracePeriodSeconds": 2,
        "readinessGates": [{"conditionType": READINESS_GATE}],
        "securityContext": pod_security(),
        "containers": [probe_container(run, PROBE_CONTAINER)],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}}],
        "enableServiceLinks": False,
    }
    if like is not None:
        if like.service_account:
            spec["serviceAccountName"] = like.service_account
        if like.dns_policy:
            spec["dnsPolicy"] = like.dns_policy
        if like.dns_config:
            spec["dnsConfig"] = copy.deepcopy(dict(like.dns_config))
        if like.host_aliases:
            spec["hostAliases"] = [dict(a) for a in like.host_aliases]
    return {"metadata": {"labels": labels, "annotations": annotations}, "spec": spec}


def probe_container(run: ProbeRun, name: str, *, ephemeral: bool = False) -> dict[str, Any]:
    """The probe container: the image's entrypoint, the plan in an env var, locked down."""
    container: dict[str, Any] = {
        "name": name,
        "image": run.image,
        "command": list(ENTRYPOINT),
        "args": ["--plan", f"env:{PLAN_ENV}", "--compact"],
        "env": [
            {"name": PLAN_ENV, "value": json.dumps(run.plan, sort_keys=True)},
            {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
            {"name": "PYTHONUNBUFFERED", "value": "1"},
        ],
        "securityContext": container_security(),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if not ephemeral:
        container["resources"] = {
            "requests": {"cpu": "50m", "memory": "64Mi"},
            "limits": {"cpu": "500m", "memory": "128Mi"},
        }
        container["volumeMounts"] = [{"name": "tmp", "mountPath": "/tmp"}]
    return container


def probe_job(run: ProbeRun, target_hosts: list[str]) -> dict[str, Any]:
    """The per-run Job (the probe pod's owner and back-stop)."""
    labels = {MANAGED_BY: "meshprobe", RUN_LABEL: run.run_id}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": run.job_name,
            "namespace": run.namespace,
            "labels": labels,
            "annotations": {"meshprobe.io/purpose": "egress probe; safe to delete"},
        },
        "spec": {
            "backoffLimit": 0,
            "completions": 1,
            "parallelism": 1,
            "activeDeadlineSeconds": run.deadline_s + 30,
            "ttlSecondsAfterFinished": run.ttl_s,
            "template": pod_template(run, target_hosts),
        },
    }


def ephemeral_patch(run: ProbeRun, name: str) -> dict[str, Any]:
    """The strategic-merge patch of ``pods/NAME/ephemeralcontainers`` for ``--from``."""
    return {"spec": {"ephemeralContainers": [probe_container(run, name, ephemeral=True)]}}
