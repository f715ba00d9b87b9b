"""The Job controller and the TTL-after-finished controller, for batch/v1 Jobs
(pkg/controller/job/job_controller.go, pkg/controller/ttlafterfinished).

Per Job: pods from the template (``generateName: <job>-``, the controller-uid and job-name labels,
a controlling ownerReference), created through admission as the controller's service account; a
refused pod becomes a ``FailedCreate`` Warning Event (``Error creating: <message>``) and a retry
with exponential backoff. Status: ``startTime``, ``active``, ``ready``, ``succeeded``, ``failed``,
conditions ``SuccessCriteriaMet``+``Complete`` or ``FailureTarget``+``Failed`` (reasons
``BackoffLimitExceeded``, ``DeadlineExceeded``) and ``completionTime``. ``activeDeadlineSeconds``
deletes the active pods and fails the Job; a pod deleted before it succeeded counts as failed
(``isPodFailed``: "count deleted Pods as failures to account for orphan Pods that never have a
chance to reach the Failed phase"), so a Job with ``backoffLimit: 0`` whose pod someone deletes fails
instead of making another; ``ttlSecondsAfterFinished`` deletes a finished Job
(Background), after which the garbage collector removes its pods. Backoff here starts at
``backoff_base`` seconds (the real controller starts at 10 s) so that tests stay short.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from lab.apiserver.controllers.base import Worker
from lab.apiserver.defaults import JOB_UID_LABELS, now_rfc3339, parse_rfc3339
from lab.apiserver.errors import ApiError
from lab.apiserver.events import record_event

CONTROLLER_USER = (
    "system:serviceaccount:kube-system:job-controller",
    ("system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"),
)
MESSAGES = {
    "BackoffLimitExceeded": "Job has reached the specified backoff limit",
    "DeadlineExceeded": "Job was active longer than specified deadline",
    "CompletionsReached": "Reached expected number of succeeded pods",
}


def _condition(kind: str, reason: str, now: str) -> dict[str, Any]:
    return {
        "type": kind,
        "status": "True",
        "lastProbeTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": MESSAGES[reason],
    }


def finished_at(job: dict[str, Any]) -> float | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return parse_rfc3339(cond["lastTransitionTime"])
    return None


class JobController(Worker):
    name = "job-controller"
    backoff_base = 0.5
    backoff_cap = 10.0

    def __init__(self, store: Any) -> None:
        super().__init__(store)
        self._counted: dict[str, dict[str, str]] = {}  # job uid -> pod uid -> "Succeeded" | "Failed"
        self._not_before: dict[str, float] = {}  # job uid -> earliest next pod creation
        self._refusals: dict[str, int] = {}  # job uid -> pod creations refused in a row
        self._seen: dict[str, set[str]] = {}  # job uid -> its pods that were active at the last sync

    def wants(self, obj: dict[str, Any]) -> bool:
        if obj.get("kind") == "Job" and obj.get("apiVersion") == "batch/v1":
            return True
        return obj.get("kind") == "Pod" and JOB_UID_LABELS[0] in ((obj["metadata"].get("labels")) or {})

    def handle(self, event_type: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        if obj["kind"] == "Job":
            if event_type == "DELETED":
                for table in (self._counted, self._not_before, self._refusals, self._seen):
                    table.pop(meta["uid"], None)
                return
            self.fire((meta["namespace"], meta["name"]))
            return
        owner = next((r for r in meta.get("ownerReferences") or [] if r.get("kind") == "Job"), None)
        if owner is None:
            return
        if event_type == "DELETED" and (obj.get("status") or {}).get("phase") != "Succeeded":
            job = self.store.get("jobs", meta["namespace"], owner["name"], "batch")
            if job is not None and job["metadata"]["uid"] == owner.get("uid") and finished_at(job) is None:
                self._counted.setdefault(job["metadata"]["uid"], {}).setdefault(meta["uid"], "Failed")
        self.fire((meta["namespace"], owner["name"]))

    def fire(self, key: Any) -> None:
        namespace, name = key
        job = self.store.get("jobs", namespace, name, "batch")
        if job is None or job["metadata"].get("deletionTimestamp"):
            return
        done = finished_at(job)
        if done is not None:
            self._ttl(job, done)
            return
        self._sync(job)

    def _ttl(self, job: dict[str, Any], done: float) -> None:
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        if ttl is None:
            return
        due = done + int(ttl)
        meta = job["metadata"]
        if time.time() >= due:
            with contextlib.suppress(ApiError):
                self.store.delete_object(
                    "jobs",
                    meta["namespace"],
                    meta["name"],
                    "batch",
                    propagation="Background",
                    preconditions={"uid": meta["uid"]},
                )
        else:
            self.after(due - time.time(), (meta["namespace"], meta["name"]))

    def _pods(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        uid = job["metadata"]["uid"]
        return [
            p
            for p in self.store.list("pods", job["metadata"]["namespace"])
            if any(r.get("uid") == uid for r in p["metadata"].get("ownerReferences") or [])
        ]

    def _sync(self, job: dict[str, Any]) -> None:
        meta, spec = job["metadata"], job.get("spec") or {}
        uid, now = meta["uid"], now_rfc3339()
        status = dict(job.get("status") or {})
        if spec.get("suspend"):
            return
        status.setdefault("startTime", now)
        counted = self._counted.setdefault(uid, {})
        pods = self._pods(job)
        # A pod that was active and is gone, before its DELETED event was handled, still failed:
        # without this a sync in between would replace it (the real controller's expectations).
        present = {p["metadata"]["uid"] for p in pods}
        for gone in self._seen.get(uid, set()) - present:
            counted.setdefault(gone, "Failed")
        for pod in pods:
            phase = (pod.get("status") or {}).get("phase")
            if (
                phase != "Succeeded"
                and pod["metadata"].get("deletionTimestamp")
                and _replaces_terminating(job)
            ):
                phase = "Failed"
            if phase in ("Succeeded", "Failed") and pod["metadata"]["uid"] not in counted:
                counted[pod["metadata"]["uid"]] = phase
                if phase == "Failed":  # the next pod waits (the controller's per-Job backoff)
                    failures = sum(1 for v in counted.values() if v == "Failed")
                    self._not_before[uid] = time.monotonic() + self._delay(failures)
        active = [
            p
            for p in pods
            if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
            and not p["metadata"].get("deletionTimestamp")
        ]
        self._seen[uid] = {p["metadata"]["uid"] for p in active}
        succeeded = sum(1 for v in counted.values() if v == "Succeeded")
        failed = sum(1 for v in counted.values() if v == "Failed")
        started = parse_rfc3339(status["startTime"])
        deadline = spec.get("activeDeadlineSeconds")
        reason = None
        if failed > int(spec.get("backoffLimit", 6)):
            reason = "BackoffLimitExceeded"
        elif deadline is not None and time.time() >= started + int(deadline):
            reason = "DeadlineExceeded"
        if reason is not None:
            record_event(self.store, job, "Warning", reason, MESSAGES[reason], "job-controller")
            for pod in active:
                counted[pod["metadata"]["uid"]] = "Failed"
                with contextlib.suppress(ApiError):
                    self.store.delete_object("pods", meta["namespace"], pod["metadata"]["name"])
            failed += len(active)
            active = []
            status["conditions"] = [
                *(status.get("conditions") or []),
                _condition("FailureTarget", reason, now),
                _condition("Failed", reason, now),
            ]
        elif succeeded >= int(spec.get("completions") or 1):
            status["conditions"] = [
                *(status.get("conditions") or []),
                _condition("SuccessCriteriaMet", "CompletionsReached", now),
                _condition("Complete", "CompletionsReached", now),
            ]
            status["completionTime"] = now
            record_event(self.store, job, "Normal", "Completed", "Job completed", "job-controller")
        else:
            active = active + self._create_pods(job, succeeded, len(active))
            if deadline is not None:
                self.after(max(0.0, started + int(deadline) - time.time()), (meta["namespace"], meta["name"]))
        status.update(
            active=len(active),
            succeeded=succeeded,
            failed=failed,
            terminating=0,
            uncountedTerminatedPods={},
            ready=sum(1 for p in active if _ready(p)),
        )
        for key in ("active", "succeeded", "failed"):
            if not status[key]:
                status.pop(key)
        old = job.get("status") or {}
        if status != old:
            patch: dict[str, Any] = {**{key: None for key in old if key not in status}, **status}
            with contextlib.suppress(ApiError):
                self.store.patch_status("jobs", meta["namespace"], meta["name"], patch, "batch")
        if reason is not None or "completionTime" in status:
            done = finished_at(self.store.get("jobs", meta["namespace"], meta["name"], "batch") or job)
            if done is not None:
                self._ttl(job, done)

    def _create_pods(self, job: dict[str, Any], succeeded: int, active: int) -> list[dict[str, Any]]:
        meta, spec = job["metadata"], job.get("spec") or {}
        uid = meta["uid"]
        wanted = min(int(spec.get("parallelism", 1)), int(spec.get("completions") or 1) - succeeded) - active
        wait = self._not_before.get(uid, 0.0) - time.monotonic()
        if wanted <= 0:
            return []
        if wait > 0:
            self.after(wait, (meta["namespace"], meta["name"]))
            return []
        created = []
        template = spec.get("template") or {}
        for _ in range(wanted):
            pod_meta = dict(template.get("metadata") or {})
            pod_meta.update(
                generateName=f"{meta['name']}-",
                namespace=meta["namespace"],
                ownerReferences=[
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": meta["name"],
                        "uid": uid,
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            )
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": pod_meta,
                "spec": template.get("spec") or {},
            }
            try:
                created.append(self.store.create(pod, admission=True, user=CONTROLLER_USER))
                record_event(
                    self.store,
                    job,
                    "Normal",
                    "SuccessfulCreate",
                    f"Created pod: {created[-1]['metadata']['name']}",
                    "job-controller",
                )
            except ApiError as exc:
                record_event(
                    self.store,
                    job,
                    "Warning",
                    "FailedCreate",
                    f"Error creating: {exc.message}",
                    "job-controller",
                )
                refusals = self._refusals[uid] = self._refusals.get(uid, 0) + 1
                self._not_before[uid] = time.monotonic() + self._delay(refusals)
                self.after(self._delay(refusals), (meta["namespace"], meta["name"]))
                break
            self._refusals.pop(uid, None)
        return created

    def _delay(self, failures: int) -> float:
        return float(min(self.backoff_cap, self.backoff_base * 2 ** max(0, failures - 1)))


def _replaces_terminating(job: dict[str, Any]) -> bool:
    """Not ``onlyReplaceFailedPods``: no podFailurePolicy and podReplacementPolicy is not Failed."""
    spec = job.get("spec") or {}
    return not spec.get("podFailurePolicy") and spec.get("podReplacementPolicy") != "Failed"


def _ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
