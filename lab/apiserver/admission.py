"""Admission: the request hooks see, the chain (mutating hooks, then validating hooks), and one
ready-made validating hook, ``pod_security_restricted``.

Order as in staging/src/k8s.io/apiserver/pkg/admission (mutating plugins, then validation, then
validating plugins). ``pod_security_restricted`` checks the main rules of the Pod Security
"restricted" profile (staging/src/k8s.io/pod-security-admission/policy/check_*.go) for namespaces
labelled ``pod-security.kubernetes.io/enforce: restricted`` and denies with the message format of
pod-security-admission/admission/admission.go (``violates PodSecurity "restricted:latest": ...``).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lab.apiserver.errors import AdmissionDenied

ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"


@dataclass(frozen=True)
class AdmissionRequest:
    """What a hook sees. For DELETE, ``obj`` and ``old`` are both the object being deleted."""

    operation: str  # CREATE, UPDATE, DELETE, CONNECT
    resource: str
    group: str
    subresource: str
    namespace: str
    name: str
    obj: dict[str, Any]
    old: dict[str, Any] | None
    user: str
    groups: tuple[str, ...] = field(default=())
    kind: str = ""
    dry_run: bool = False


MutatingHook = Callable[[AdmissionRequest], "dict[str, Any] | None"]
ValidatingHook = Callable[[AdmissionRequest], None]


class AdmissionChain:
    """The hooks registered on one API server; ``admit`` runs them in order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.mutating: list[MutatingHook] = []
        self.validating: list[ValidatingHook] = []

    def add_mutating(self, fn: MutatingHook) -> None:
        with self._lock:
            self.mutating.append(fn)

    def add_validating(self, fn: ValidatingHook) -> None:
        with self._lock:
            self.validating.append(fn)

    def admit(self, request: AdmissionRequest) -> dict[str, Any]:
        """The object after every mutating hook; raises AdmissionDenied from any hook."""
        with self._lock:
            mutating, validating = list(self.mutating), list(self.validating)
        obj = request.obj
        for hook in mutating:
            changed = hook(_with(request, obj))
            if changed is not None:
                obj = copy.deepcopy(changed)
        final = _with(request, obj)
        for check in validating:
            check(final)
        return obj


def _with(request: AdmissionRequest, obj: dict[str, Any]) -> AdmissionRequest:
    return AdmissionRequest(
        request.operation,
        request.resource,
        request.group,
        request.subresource,
        request.namespace,
        request.name,
        copy.deepcopy(obj),
        copy.deepcopy(request.old),
        request.user,
        request.groups,
        request.kind,
        request.dry_run,
    )


# ---- Pod Security "restricted" -------------------------------------------------------------------

SAFE_CAPABILITIES = {"NET_BIND_SERVICE"}


def _containers(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [c for key in ("initContainers", "containers", "ephemeralContainers") for c in spec.get(key) or []]


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


def _plural(names: list[str], one: str, many: str) -> str:
    return f"{one if len(names) == 1 else many} {_quoted(names)}"


def restricted_violations(spec: Mapping[str, Any]) -> list[str]:
    """Forbidden reasons in pod-security-admission's wording (check_*.go), in its check order."""
    out: list[str] = []
    pod_sc = spec.get("securityContext") or {}
    containers = _containers(spec)
    host = [f"{k}=true" for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k)]
    if host:
        out.append("host namespaces (" + ", ".join(host) + ")")
    privileged = [c["name"] for c in containers if (c.get("securityContext") or {}).get("privileged")]
    if privileged:
        out.append(
            f"privileged ({_plural(privileged, 'container', 'containers')} must not set "
            "securityContext.privileged=true)"
        )
    escalation = [
        c["name"]
        for c in containers
        if (c.get("securityContext") or {}).get("allowPrivilegeEscalation") is not False
    ]
    if escalation:
        out.append(
            f"allowPrivilegeEscalation != false ({_plural(escalation, 'container', 'containers')} must "
            "set securityContext.allowPrivilegeEscalation=false)"
        )
    no_drop = [
        c["name"]
        for c in containers
        if "ALL" not in (((c.get("securityContext") or {}).get("capabilities") or {}).get("drop") or [])
    ]
    added: list[str] = []
    for c in containers:
        adds = ((c.get("securityContext") or {}).get("capabilities") or {}).get("add") or []
        added.extend(a for a in adds if a not in SAFE_CAPABILITIES and a not in added)
    if no_drop or added:
        parts = []
        if no_drop:
            parts.append(
                f"{_plural(no_drop, 'container', 'containers')} must set "
                'securityContext.capabilities.drop=["ALL"]'
            )
        if added:
            parts.append(
                f"{_plural(added, 'container', 'containers')} must not include "
                f"{_quoted(added)} in securityContext.capabilities.add"
            )
        out.append("unrestricted capabilities (" + "; ".join(parts) + ")")
    pod_non_root = pod_sc.get("runAsNonRoot") is True
    non_root = [
        c["name"]
        for c in containers
        if (c.get("securityContext") or {}).get("runAsNonRoot") is not True
        and not (pod_non_root and (c.get("securityContext") or {}).get("runAsNonRoot") is None)
    ]
    if non_root:
        where = (
            f"pod or {_plural(non_root, 'container', 'containers')} must set "
            "securityContext.runAsNonRoot=true"
            if pod_sc.get("runAsNonRoot") is not False
            else "pod must not set securityContext.runAsNonRoot=false"
        )
        out.append(f"runAsNonRoot != true ({where})")
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    bad_seccomp = []
    for c in containers:
        kind = ((c.get("securityContext") or {}).get("seccompProfile") or {}).get("type") or pod_seccomp
        if kind not in ("RuntimeDefault", "Localhost"):
            bad_seccomp.append(c["name"])
    if bad_seccomp:
        out.append(
            f"seccompProfile (pod or {_plural(bad_seccomp, 'container', 'containers')} must set "
            'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")'
        )
    return out


def pod_security_restricted(
    namespaces: Callable[[str], Mapping[str, str] | None] | Mapping[str, Mapping[str, str]],
) -> ValidatingHook:
    """A validating hook enforcing "restricted" where the namespace's labels ask for it.

    ``namespaces`` gives a namespace's labels: a callable (e.g. reading the store) or a mapping.
    """

    def labels_of(name: str) -> Mapping[str, str]:
        found = namespaces(name) if callable(namespaces) else namespaces.get(name)
        return found or {}

    def check(request: AdmissionRequest) -> None:
        if request.group or request.operation not in ("CREATE", "UPDATE"):
            return
        if request.resource == "pods" and request.subresource not in ("", "ephemeralcontainers"):
            return
        if request.resource != "pods" or labels_of(request.namespace).get(ENFORCE_LABEL) != "restricted":
            return
        reasons = restricted_violations(request.obj.get("spec") or {})
        if reasons:
            raise AdmissionDenied(
                f'pods "{request.name}" is forbidden: violates PodSecurity '
                f'"restricted:latest": ' + ", ".join(reasons)
            )

    return check
