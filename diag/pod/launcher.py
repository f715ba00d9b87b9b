"""Run the probe in the cluster and bring its result back: the per-run Job (``diag.pod.spec``), or
an ephemeral container in an existing pod (``--from``).

The probe pod is followed to its result by ``diag.pod.watch`` (verified once it exists, its JSON
read from the probe container's log; every way it can fail to start is one clear error — no pod:
the Job controller's ``FailedCreate`` event is quoted; unschedulable, image not pullable, sidecar
never ready, deadline: the pod's own words).

Cleanup is registered before creation (``contextlib.ExitStack``): the Job is deleted
(``propagationPolicy: Background``) and the run's pods with it, and we wait until they are gone —
on success, failure, timeout, Ctrl-C and SIGTERM (the command turns SIGTERM into ``SystemExit``).
SIGINT/SIGTERM are blocked while cleanup runs so that a second Ctrl-C cannot cut it short. An
ephemeral container cannot be removed from its pod (Kubernetes does not allow it): the report says
so, and the workload's sidecar is never asked to quit.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable

from diag import errors
from diag.cluster import Cluster, NotFound, resource_path
from diag.pod.spec import RUN_LABEL, ProbeRun, ephemeral_patch, probe_job
from diag.pod.watch import (
    FATAL_WAITING,
    Launched,
    Phase,
    PodWatch,
    container_state,
    read_result,
    sidecar_kind,
)

__all__ = ["Launched", "delete_run", "run_ephemeral", "run_job"]


def run_job(
    cluster: Cluster,
    run: ProbeRun,
    hosts: list[str],
    *,
    keep: bool = False,
    start_timeout: float = 90.0,
    phase: Phase = lambda _: None,
) -> Launched:
    """Create the run's Job, wait for the probe's result, clean up (unless ``keep``)."""
    ns = run.namespace
    with contextlib.ExitStack() as stack:
        # Cleanup is registered before the create: a Ctrl-C that lands while the create is in
        # flight (the server may already have committed it) must still remove the Job.
        if not keep:
            stack.callback(_shielded, lambda: delete_run(cluster, ns, run.run_id, run.job_name))
        phase("creating the probe pod")
        cluster.request(
            "POST",
            resource_path("batch", "v1", "jobs", ns),
            body=probe_job(run, hosts),
            what=f"create job {ns}/{run.job_name}",
        )
        watcher = PodWatch(cluster, ns, f"{RUN_LABEL}={run.run_id}", run, start_timeout, phase)
        launched = watcher.wait()
        if keep:
            launched.notes.append(
                f"kept the probe pod {ns}/{launched.pod_name} (--keep-pod); remove it with "
                f"`meshprobe cleanup -n {ns}`"
            )
        return launched


def run_ephemeral(
    cluster: Cluster,
    run: ProbeRun,
    pod_name: str,
    *,
    start_timeout: float = 90.0,
    phase: Phase = lambda _: None,
) -> Launched:
    """Add the probe as an ephemeral container to ``pod_name`` and wait for its result."""
    ns = run.namespace
    name = f"meshprobe-{run.run_id}"
    phase(f"adding an ephemeral container to {ns}/{pod_name}")
    cluster.request(
        "PATCH",
        resource_path("", "v1", "pods", ns, pod_name, "ephemeralcontainers"),
        body=ephemeral_patch(run, name),
        content_type="application/strategic-merge-patch+json",
        what=f"patch pods/ephemeralcontainers {ns}/{pod_name}",
    )
    deadline = time.monotonic() + start_timeout + run.deadline_s
    while True:
        pod = cluster.get(resource_path("", "v1", "pods", ns, pod_name), what=f"get pod {ns}/{pod_name}")
        state = container_state(pod, name, "ephemeralContainerStatuses")
        waiting = state.get("waiting") or {}
        if waiting.get("reason") in FATAL_WAITING:
            raise errors.ProbePodFailed(
                f"the ephemeral probe container cannot start: {waiting.get('reason')}: "
                f"{waiting.get('message', '')}".strip()
            )
        if "terminated" in state:
            break
        if time.monotonic() > deadline:
            raise errors.ProbePodFailed(f"no result from the ephemeral container in {ns}/{pod_name} in time")
        phase("probing (ephemeral container)" if "running" in state else "starting the ephemeral container")
        time.sleep(0.1)
    launched = Launched(read_result(cluster, ns, pod_name, name, state), pod_name, pod)
    launched.injected, launched.native = sidecar_kind(pod)
    launched.notes.append(
        f"the probe ran as ephemeral container {name} in {ns}/{pod_name}; Kubernetes "
        "cannot remove ephemeral containers, it stays listed (stopped) until the pod is replaced"
    )
    return launched


def delete_run(
    cluster: Cluster, namespace: str, run_id: str, job_name: str | None, wait_s: float = 15.0
) -> None:
    """Delete a run's Job and pods and wait until the pods are gone (bounded)."""
    if job_name:
        with contextlib.suppress(NotFound):
            cluster.request(
                "DELETE",
                resource_path("batch", "v1", "jobs", namespace, job_name),
                body={"propagationPolicy": "Background"},
                what=f"delete job {namespace}/{job_name}",
            )
    deadline = time.monotonic() + wait_s
    pods_path = resource_path("", "v1", "pods", namespace)
    while True:
        pods = cluster.list(pods_path, label_selector=f"{RUN_LABEL}={run_id}", what="list the run's pods")
        if not pods:
            return
        for pod in pods:
            meta = pod.get("metadata") or {}
            if not meta.get("deletionTimestamp"):
                with contextlib.suppress(NotFound):
                    cluster.request(
                        "DELETE",
                        resource_path("", "v1", "pods", namespace, meta.get("name")),
                        body={"gracePeriodSeconds": 1},
                        what=f"delete pod {namespace}/{meta.get('name')}",
                    )
        if time.monotonic() > deadline:
            raise errors.InfraError(
                f"the probe pods of run {run_id} in {namespace} are still terminating",
                hint=f"they will be collected; or run `meshprobe cleanup -n {namespace}`",
            )
        time.sleep(0.1)


def _shielded(action: Callable[[], None]) -> None:
    """Run ``action`` with SIGINT/SIGTERM held back (cleanup must not be cut short)."""
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    except (ValueError, OSError):
        old = None
    try:
        action()
    except errors.MeshprobeError as exc:  # never mask the run's own outcome with a cleanup error
        import sys

        sys.stderr.write(f"warning: cleanup: {exc.message}\n")
    finally:
        if old is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)


