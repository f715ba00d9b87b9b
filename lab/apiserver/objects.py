"""What the registry does to an object on create, update and delete: metadata ownership, status
and spec resets per subresource, the validation the stand-in models, deletion marking.

Sources: the strategies in pkg/registry/core/pod/strategy.go (status reset on create, the
ephemeralcontainers and status strategies, graceful deletion), pkg/registry/batch/job/strategy.go,
pkg/apis/core/validation/validation.go (``ValidatePodUpdate``, ``ValidatePodEphemeralContainersUpdate``),
pkg/apis/batch/validation/validation.go (the template's restartPolicy) and
pkg/apis/apps/validation/validation.go (a workload's selector: required, not empty, matching the
template's labels, immutable; the template's restartPolicy).
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable
from typing import Any

from lab.apiserver.defaults import (
    apply_defaults,
    default_metadata,
    default_pod_spec,
    generated_name,
    parse_rfc3339,
    rfc3339_at,
)
from lab.apiserver.errors import Invalid
from lab.apiserver.resources import ResourceType

DNS1123 = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
DNS1123_TEXT = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
POD_UPDATE_TEXT = (
    "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,"
    "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)
RBAC_GROUP = "rbac.authorization.k8s.io"  # names are path segments there (system:...)
KEPT_METADATA = (
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "name",
    "namespace",
)


def _stamp(rtype: ResourceType, obj: dict[str, Any]) -> None:
    obj["apiVersion"] = rtype.api_version()
    obj["kind"] = rtype.kind


def prepare_create(rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """A new object as the registry stores it (name generated, metadata and defaults filled in)."""
    _stamp(rtype, obj)
    meta = obj.setdefault("metadata", {})
    if not meta.get("name"):
        if not meta.get("generateName"):
            raise Invalid(
                rtype.kind,
                "",
                rtype.group,
                [("metadata.name", "Required value", "name or generateName is required")],
            )
        meta["name"] = generated_name(str(meta["generateName"]))
    if not rtype.namespaced:
        meta.pop("namespace", None)
    default_metadata(meta, has_spec="." in rtype.group or rtype.group in ("batch", "apps"))
    if rtype.has_status or rtype.kind == "Namespace":
        obj.pop("status", None)
    apply_defaults(rtype.group, rtype.kind, obj)
    return obj


def redefault(rtype: ResourceType, obj: dict[str, Any]) -> None:
    """Default what a mutating admission hook added (an injected container gets its defaults)."""
    apply_defaults(rtype.group, rtype.kind, obj)


def prepare_update(
    rtype: ResourceType, obj: dict[str, Any], current: dict[str, Any], subresource: str
) -> dict[str, Any]:
    """The object an update stores: the subresource decides which part of ``obj`` is taken."""
    if subresource == "status":
        new = copy.deepcopy(current)
        new["status"] = copy.deepcopy(obj.get("status") or {})
        return new
    if subresource == "ephemeralcontainers":
        new = copy.deepcopy(current)
        containers = copy.deepcopy((obj.get("spec") or {}).get("ephemeralContainers") or [])
        new["spec"]["ephemeralContainers"] = containers
        default_pod_spec({"ephemeralContainers": containers})
        if not containers:
            new["spec"].pop("ephemeralContainers")
        return new
    _stamp(rtype, obj)
    meta = obj.setdefault("metadata", {})
    for key in KEPT_METADATA:
        if key in current["metadata"]:
            meta[key] = current["metadata"][key]
        else:
            meta.pop(key, None)
    apply_defaults(rtype.group, rtype.kind, obj)
    if rtype.has_status or rtype.kind == "Namespace":
        obj["status"] = copy.deepcopy(current.get("status"))
        if obj["status"] is None:
            obj.pop("status")
    if "generation" in meta and obj.get("spec") != current.get("spec"):
        meta["generation"] = int(meta["generation"]) + 1
    return obj


def validate(
    rtype: ResourceType, new: dict[str, Any], old: dict[str, Any] | None, subresource: str = ""
) -> None:
    """422 Invalid for the rules the stand-in models."""
    name = new["metadata"]["name"]
    causes: list[tuple[str, str, str]] = []
    if old is None and rtype.group != RBAC_GROUP and not DNS1123.fullmatch(name):
        causes.append(("metadata.name", f'Invalid value: "{name}"', DNS1123_TEXT))
    spec = new.get("spec") or {}
    if rtype.kind == "Pod" and rtype.group == "" and old is None and not spec.get("containers"):
        causes.append(("spec.containers", "Required value", ""))
    if rtype.kind == "Pod" and rtype.group == "" and old is not None:
        causes.extend(_pod_update_causes(spec, old.get("spec") or {}, subresource))
    if rtype.kind == "Job" and rtype.group == "batch":
        policy = ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy")
        if policy not in ("OnFailure", "Never"):
            causes.append(
                (
                    "spec.template.spec.restartPolicy",
                    f'Unsupported value: "{policy}"',
                    'supported values: "OnFailure", "Never"',
                )
            )
    if rtype.group == "apps" and not subresource:
        causes.extend(
            _workload_causes(rtype.kind, spec, (old or {}).get("spec") if old is not None else None)
        )
    if causes:
        raise Invalid(rtype.kind, name, rtype.group, [(f, w, d.rstrip(": ")) for f, w, d in causes])


def _go_labels(labels: dict[str, Any]) -> str:
    """A label map as Go's ``%#v`` prints it in validation messages."""
    return "map[string]string{" + ", ".join(f'"{k}":"{v}"' for k, v in sorted(labels.items())) + "}"


