"""The workloads the manifests hold: the probe pod ``meshprobe check`` runs (``diag.pod.spec``),
as a standalone Pod, and a CronJob running ``meshprobe check`` in the cluster on a schedule."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from diag import errors
from diag.manifests.common import (
    DEFAULT_NAMESPACE,
    DEFAULT_SERVICE_ACCOUNT,
    DEFAULT_TARGETS,
    PART_OF,
    check_label,
    meta,
    target_hosts,
)
from diag.pod.image import PROBE_IMAGE
from diag.pod.spec import ProbeRun, container_security, pod_security, pod_template

DEFAULT_SCHEDULE = "*/30 * * * *"
CLI_REPOSITORY = "ghcr.io/meshprobe/meshprobe-cli"
SMOKE = "meshprobe-smoke"
EXIT_LINE = "meshprobe exit status:"
# The CronJob's container: run meshprobe with the arguments, forward SIGTERM/SIGINT to it (so
# that it deletes its probe Job when the Job's deadline stops the pod), and end the log with the
# exit status. ``wait`` returns early when a trapped signal arrives: wait again while it runs.
WRAPPER = (
    'meshprobe "$@" & child=$!\n'
    "trap 'kill -TERM \"$child\" 2>/dev/null' TERM INT\n"
    'while :; do wait "$child"; status=$?; kill -0 "$child" 2>/dev/null || break; done\n'
    f'echo "{EXIT_LINE} $status" >&2\n'
    'exit "$status"\n'
)
_SCHEDULE_FIELD = re.compile(r"^[0-9A-Za-z*/,?-]+$")
_SCHEDULE_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}


def example_plan(targets: Sequence[str], *, native: bool) -> dict[str, Any]:
    """The plan a ``check`` of ``targets`` hands the probe (``docs/probe.md``), for the example pod."""
    return {
        "schema": "meshprobe.plan/v1",
        "targets": [{"target": t, "expect": "allowed"} for t in targets],
        "options": {"timeout": 5.0},
        "sidecar": {"mode": "auto", "quit": not native, "native": native},
    }


def probe_pod(
    namespace: str = DEFAULT_NAMESPACE,
    image: str = PROBE_IMAGE,
    targets: Sequence[str] = DEFAULT_TARGETS,
    *,
    native: bool = True,
) -> dict[str, Any]:
    """The pod ``meshprobe check`` runs (``diag.pod.spec.pod_template``), as a standalone Pod
    named ``meshprobe-example`` (run id ``example``): ``kubectl apply`` it, read the result with
    ``kubectl logs``, and ``meshprobe cleanup`` removes it once it has finished."""
    check_label(namespace, "namespace")
    hosts = target_hosts(targets)
    run = ProbeRun("example", namespace, image, example_plan(targets, native=native), native_sidecar=native)
    template = pod_template(run, hosts)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": run.job_name, "namespace": namespace, **template["metadata"]},
        "spec": template["spec"],
    }


def cronjob(
    namespace: str = DEFAULT_NAMESPACE,
    *,
    cli_image: str | None = None,
    probe_image: str = PROBE_IMAGE,
    schedule: str = DEFAULT_SCHEDULE,
    targets: Sequence[str] = DEFAULT_TARGETS,
    service_account: str = DEFAULT_SERVICE_ACCOUNT,
) -> list[dict[str, Any]]:
    """A ServiceAccount and a CronJob whose Job runs ``meshprobe check TARGETS -o json`` in
    ``namespace``: the report and a last line ``meshprobe exit status: N`` land in the Job's log,
    and the Job fails when the check does (exit status other than 0). Its pod asks for a native
    sidecar, which stops by itself once meshprobe exits, so the Job completes."""
    from probes import __version__

    check_label(namespace, "namespace")
    check_label(service_account, "service account")
    check_schedule(schedule)
    target_hosts(targets)
    image = cli_image or f"{CLI_REPOSITORY}:{__version__}"
    labels = {"app.kubernetes.io/name": SMOKE, **PART_OF}  # never managed-by: cleanup must not touch it
    container: dict[str, Any] = {
        "name": "meshprobe",
        "image": image,
        "command": ["/bin/sh", "-c", WRAPPER, "meshprobe"],
        "args": ["check", *targets, "-n", namespace, "--image", probe_image, "-o", "json"],
        "env": [
            {"name": "HOME", "value": "/tmp"},
            {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
            {"name": "PYTHONUNBUFFERED", "value": "1"},
            {"name": "NO_COLOR", "value": "1"},
        ],
        "securityContext": container_security(),
        "resources": {
            "requests": {"cpu": "50m", "memory": "128Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    pod_spec: dict[str, Any] = {
        "serviceAccountName": service_account,
        "automountServiceAccountToken": True,  # meshprobe talks to the API server
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 30,  # time to delete its probe Job
        "securityContext": pod_security(),
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}}],
        "enableServiceLinks": False,
    }
    annotations = {
        "sidecar.istio.io/nativeSidecar": "true",
        "proxy.istio.io/config": json.dumps({"holdApplicationUntilProxyStarts": True}),
    }
    job_spec = {
        "backoffLimit": 0,
        "activeDeadlineSeconds": 600,
        "template": {"metadata": {"labels": dict(labels), "annotations": annotations}, "spec": pod_spec},
    }
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(service_account, namespace)}
    job = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": SMOKE, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "schedule": schedule,
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {"metadata": {"labels": dict(labels)}, "spec": job_spec},
        },
    }
    return [account, job]


def check_schedule(schedule: str) -> None:
    """A cron schedule the CronJob controller can parse: five fields, or a macro."""
    text = schedule.strip()
    if text in _SCHEDULE_MACROS or (text.startswith("@every ") and len(text) > 7):
        return
    fields = text.split()
    if len(fields) != 5 or not all(_SCHEDULE_FIELD.match(f) for f in fields):
        raise errors.UsageError(
            f"--schedule {schedule!r}: expected five cron fields (minute hour day month weekday) "
            "or a macro such as @hourly"
        )
