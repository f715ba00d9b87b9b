"""What ``meshprobe cleanup`` finds and removes: the Jobs and pods meshprobe runs left behind (a
``--keep-pod`` run, a CLI killed before it could clean up, a Job whose pods were orphaned).

- **Only meshprobe's objects.** Jobs and pods labelled ``app.kubernetes.io/managed-by:
  meshprobe`` — the API server selects them by that label and each one is checked again here,
  so nothing else is ever deleted, whatever its name.
- **Only finished or stale runs**, unless told otherwise: a run is removed when it has finished
  (its Job Complete or Failed, its pod Succeeded or Failed) or is older than an hour (a probe run
  lasts minutes: its Job's deadline); a younger run still going may be someone's ``meshprobe
  check`` and is left alone (and named). With ``older_than``, every run older than that goes,
  finished or not.
- **Removal**: a Job is deleted with ``propagationPolicy: Background`` (the garbage collector
  removes its pods), and its pods are deleted too so that they go now; a pod whose Job is gone
  is deleted alone. Then we wait, bounded, until the API no longer lists any of them.
- **Ephemeral containers** named ``meshprobe-*`` (``check --from``) are reported, never touched:
  Kubernetes cannot remove an ephemeral container from a pod; it stays (stopped) until the pod is
  replaced.

Ages come from ``metadata.creationTimestamp`` against this machine's clock.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from diag import errors
from diag.cluster import Cluster, NotFound, resource_path
from diag.pod.spec import MANAGED_BY, RUN_LABEL

SELECTOR = f"{MANAGED_BY}=meshprobe"
STALE_AFTER_S = 3600.0
EPHEMERAL_PREFIX = "meshprobe-"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """``90s``, ``15m``, ``1h30m``, ``2d`` (Go's duration units plus days) in seconds; ``0`` too."""
    value = text.strip()
    if value == "0":
        return 0.0
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise errors.UsageError(f"--older-than {text!r}: expected a duration such as 30m, 1h or 2d")
    return sum(float(n) * _UNITS[u] for n, u in parts)


@dataclass(frozen=True)
class Leftover:
    """A Job or pod of a meshprobe run."""

    kind: str  # "Job" or "Pod"
    namespace: str
    name: str
    run_id: str
    age_s: float
    finished: bool
    job: str | None = None  # a pod's Job (its controller), when it has one
    deleting: bool = False  # already has a deletionTimestamp

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class EphemeralProbe:
    """A pod holding meshprobe ephemeral containers (``check --from``)."""

    namespace: str
    pod: str
    containers: tuple[str, ...]
    running: tuple[str, ...]


@dataclass
class Found:
    """What ``find`` saw: what to remove, what was left alone, and the ephemeral containers."""

    jobs: list[Leftover] = field(default_factory=list)
    pods: list[Leftover] = field(default_factory=list)
    active: list[Leftover] = field(default_factory=list)  # young, unfinished runs (Jobs or lone pods)
    ephemeral: list[EphemeralProbe] = field(default_factory=list)

    def pods_of(self, job: Leftover) -> list[Leftover]:
        return [p for p in self.pods if p.namespace == job.namespace and p.job == job.name]

    @property
    def lone_pods(self) -> list[Leftover]:
        removed = {(j.namespace, j.name) for j in self.jobs}
        return [p for p in self.pods if p.job is None or (p.namespace, p.job) not in removed]

    @property
    def namespaces(self) -> list[str]:
        return sorted({o.namespace for o in [*self.jobs, *self.pods]})


def find(
    cluster: Cluster, namespace: str | None, older_than: float | None, now: float | None = None
) -> Found:
    """meshprobe's Jobs and pods in ``namespace`` (None: every namespace) that should go (module
    docstring), and the pods carrying meshprobe ephemeral containers."""
    clock = time.time() if now is None else now
    jobs = [_leftover("Job", j, clock) for j in _ours(_list(cluster, "batch", "jobs", namespace, SELECTOR))]
    pods = [_leftover("Pod", p, clock) for p in _ours(_list(cluster, "", "pods", namespace, SELECTOR))]
    found = Found()
    chosen_jobs = set()
    for job in sorted(jobs, key=_order):
        if _due(job, older_than):
            found.jobs.append(job)
            chosen_jobs.add((job.namespace, job.name))
        else:
            found.active.append(job)
    listed_jobs = {(j.namespace, j.name) for j in jobs}
    for pod in sorted(pods, key=_order):
        key = (pod.namespace, pod.job)
        if key in chosen_jobs:
            found.pods.append(pod)
        elif pod.job is not None and key in listed_jobs:
            continue  # its Job is an active run: the pod goes with it, later
        elif _due(pod, older_than):
            found.pods.append(pod)
        else:
            found.active.append(pod)
    found.ephemeral = _ephemeral(_list(cluster, "", "pods", namespace, None))
    return found


def _list(
    cluster: Cluster, group: str, resource: str, namespace: str | None, selector: str | None
) -> list[Any]:
    where = f"in namespace {namespace}" if namespace else "in all namespaces"
    return cluster.list(
        resource_path(group, "v1", resource, namespace),
        label_selector=selector,
        what=f"list {resource} {where}",
    )


def _ours(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Only objects that carry meshprobe's label (whatever the server's selector did)."""
    return [
        i for i in items if ((i.get("metadata") or {}).get("labels") or {}).get(MANAGED_BY) == "meshprobe"
    ]


def _order(item: Leftover) -> tuple[str, str]:
    return item.namespace, item.name


def _due(item: Leftover, older_than: float | None) -> bool:
    if older_than is not None:
        return item.age_s >= older_than
    return item.finished or item.age_s >= STALE_AFTER_S


def _leftover(kind: str, obj: dict[str, Any], now: float) -> Leftover:
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    if kind == "Job":
        finished = bool(status.get("completionTime")) or any(
            c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
            for c in status.get("conditions") or []
        )
        job = None
    else:
        finished = status.get("phase") in ("Succeeded", "Failed")
        job = next(
            (
                str(o.get("name"))
                for o in meta.get("ownerReferences") or []
                if o.get("kind") == "Job" and o.get("controller")
            ),
            None,
        )
    return Leftover(
        kind,
        str(meta.get("namespace") or ""),
        str(meta.get("name") or ""),
        str((meta.get("labels") or {}).get(RUN_LABEL) or ""),
        max(0.0, now - _timestamp(meta.get("creationTimestamp"), now)),
        finished,
        job,
        bool(meta.get("deletionTimestamp")),
    )


def _timestamp(value: Any, default: float) -> float:
    try:
        return datetime.fromisoformat(str(value)).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return default


def _ephemeral(pods: list[dict[str, Any]]) -> list[EphemeralProbe]:
    out = []
    for pod in pods:
        names = tuple(
            str(c.get("name"))
            for c in (pod.get("spec") or {}).get("ephemeralContainers") or []
            if str(c.get("name", "")).startswith(EPHEMERAL_PREFIX)
        )
        if not names:
            continue
        running = tuple(
            str(s.get("name"))
            for s in (pod.get("status") or {}).get("ephemeralContainerStatuses") or []
            if s.get("name") in names and "running" in (s.get("state") or {})
        )
        meta = pod.get("metadata") or {}
        out.append(EphemeralProbe(str(meta.get("namespace")), str(meta.get("name")), names, running))
    return sorted(out, key=lambda e: (e.namespace, e.pod))


def remove(
    cluster: Cluster,
    found: Found,
    *,
    wait_s: float = 60.0,
    progress: Callable[[str], None] = lambda _: None,
) -> None:
    """Delete what ``found`` holds and wait until the API lists none of it (``InfraError`` when
    something is still there after ``wait_s``)."""
    for job in found.jobs:
        with contextlib.suppress(NotFound):
            cluster.request(
                "DELETE",
                resource_path("batch", "v1", "jobs", job.namespace, job.name),
                body={"propagationPolicy": "Background"},
                what=f"delete job {job.ref}",
            )
    for pod in found.pods:
        if not pod.deleting:
            with contextlib.suppress(NotFound):
                cluster.request(
                    "DELETE",
                    resource_path("", "v1", "pods", pod.namespace, pod.name),
                    what=f"delete pod {pod.ref}",
                )
    progress("waiting until they are gone")
    deadline = time.monotonic() + wait_s
    while True:
        left = _still_there(cluster, found)
        if not left:
            return
        if time.monotonic() > deadline:
            shown = ", ".join(left[:5]) + (f" and {len(left) - 5} more" if len(left) > 5 else "")
            raise errors.InfraError(
                f"still there after {int(wait_s)} s: {shown}",
                hint="they are being deleted; run `meshprobe cleanup` again in a minute",
            )
        time.sleep(0.2)


def _still_there(cluster: Cluster, found: Found) -> list[str]:
    left = []
    for ns in found.namespaces:
        wanted_jobs = {j.name for j in found.jobs if j.namespace == ns}
        wanted_pods = {p.name for p in found.pods if p.namespace == ns}
        if wanted_jobs:
            listed = _list(cluster, "batch", "jobs", ns, SELECTOR)
            left += [f"job {ns}/{n}" for n in sorted(wanted_jobs & _names(listed))]
        if wanted_pods:
            listed = _list(cluster, "", "pods", ns, SELECTOR)
            left += [f"pod {ns}/{n}" for n in sorted(wanted_pods & _names(listed))]
    return left


def _names(items: list[dict[str, Any]]) -> set[str]:
    return {str((i.get("metadata") or {}).get("name")) for i in items}


def denied(cluster: Cluster, found: Found) -> list[str]:
    """For ``--dry-run``: the deletions the API would refuse, as ``verb resource in namespace``."""
    out = []
    for ns in found.namespaces:
        checks = []
        if any(j.namespace == ns for j in found.jobs):
            checks.append(("batch", "jobs"))
        if any(p.namespace == ns for p in found.pods):
            checks.append(("", "pods"))
        for group, resource in checks:
            if not cluster.can_i("delete", resource, ns, group=group):
                out.append(f"delete {group + '/' if group else ''}{resource} in namespace {ns}")
    return out


def age(seconds: float) -> str:
    """``45s``, ``12m``, ``3h``, ``2d``."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"
