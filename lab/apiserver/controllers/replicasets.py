"""The ReplicaSet controller (pkg/controller/replicaset/replica_set.go, ``syncReplicaSet`` and
``manageReplicas``; status from replica_set_utils.go ``calculateStatus``).

Per ReplicaSet, on every change to it or to a pod of its namespace:

1. **Claim** the namespace's active pods (not Succeeded/Failed, not being deleted;
   ``controller.FilterActivePods``) with ``lab.apiserver.controllers.claims``: orphans matching the
   selector are *adopted*, owned pods that stopped matching are released.
2. **Manage**: fewer pods than ``spec.replicas`` → pods from the template (``generateName:
   <rs>-``, the template's labels and annotations, a controller ownerReference;
   ``controller.GetPodFromTemplate``), created through admission as the controller's service
   account, so the sidecar injector sees them; more → the surplus is deleted, worst first as
   ``controller.ActivePodsWithRanks`` orders them: unscheduled, then Pending before Running, not
   Ready before Ready, Ready for less time, more restarts, newer. An adopted stranger therefore
   makes the ReplicaSet delete a pod. A refused create is a ``FailedCreate`` Warning Event and the
   ``ReplicaFailure`` condition, retried with backoff.
3. **Status**: ``replicas``, ``fullyLabeledReplicas``, ``readyReplicas``, ``availableReplicas``
   (Ready for ``minReadySeconds``), ``observedGeneration``; written only when it changed.

No expectations are needed: the store answers with the pods just created or deleted.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from lab.apiserver.controllers.base import Worker
from lab.apiserver.controllers.claims import claim, controller_of, controller_ref, write_status
from lab.apiserver.defaults import now_rfc3339, parse_rfc3339
from lab.apiserver.errors import ApiError
from lab.apiserver.events import record_event
from lab.apiserver.selectors import selector_matches

COMPONENT = "replicaset-controller"
CONTROLLER_USER = (
    "system:serviceaccount:kube-system:replicaset-controller",
    ("system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"),
)
BURST = 500  # burstReplicas: at most this many creates or deletes per sync
PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def is_active(pod: dict[str, Any]) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp")


def ready_since(pod: dict[str, Any]) -> float | None:
    """When the pod's Ready condition turned True (None when it is not Ready)."""
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            if cond.get("status") != "True":
                return None
            stamp = cond.get("lastTransitionTime")
            return parse_rfc3339(stamp) if stamp else 0.0
    return None