def _go_selector(selector: dict[str, Any]) -> str:
    labels = selector.get("matchLabels")
    shown = _go_labels(labels) if labels else "map[string]string(nil)"
    return f"v1.LabelSelector{{MatchLabels:{shown}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}}"


def _workload_causes(
    kind: str, spec: dict[str, Any], old_spec: dict[str, Any] | None
) -> list[tuple[str, str, str]]:
    """apps/v1: ``ValidateDeploymentSpec`` and its ReplicaSet/StatefulSet/DaemonSet siblings."""
    from lab.apiserver.selectors import selector_matches

    causes: list[tuple[str, str, str]] = []
    selector = spec.get("selector")
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if selector is None:
        causes.append(("spec.selector", "Required value", ""))
    elif not selector.get("matchLabels") and not selector.get("matchExpressions"):
        causes.append(
            (
                "spec.selector",
                f"Invalid value: {_go_selector(selector)}",
                f"empty selector is invalid for {kind.lower()}",
            )
        )
    elif not selector_matches(selector, labels):
        causes.append(
            (
                "spec.template.metadata.labels",
                f"Invalid value: {_go_labels(labels)}",
                "`selector` does not match template `labels`",
            )
        )
    if old_spec is not None and selector is not None and old_spec.get("selector") != selector:
        causes.append(("spec.selector", f"Invalid value: {_go_selector(selector)}", "field is immutable"))
    policy = (template.get("spec") or {}).get("restartPolicy", "Always")
    if policy != "Always":
        causes.append(
            (
                "spec.template.spec.restartPolicy",
                f'Unsupported value: "{policy}"',
                'supported values: "Always"',
            )
        )
    if int(spec.get("replicas") or 0) < 0:
        causes.append(
            ("spec.replicas", f"Invalid value: {spec['replicas']}", "must be greater than or equal to 0")
        )
    return causes


def _pod_update_causes(
    spec: dict[str, Any], old: dict[str, Any], subresource: str
) -> list[tuple[str, str, str]]:
    causes: list[tuple[str, str, str]] = []
    old_ephemeral = {c["name"]: c for c in old.get("ephemeralContainers") or []}
    new_ephemeral = {c["name"]: c for c in spec.get("ephemeralContainers") or []}
    for name, container in old_ephemeral.items():
        if name not in new_ephemeral:
            causes.append(
                (
                    "spec.ephemeralContainers",
                    "Forbidden",
                    f'existing ephemeral containers "{name}" may not be removed\n',
                )
            )
        elif new_ephemeral[name] != container:
            causes.append(
                (
                    "spec.ephemeralContainers",
                    "Forbidden",
                    f'existing ephemeral containers "{name}" may not be changed',
                )
            )
    if causes or subresource:
        return causes
    mutable = ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds", "nodeName")

    def comparable(s: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in s.items() if k not in mutable}
        for key in ("containers", "initContainers"):
            out[key] = [{k: v for k, v in c.items() if k != "image"} for c in s.get(key) or []]
        return out

    if comparable(spec) != comparable(old):
        causes.append(("spec", "Forbidden", POD_UPDATE_TEXT))
    elif old.get("nodeName") and spec.get("nodeName") != old.get("nodeName"):
        causes.append(("spec.nodeName", "Forbidden", POD_UPDATE_TEXT))
    return causes


def mark_deleted(
    rtype: ResourceType, obj: dict[str, Any], propagation: str, grace: int | None, now: Callable[[], str]
) -> dict[str, Any] | None:
    """The object marked for deletion, or None when it goes at once."""
    meta = obj["metadata"]
    finalizers = list(meta.get("finalizers") or [])
    wanted = {"Orphan": "orphan", "Foreground": "foregroundDeletion"}.get(propagation)
    if wanted and wanted not in finalizers and not meta.get("deletionTimestamp"):
        finalizers.append(wanted)
    seconds = 0
    if rtype.kind == "Pod" and not rtype.group:
        spec, phase = obj.get("spec") or {}, (obj.get("status") or {}).get("phase")
        seconds = int(grace if grace is not None else spec.get("terminationGracePeriodSeconds", 30))
        if not spec.get("nodeName") or phase in ("Succeeded", "Failed"):
            seconds = 0
        if seconds == 0 and not finalizers:
            return None
        already = meta.get("deletionGracePeriodSeconds")
        if already is not None and seconds >= int(already):
            seconds = int(already)
    elif rtype.kind == "Namespace" and not rtype.group:
        obj.setdefault("status", {})["phase"] = "Terminating"
        if not (obj.get("spec") or {}).get("finalizers") and not finalizers:
            return None
    elif not finalizers:
        return None
    if not meta.get("deletionTimestamp") or seconds < int(meta.get("deletionGracePeriodSeconds") or 0):
        meta["deletionTimestamp"] = rfc3339_at(time.time() + seconds) if seconds else now()
    meta["deletionGracePeriodSeconds"] = seconds
    if finalizers:
        meta["finalizers"] = finalizers
    return obj


def ready_to_remove(obj: dict[str, Any]) -> bool:
    """An object being deleted whose last finalizer is gone (and whose grace period is over)."""
    meta = obj["metadata"]
    if not meta.get("deletionTimestamp") or meta.get("finalizers"):
        return False
    if obj.get("kind") == "Namespace" and (obj.get("spec") or {}).get("finalizers"):
        return False
    return not meta.get("deletionGracePeriodSeconds")


def deletion_due(obj: dict[str, Any]) -> float | None:
    stamp = obj["metadata"].get("deletionTimestamp")
    return parse_rfc3339(stamp) if stamp else None


def bookmark(rtype: ResourceType, rv: str, initial_end: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"resourceVersion": rv}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    return {"kind": rtype.kind, "apiVersion": rtype.api_version(), "metadata": meta}
