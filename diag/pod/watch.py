"""Following the probe pod to its result: list then watch the run's pods (a dropped or expired
watch is listed again), verify the pod once it exists, read the probe's JSON from the container
log, and turn every way a pod can fail to start into one clear error (``diag.pod.launcher`` uses it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from diag import errors
from diag.cluster import Cluster, NotFound, WatchExpired, resource_path
from diag.pod.spec import PROBE_CONTAINER, ProbeRun

PROXY = "istio-proxy"
FATAL_WAITING = {
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
}
Phase = Callable[[str], None]


@dataclass
class Launched:
    """What came back from the cluster."""

    result: dict[str, Any] | None
    pod_name: str
    pod: dict[str, Any] = field(default_factory=dict)
    injected: bool = False
    native: bool = False
    notes: list[str] = field(default_factory=list)
    proxy_uid: int | None = None


class PodWatch:
    """Follow the run's pod until its probe container has a result (module docstring)."""

    def __init__(
        self,
        cluster: Cluster,
        namespace: str,
        selector: str,
        run: ProbeRun,
        start_timeout: float,
        phase: Phase,
    ) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.selector = selector
        self.run = run
        self.phase = phase
        self.started = time.monotonic()
        self.start_deadline = self.started + start_timeout
        self.deadline = self.start_deadline + run.deadline_s
        self.verified: Launched | None = None
        self.probe_started = False

    def wait(self) -> Launched:
        path = resource_path("", "v1", "pods", self.namespace)
        while True:
            data = self.cluster.request(
                "GET", path, query={"labelSelector": self.selector}, what=f"list pods in {self.namespace}"
            )
            for pod in data.get("items") or []:
                done = self._consider(pod)
                if done is not None:
                    return done
            if not data.get("items"):
                self._no_pod_yet()
            version = str((data.get("metadata") or {}).get("resourceVersion") or "")
            try:
                for event in self._events(path, version):
                    done = self._consider(event)
                    if done is not None:
                        return done
                    self._check_time()
            except WatchExpired:
                continue
            self._check_time()

    def _events(self, path: str, version: str) -> Iterator[dict[str, Any]]:
        remaining = max(1, int(min(self.deadline - time.monotonic(), 5)))
        query = {
            "labelSelector": self.selector,
            "watch": "true",
            "resourceVersion": version,
            "timeoutSeconds": str(remaining),
            "allowWatchBookmarks": "false",
        }
        for line in self.cluster.stream(
            path, query=query, what=f"watch pods in {self.namespace}", timeout=remaining + 5
        ):
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("type") == "ERROR":
                obj = event.get("object") or {}
                if obj.get("code") == 410:
                    raise WatchExpired(str(obj.get("message")))
                return
            if event.get("type") in ("ADDED", "MODIFIED") and isinstance(event.get("object"), dict):
                yield event["object"]

    def _check_time(self) -> None:
        now = time.monotonic()
        if now > self.deadline:
            raise errors.ProbePodFailed(f"no probe result within {int(now - self.started)} s")

    def _no_pod_yet(self) -> None:
        if time.monotonic() - self.started < 0.5:
            return
        reason = self._job_event()
        if reason is not None:
            raise errors.AdmissionDenied(f"the probe pod was not created: {reason}")
        if time.monotonic() > self.start_deadline:
            raise errors.ProbePodFailed(
                f"the Job {self.namespace}/{self.run.job_name} created no pod in time"
            )

    def _job_event(self) -> str | None:
        try:
            events = (
                self.cluster.request(
                    "GET",
                    resource_path("", "v1", "events", self.namespace),
                    query={"fieldSelector": f"involvedObject.name={self.run.job_name}"},
                    what="list the job's events",
                ).get("items")
                or []
            )
        except (errors.PermissionDenied, NotFound):
            return None
        for event in events:
            if event.get("reason") == "FailedCreate":
                message = str(event.get("message") or "")
                return message.removeprefix("Error creating: ")
        return None

    def _consider(self, pod: dict[str, Any]) -> Launched | None:
        name = str((pod.get("metadata") or {}).get("name"))
        if self.verified is None and pod.get("spec"):
            self.verified = self._verify(pod, name)
        status = pod.get("status") or {}
        state = container_state(pod, PROBE_CONTAINER, "containerStatuses")
        waiting = state.get("waiting") or {}
        if waiting.get("reason") in FATAL_WAITING:
            raise errors.ProbePodFailed(
                f"the probe container cannot start: {waiting.get('reason')}: "
                f"{waiting.get('message', '')}".strip(),
                hint="check --image and the cluster's access to its registry",
            )
        if "terminated" in state:
            launched = self.verified or Launched(None, name)
            launched.pod = pod
            self.phase("reading the probe's result")
            launched.result = read_result(self.cluster, self.namespace, name, PROBE_CONTAINER, state)
            return launched
        if status.get("phase") == "Failed":
            raise errors.ProbePodFailed(
                f"the probe pod {self.namespace}/{name} failed: "
                f"{status.get('reason', '')} {status.get('message', '')}".strip()
            )
        if "running" in state:
            self.phase("probing")
            return None
        self._waiting(pod, name, status)
        return None

    def _waiting(self, pod: dict[str, Any], name: str, status: dict[str, Any]) -> None:
        scheduled = next((c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), None)
        late = time.monotonic() > self.start_deadline
        if scheduled is not None and scheduled.get("status") == "False":
            self.phase("waiting for a node")
            if late:
                raise errors.ProbePodFailed(
                    f"the probe pod was never scheduled: {scheduled.get('message', '')}".strip()
                )
            return
        proxy = container_state(pod, PROXY, "initContainerStatuses") or container_state(
            pod, PROXY, "containerStatuses"
        )
        self.phase("waiting for the sidecar" if proxy else "starting the probe pod")
        if late:
            detail = (
                "the istio-proxy sidecar never became ready" if proxy else "the probe container never started"
            )
            raise errors.ProbePodFailed(
                f"{detail} (pod {self.namespace}/{name}, {int(time.monotonic() - self.started)} s)"
            )

    def _verify(self, pod: dict[str, Any], name: str) -> Launched:
        launched = Launched(None, name, pod)
        launched.injected, launched.native = sidecar_kind(pod)
        launched.proxy_uid = _proxy_uid(pod)
        probe: dict[str, Any] = next(
            (c for c in (pod.get("spec") or {}).get("containers") or [] if c.get("name") == PROBE_CONTAINER),
            {},
        )
        uid = (probe.get("securityContext") or {}).get("runAsUser")
        gid = (probe.get("securityContext") or {}).get("runAsGroup")
        proxy_uid = launched.proxy_uid if launched.proxy_uid is not None else 1337
        if launched.injected and (uid == proxy_uid or gid == proxy_uid):
            raise errors.ProbePodFailed(
                f"the probe pod runs as uid/gid {uid}/{gid}, the sidecar's own identity: its traffic "
                "would bypass the sidecar (an admission policy changed the securityContext?)"
            )
        if self.run.inject and not launched.injected:
            launched.notes.append(
                "no sidecar was injected into the probe pod (namespace/pod injection settings)"
            )
        if launched.injected and launched.native != self.run.native_sidecar:
            kind = "native" if launched.native else "regular"
            launched.notes.append(f"the injector gave a {kind} sidecar, not the one asked for")
        return launched