def deletion_rank(pod: dict[str, Any]) -> tuple[Any, ...]:
    """Sort key: the pods to delete first come first (``ActivePodsWithRanks.Less``)."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    since = ready_since(pod)
    restarts = max(
        (int(c.get("restartCount") or 0) for c in status.get("containerStatuses") or []), default=0
    )
    created = pod["metadata"].get("creationTimestamp")
    return (
        1 if spec.get("nodeName") else 0,
        PHASE_RANK.get(str(status.get("phase")), 1),
        0 if since is None else 1,
        -(since or 0.0),
        -restarts,
        -(parse_rfc3339(created) if created else float("inf")),
        pod["metadata"]["name"],
    )


def pod_from_template(owner: dict[str, Any], template: dict[str, Any]) -> dict[str, Any]:
    """``controller.GetPodFromTemplate``."""
    tmeta = template.get("metadata") or {}
    meta: dict[str, Any] = {
        "generateName": f"{owner['metadata']['name']}-",
        "namespace": owner["metadata"]["namespace"],
        "labels": dict(tmeta.get("labels") or {}),
        "annotations": dict(tmeta.get("annotations") or {}),
        "ownerReferences": [controller_ref(owner)],
    }
    if tmeta.get("finalizers"):
        meta["finalizers"] = list(tmeta["finalizers"])
    if not meta["annotations"]:
        del meta["annotations"]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template.get("spec") or {}}


class ReplicaSetController(Worker):
    name = COMPONENT
    backoff_base = 0.5
    backoff_cap = 10.0

    def __init__(self, store: Any) -> None:
        super().__init__(store)
        self._refusals: dict[str, int] = {}  # ReplicaSet uid -> creates refused in a row
        self._not_before: dict[str, float] = {}  # ReplicaSet uid -> earliest next create
        self._failure: dict[str, str] = {}  # ReplicaSet uid -> why the last create was refused
        self._owner: dict[str, tuple[str, str]] = {}  # pod uid -> (namespace, ReplicaSet) last seen

    def wants(self, obj: dict[str, Any]) -> bool:
        kind, api_version = obj.get("kind"), obj.get("apiVersion")
        return (kind == "ReplicaSet" and api_version == "apps/v1") or (kind == "Pod" and api_version == "v1")

    def handle(self, event_type: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        namespace = meta["namespace"]
        if obj["kind"] == "ReplicaSet":
            if event_type == "DELETED":
                for table in (self._refusals, self._not_before, self._failure):
                    table.pop(meta["uid"], None)
            else:
                self.fire((namespace, meta["name"]))
            return
        names = set()
        previous = self._owner.pop(meta["uid"], None)
        if previous is not None:
            names.add(previous[1])
        ref = controller_of(obj)
        if ref is not None and ref.get("kind") == "ReplicaSet":
            names.add(str(ref["name"]))
        elif ref is None and event_type != "DELETED":
            labels = meta.get("labels") or {}
            for rs in self.store.list("replicasets", namespace, "apps"):
                if selector_matches((rs.get("spec") or {}).get("selector"), labels):
                    names.add(rs["metadata"]["name"])
        for name in sorted(names):
            self.fire((namespace, name))

    def fire(self, key: Any) -> None:
        namespace, name = key
        rs = self.store.get("replicasets", namespace, name, "apps")
        if rs is not None:
            self._sync(rs)

    def _sync(self, rs: dict[str, Any]) -> None:
        meta, spec = rs["metadata"], rs.get("spec") or {}
        candidates = [p for p in self.store.list("pods", meta["namespace"]) if is_active(p)]
        pods = claim(self.store, rs, "pods", "", candidates, spec.get("selector"))
        for pod in pods:
            self._owner[pod["metadata"]["uid"]] = (meta["namespace"], meta["name"])
        failure = None
        if not meta.get("deletionTimestamp"):
            failure = self._manage(rs, pods)
        self._write_status(rs, pods, failure)

    def _manage(self, rs: dict[str, Any], pods: list[dict[str, Any]]) -> str | None:
        """Create or delete pods; returns the error message of a refused create."""
        meta, spec = rs["metadata"], rs.get("spec") or {}
        diff = len(pods) - int(spec.get("replicas", 1))
        if diff > 0:
            for pod in sorted(pods, key=deletion_rank)[: min(diff, BURST)]:
                name = pod["metadata"]["name"]
                try:
                    self.store.delete_object(
                        "pods", meta["namespace"], name, preconditions={"uid": pod["metadata"]["uid"]}
                    )
                except ApiError as exc:
                    if exc.code != 404:
                        record_event(
                            self.store,
                            rs,
                            "Warning",
                            "FailedDelete",
                            f"Error deleting: {exc.message}",
                            COMPONENT,
                        )
                    continue
                record_event(self.store, rs, "Normal", "SuccessfulDelete", f"Deleted pod: {name}", COMPONENT)
            return None
        if diff == 0:
            self._refusals.pop(meta["uid"], None)
            self._failure.pop(meta["uid"], None)
            return None
        wait = self._not_before.get(meta["uid"], 0.0) - time.monotonic()
        if wait > 0:
            self.after(wait, (meta["namespace"], meta["name"]))
            return self._failure.get(meta["uid"])
        for _ in range(min(-diff, BURST)):
            try:
                created = self.store.create(
                    pod_from_template(rs, spec.get("template") or {}), admission=True, user=CONTROLLER_USER
                )
            except ApiError as exc:
                message = f"Error creating: {exc.message}"
                record_event(self.store, rs, "Warning", "FailedCreate", message, COMPONENT)
                refusals = self._refusals[meta["uid"]] = self._refusals.get(meta["uid"], 0) + 1
                delay = min(self.backoff_cap, self.backoff_base * 2 ** (refusals - 1))
                self._not_before[meta["uid"]] = time.monotonic() + delay
                self.after(delay, (meta["namespace"], meta["name"]))
                self._failure[meta["uid"]] = message
                return message
            self._refusals.pop(meta["uid"], None)
            self._failure.pop(meta["uid"], None)
            name = created["metadata"]["name"]
            record_event(self.store, rs, "Normal", "SuccessfulCreate", f"Created pod: {name}", COMPONENT)
        return None

    def _write_status(self, rs: dict[str, Any], pods: list[dict[str, Any]], failure: str | None) -> None:
        meta, spec = rs["metadata"], rs.get("spec") or {}
        template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        now = time.time()
        labeled = ready = available = 0
        for pod in pods:
            labels = pod["metadata"].get("labels") or {}
            labeled += all(labels.get(k) == v for k, v in template_labels.items())
            since = ready_since(pod)
            if since is None:
                continue
            ready += 1
            if since + min_ready <= now:
                available += 1
            else:
                self.after(since + min_ready - now, (meta["namespace"], meta["name"]))
        old = rs.get("status") or {}
        status: dict[str, Any] = {"replicas": len(pods)}
        for key, value in (
            ("fullyLabeledReplicas", labeled),
            ("readyReplicas", ready),
            ("availableReplicas", available),
        ):
            if value:
                status[key] = value
        status["observedGeneration"] = meta.get("generation", 1)
        conditions = [c for c in old.get("conditions") or [] if c.get("type") != "ReplicaFailure"]
        if failure is not None:
            previous: dict[str, Any] = next(
                (c for c in old.get("conditions") or [] if c.get("type") == "ReplicaFailure"), {}
            )
            conditions.append(
                {
                    "type": "ReplicaFailure",
                    "status": "True",
                    "reason": "FailedCreate",
                    "message": failure,
                    "lastTransitionTime": previous.get("lastTransitionTime") or now_rfc3339(),
                }
            )
        if conditions:
            status["conditions"] = conditions
        with contextlib.suppress(ApiError):
            write_status(self.store, "replicasets", "apps", rs, status)
