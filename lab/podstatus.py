"""The pod ``status`` the lab's kubelet publishes for a ``lab.podworker.PodWorker``: phase,
conditions (``Ready`` needs every ``readinessGates`` condition True, and conditions others set are
kept, never invented), container and init/ephemeral container states, pod IP
(``pkg/kubelet/status/generate.go``, ``pkg/kubelet/kubelet_pods.go`` in kubernetes/kubernetes)."""

from __future__ import annotations

from typing import Any

from lab.containers import now
from lab.injector import PROXY_CONTAINER


def pod_status(worker: Any) -> dict[str, Any]:
    """The pod's ``status`` as the kubelet reports it (``pkg/kubelet/status/generate.go``)."""
    sidecar_ready = _sidecar_ready(worker)
    statuses = [c.status(c.running()) for c in worker.containers.values()]
    init_statuses: list[dict[str, Any]] = []
    if worker.sidecar is not None:
        proxy = {
            "name": PROXY_CONTAINER,
            "image": worker.sidecar.get("image", ""),
            "imageID": "",
            "ready": sidecar_ready,
            "restartCount": worker.sidecar_restarts,
            "started": "running" in worker.sidecar_state,
            "state": worker.sidecar_state,
        }
        (init_statuses if worker.native else statuses).append(proxy)
    all_ready = bool(statuses) and all(s["ready"] for s in statuses) and (not worker.native or sidecar_ready)
    if (
        worker.containers
        and any(c.proc is not None for c in worker.containers.values())
        and worker.phase == "Pending"
    ):
        worker.phase = "Running"
    conditions = dict(worker.conditions)
    if worker.lab_pod is not None:
        conditions["ContainersReady"] = (
            ("True", None, None) if all_ready else ("False", "ContainersNotReady", None)
        )
        gates = [g.get("conditionType") for g in worker.spec().get("readinessGates") or []]
        gated = [g for g in gates if not _gate_true(worker, str(g))]
        ready = all_ready and not gated
        reason = "ReadinessGatesNotReady" if all_ready and gated else "ContainersNotReady"
        conditions["Ready"] = ("True", None, None) if ready else ("False", reason, None)
    out: dict[str, Any] = {
        "phase": worker.phase,
        "conditions": [
            {
                "type": t,
                "status": s,
                **({"reason": r} if r else {}),
                **({"message": m} if m else {}),
                "lastProbeTime": None,
                "lastTransitionTime": worker.start_time or now(),
            }
            for t, (s, r, m) in conditions.items()
        ]
        + _gate_conditions(worker),
        "qosClass": "Burstable",
    }
    if worker.start_time:
        out["startTime"] = worker.start_time
    if worker.lab_pod is not None:
        out["podIP"] = worker.lab_pod.address
        out["podIPs"] = [{"ip": worker.lab_pod.address}]
        out["hostIP"] = worker.lab_pod.net.gateway
    if statuses:
        out["containerStatuses"] = statuses
    if init_statuses:
        out["initContainerStatuses"] = init_statuses
    if worker.ephemeral:
        out["ephemeralContainerStatuses"] = [c.status(False) for c in worker.ephemeral.values()]
    if worker.reason:
        out["reason"] = worker.reason
    if worker.message:
        out["message"] = worker.message
    return out


def _sidecar_ready(worker: Any) -> bool:
    return worker.sidecar_ready() if "running" in worker.sidecar_state else False


def _gate_true(worker: Any, condition_type: str) -> bool:
    current = worker.kubelet.store.get("pods", worker.namespace, worker.name) or {}
    for cond in (current.get("status") or {}).get("conditions") or []:
        if cond.get("type") == condition_type:
            return bool(cond.get("status") == "True")
    return False


def _gate_conditions(worker: Any) -> list[dict[str, Any]]:
    """Conditions set by others (readiness gates) are kept as they are, never invented."""
    current = worker.kubelet.store.get("pods", worker.namespace, worker.name) or {}
    own = {"PodScheduled", "Initialized", "ContainersReady", "Ready", "PodReadyToStartContainers"}
    return [c for c in (current.get("status") or {}).get("conditions") or [] if c.get("type") not in own]