def container_state(pod: dict[str, Any], name: str, key: str) -> dict[str, Any]:
    for status in (pod.get("status") or {}).get(key) or []:
        if status.get("name") == name:
            return dict(status.get("state") or {})
    return {}


def sidecar_kind(pod: dict[str, Any]) -> tuple[bool, bool]:
    spec = pod.get("spec") or {}
    if any(
        c.get("name") == PROXY and c.get("restartPolicy") == "Always"
        for c in spec.get("initContainers") or []
    ):
        return True, True
    return any(c.get("name") == PROXY for c in spec.get("containers") or []), False


def _proxy_uid(pod: dict[str, Any]) -> int | None:
    spec = pod.get("spec") or {}
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        if container.get("name") == PROXY:
            uid = (container.get("securityContext") or {}).get("runAsUser")
            return int(uid) if uid is not None else None
    return None


def read_result(
    cluster: Cluster, namespace: str, pod: str, container: str, state: dict[str, Any]
) -> dict[str, Any] | None:
    """The probe's JSON line from the container log (the last line that is a probe report)."""
    text = cluster.request(
        "GET",
        resource_path("", "v1", "pods", namespace, pod, "log"),
        query={"container": container},
        raw=True,
        what=f"read the log of {namespace}/{pod} {container}",
    ).decode("utf-8", "replace")
    for line in reversed(text.splitlines()):
        if line.startswith('{"schema": "meshprobe.probe/v1"'):
            try:
                data: dict[str, Any] = json.loads(line)
            except ValueError:
                continue
            return data
    code = (state.get("terminated") or {}).get("exitCode")
    tail = " | ".join(line.strip() for line in text.strip().splitlines()[-3:]) or "no output"
    raise errors.ProbePodFailed(f"the probe exited with code {code} and printed no result: {tail}")
