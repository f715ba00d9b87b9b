"""The Deployment controller (pkg/controller/deployment: deployment_controller.go, sync.go
``getNewReplicaSet``/``syncDeploymentStatus``, progress.go, and util/deployment_util.go).

Per Deployment, on every change to it or to a ReplicaSet of its namespace:

1. **Claim** the namespace's ReplicaSets (adopt orphans matching the selector, release the ones
   that stopped matching; ``lab.apiserver.controllers.claims``).
2. **The new ReplicaSet** is the one whose template equals the Deployment's, ignoring the
   ``pod-template-hash`` label (``EqualIgnoreHash``). Without one, ``<name>-<hash>`` is created: the
   template and the selector carry ``pod-template-hash: <hash>``, a controller ownerReference points
   at the Deployment, annotations ``deployment.kubernetes.io/revision`` (one more than the highest
   old revision), ``desired-replicas`` and ``max-replicas``; a name taken by another template bumps
   ``status.collisionCount`` and the hash with it, as ``controller.ComputeHash`` does. The hash is
   FNV-32a over the template, encoded with ``rand.SafeEncodeString``: the same shape and alphabet as
   the real one, not the same value (the real one hashes Go's in-memory struct).
3. **Scale**: the new ReplicaSet to ``spec.replicas``, the old ones to 0, at once (no staged
   rollout: ``maxSurge``/``maxUnavailable`` only feed ``max-replicas`` and the Available condition);
   ``ScalingReplicaSet`` Events. A paused Deployment is not scaled.
4. **Status**: ``replicas``, ``updatedReplicas``, ``readyReplicas``, ``availableReplicas``,
   ``unavailableReplicas``, ``observedGeneration``, conditions ``Available`` and ``Progressing``
   (their times move only when their status or reason does), written only when it changed.

Old ReplicaSets are kept (no ``revisionHistoryLimit`` clean-up), ``progressDeadlineSeconds`` is
never reported as exceeded, rollbacks are not modelled.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
from typing import Any

from lab.apiserver.controllers.base import Worker
from lab.apiserver.controllers.claims import claim, controlled_by, controller_of, controller_ref, write_status
from lab.apiserver.defaults import now_rfc3339
from lab.apiserver.errors import AlreadyExists, ApiError, Conflict
from lab.apiserver.events import record_event
from lab.apiserver.selectors import selector_matches

COMPONENT = "deployment-controller"
HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX = "deployment.kubernetes.io/max-replicas"
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand


def template_hash(template: dict[str, Any], collision_count: int = 0) -> str:
    """``controller.ComputeHash``: FNV-32a of the template (+ the collision count), safe-encoded."""
    data = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    if collision_count:
        data += collision_count.to_bytes(4, "little")
    value = 2166136261
    for byte in data:
        value = ((value ^ byte) * 16777619) & 0xFFFFFFFF
    return "".join(SAFE_ALPHABET[b % len(SAFE_ALPHABET)] for b in str(value).encode())


def _without_hash(template: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(template)
    labels = (out.get("metadata") or {}).get("labels")
    if labels is not None:
        labels.pop(HASH_LABEL, None)
    return out


def _scaled(value: Any, replicas: int, round_up: bool) -> int:
    """An intOrString (``2`` or ``"25%"``) against ``replicas`` (``GetScaledValueFromIntOrPercent``)."""
    if isinstance(value, str) and value.endswith("%"):
        exact = int(value[:-1]) * replicas / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(value or 0)


def surge_and_unavailable(deployment: dict[str, Any]) -> tuple[int, int]:
    """``ResolveFenceposts``: (maxSurge, maxUnavailable); both 0 for Recreate."""
    spec = deployment.get("spec") or {}
    strategy = spec.get("strategy") or {}
    if strategy.get("type") != "RollingUpdate":
        return 0, 0
    rolling, replicas = strategy.get("rollingUpdate") or {}, int(spec.get("replicas", 1))
    surge = _scaled(rolling.get("maxSurge", "25%"), replicas, True)
    unavailable = _scaled(rolling.get("maxUnavailable", "25%"), replicas, False)
    return surge, (1 if surge == 0 and unavailable == 0 else unavailable)


def _condition(
    old: list[dict[str, Any]], kind: str, status: str, reason: str, message: str
) -> dict[str, Any]:
    now = now_rfc3339()
    previous = next((c for c in old if c.get("type") == kind), None)
    if previous is not None and (previous.get("status"), previous.get("reason"), previous.get("message")) == (
        status,
        reason,
        message,
    ):
        return previous
    kept = (
        previous.get("lastTransitionTime")
        if previous is not None and previous.get("status") == status
        else None
    )
    return {
        "type": kind,
        "status": status,
        "lastUpdateTime": now,
        "lastTransitionTime": kept or now,
        "reason": reason,
        "message": message,
    }


class DeploymentController(Worker):
    name = COMPONENT

    def wants(self, obj: dict[str, Any]) -> bool:
        return obj.get("apiVersion") == "apps/v1" and obj.get("kind") in ("Deployment", "ReplicaSet")

    def handle(self, event_type: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        namespace = meta["namespace"]
        if obj["kind"] == "Deployment":
            if event_type != "DELETED":
                self.fire((namespace, meta["name"]))
            return
        ref = controller_of(obj)
        if ref is not None:
            if ref.get("kind") == "Deployment":
                self.fire((namespace, ref["name"]))
            return
        if event_type == "DELETED":
            return
        for deployment in self.store.list("deployments", namespace, "apps"):
            if selector_matches((deployment.get("spec") or {}).get("selector"), meta.get("labels")):
                self.fire((namespace, deployment["metadata"]["name"]))

    def fire(self, key: Any) -> None:
        namespace, name = key
        deployment = self.store.get("deployments", namespace, name, "apps")
        if deployment is not None and not deployment["metadata"].get("deletionTimestamp"):
            self._sync(deployment)

    def _sync(self, deployment: dict[str, Any]) -> None:
        meta, spec = deployment["metadata"], deployment.get("spec") or {}
        candidates = self.store.list("replicasets", meta["namespace"], "apps")
        owned = claim(self.store, deployment, "replicasets", "apps", candidates, spec.get("selector"))
        owned = [rs for rs in owned if not rs["metadata"].get("deletionTimestamp")]
        template = _without_hash(spec.get("template") or {})
        new = next((rs for rs in owned if _without_hash(rs["spec"].get("template") or {}) == template), None)
        created = False
        if new is None and not spec.get("paused"):
            new = self._create(deployment, owned)
            if new is None:
                return
            created = True
            owned.append(new)
        if not spec.get("paused"):
            owned = [self._scale(deployment, rs, rs is new) for rs in owned]
            new = next(
                (rs for rs in owned if new is not None and rs["metadata"]["uid"] == new["metadata"]["uid"]),
                None,
            )
        if new is not None:
            self._set_revision(deployment, new)
        self._status(deployment, owned, new, created)

    def _create(self, deployment: dict[str, Any], owned: list[dict[str, Any]]) -> dict[str, Any] | None:
        meta, spec = deployment["metadata"], deployment.get("spec") or {}
        collisions = int((deployment.get("status") or {}).get("collisionCount") or 0)
        digest = template_hash(spec.get("template") or {}, collisions)
        template = copy.deepcopy(spec.get("template") or {})
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = digest
        selector = copy.deepcopy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})[HASH_LABEL] = digest
        revision = 1 + max((_revision(rs) for rs in owned), default=0)
        replicas = int(spec.get("replicas", 1))
        name = f"{meta['name']}-{digest}"
        body: dict[str, Any] = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": name,
                "namespace": meta["namespace"],
                "labels": dict(template["metadata"]["labels"]),
                "annotations": {
                    DESIRED: str(replicas),
                    MAX: str(replicas + surge_and_unavailable(deployment)[0]),
                    REVISION: str(revision),
                },
                "ownerReferences": [controller_ref(deployment)],
            },
            "spec": {
                "replicas": replicas,
                "minReadySeconds": int(spec.get("minReadySeconds") or 0),
                "selector": selector,
                "template": template,
            },
        }
        try:
            created: dict[str, Any] = self.store.create(body)
        except AlreadyExists:
            existing: dict[str, Any] | None = self.store.get("replicasets", meta["namespace"], name, "apps")
            same = existing is not None and _without_hash(
                existing["spec"].get("template") or {}
            ) == _without_hash(template)
            if existing is not None and same and controlled_by(existing, deployment):
                return existing
            with contextlib.suppress(ApiError):  # the next sync hashes with the new count
                self.store.patch_status(
                    "deployments", meta["namespace"], meta["name"], {"collisionCount": collisions + 1}, "apps"
                )
            return None
        except ApiError:
            return None
        message = f"Scaled up replica set {created['metadata']['name']} from 0 to {replicas}"
        record_event(self.store, deployment, "Normal", "ScalingReplicaSet", message, COMPONENT)
        return created

    def _scale(self, deployment: dict[str, Any], rs: dict[str, Any], is_new: bool) -> dict[str, Any]:
        spec = deployment.get("spec") or {}
        want = int(spec.get("replicas", 1)) if is_new else 0
        annotations = {
            DESIRED: str(spec.get("replicas", 1)),
            MAX: str(int(spec.get("replicas", 1)) + surge_and_unavailable(deployment)[0]),
        }
        for _ in range(5):
            have = int(rs["spec"].get("replicas", 1))
            current_annotations = rs["metadata"].get("annotations") or {}
            if have == want and all(current_annotations.get(k) == v for k, v in annotations.items()):
                return rs
            rs["spec"]["replicas"] = want
            rs["metadata"]["annotations"] = {**current_annotations, **annotations}
            try:
                updated: dict[str, Any] = self.store.update(rs)
            except Conflict:
                fresh = self.store.get(
                    "replicasets", rs["metadata"]["namespace"], rs["metadata"]["name"], "apps"
                )
                if fresh is None or fresh["metadata"]["uid"] != rs["metadata"]["uid"]:
                    return rs
                rs = fresh
                continue
            except ApiError:
                return rs
            if have != want:
                way = "up" if want > have else "down"
                message = f"Scaled {way} replica set {rs['metadata']['name']} from {have} to {want}"
                record_event(self.store, deployment, "Normal", "ScalingReplicaSet", message, COMPONENT)
            return updated
        return rs

    def _set_revision(self, deployment: dict[str, Any], new: dict[str, Any]) -> None:
        revision = (new["metadata"].get("annotations") or {}).get(REVISION)
        meta = deployment["metadata"]
        if revision is None or (meta.get("annotations") or {}).get(REVISION) == revision:
            return
        meta["annotations"] = {**(meta.get("annotations") or {}), REVISION: revision}
        with contextlib.suppress(ApiError):
            updated = self.store.update(deployment)
            deployment.clear()
            deployment.update(updated)

    def _status(
        self,
        deployment: dict[str, Any],
        owned: list[dict[str, Any]],
        new: dict[str, Any] | None,
        created: bool,
    ) -> None:
        meta, spec = deployment["metadata"], deployment.get("spec") or {}
        old = deployment.get("status") or {}
        wanted = int(spec.get("replicas", 1))

        def total(key: str, sets: list[dict[str, Any]]) -> int:
            return sum(int((rs.get("status") or {}).get(key) or 0) for rs in sets)

        replicas = total("replicas", owned)
        updated = total("replicas", [new] if new is not None else [])
        ready, available = total("readyReplicas", owned), total("availableReplicas", owned)
        status: dict[str, Any] = {"observedGeneration": meta.get("generation", 1)}
        for key, value in (
            ("replicas", replicas),
            ("updatedReplicas", updated),
            ("readyReplicas", ready),
            ("availableReplicas", available),
            ("unavailableReplicas", max(wanted - available, 0)),
            ("collisionCount", int(old.get("collisionCount") or 0)),
        ):
            if value:
                status[key] = value
        conditions = old.get("conditions") or []
        enough = available >= wanted - surge_and_unavailable(deployment)[1]
        available_condition = (
            _condition(
                conditions,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
            )
            if enough
            else _condition(
                conditions,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            )
        )
        name = new["metadata"]["name"] if new is not None else ""
        if created:
            progressing = ("NewReplicaSetCreated", f'Created new replica set "{name}"')
        elif new is not None and updated == wanted == replicas and available == wanted:
            progressing = ("NewReplicaSetAvailable", f'ReplicaSet "{name}" has successfully progressed.')
        else:
            progressing = ("ReplicaSetUpdated", f'ReplicaSet "{name}" is progressing.')
        status["conditions"] = [
            available_condition,
            _condition(conditions, "Progressing", "True", *progressing),
        ]
        write_status(self.store, "deployments", "apps", deployment, status)


def _revision(rs: dict[str, Any]) -> int:
    try:
        return int((rs["metadata"].get("annotations") or {}).get(REVISION, 0))
    except ValueError:
        return 0
