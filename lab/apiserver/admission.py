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
ALLOWED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def _containers(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [c for key in ("initContainers", "containers", "ephemeralContainers") for c in spec.get(key) or []]


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


def _plural(names: list[str], one: str, many: str) -> str:
    return f"{one if len(names) == 1 else many} {_quoted(names)}"


def _sc(container: Mapping[str, Any]) -> Mapping[str, Any]:
    return container.get("securityContext") or {}


def _must(names: list[str], rule: str) -> str:
    return f"{_plural(names, 'container', 'containers')} must {rule}"


def restricted_violations(spec: Mapping[str, Any]) -> list[str]:
    """Forbidden reasons in pod-security-admission's wording (policy/check_*.go), ordered by check ID."""
    out: list[str] = []
    pod_sc = spec.get("securityContext") or {}
    containers = _containers(spec)
    escalation = [c["name"] for c in containers if _sc(c).get("allowPrivilegeEscalation") is not False]
    if escalation:
        out.append(
            f"allowPrivilegeEscalation != false ({_must(escalation, 'set')} "
            "securityContext.allowPrivilegeEscalation=false)"
        )
    no_drop = [
        c["name"] for c in containers if "ALL" not in ((_sc(c).get("capabilities") or {}).get("drop") or [])
    ]
    parts = [f'{_must(no_drop, "set")} securityContext.capabilities.drop=["ALL"]'] if no_drop else []
    for c in containers:
        added = [a for a in (_sc(c).get("capabilities") or {}).get("add") or [] if a not in SAFE_CAPABILITIES]
        if added:
            parts.append(
                f"{_must([c['name']], 'not include')} {_quoted(added)} in securityContext.capabilities.add"
            )
    if parts:
        out.append("unrestricted capabilities (" + "; ".join(parts) + ")")
    host = [f"{k}=true" for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k)]
    if host:
        out.append("host namespaces (" + ", ".join(host) + ")")
    privileged = [c["name"] for c in containers if _sc(c).get("privileged")]
    if privileged:
        out.append(f"privileged ({_must(privileged, 'not set')} securityContext.privileged=true)")
    restricted = [
        (str(v.get("name")), kind)
        for v in spec.get("volumes") or []
        for kind in v
        if kind != "name" and kind not in ALLOWED_VOLUMES
    ]
    if restricted:
        uses = ", ".join(f'volume "{name}" uses restricted volume type "{kind}"' for name, kind in restricted)
        out.append(f"restricted volume types ({uses})")
    pod_non_root = pod_sc.get("runAsNonRoot")
    unset = [c["name"] for c in containers if _sc(c).get("runAsNonRoot") is None and pod_non_root is not True]
    explicit_false = [c["name"] for c in containers if _sc(c).get("runAsNonRoot") is False]
    if pod_non_root is False or unset or explicit_false:
        reasons = ["pod must not set securityContext.runAsNonRoot=false"] if pod_non_root is False else []
        if explicit_false:
            reasons.append(f"{_must(explicit_false, 'not set')} securityContext.runAsNonRoot=false")
        if unset and pod_non_root is not False:
            reasons.append(f"pod or {_must(unset, 'set')} securityContext.runAsNonRoot=true")
        out.append("runAsNonRoot != true (" + "; ".join(reasons) + ")")
    root = [c["name"] for c in containers if _sc(c).get("runAsUser") == 0]
    if pod_sc.get("runAsUser") == 0 or root:
        reasons = ["pod must not set runAsUser=0"] if pod_sc.get("runAsUser") == 0 else []
        reasons += [f"{_must(root, 'not set')} runAsUser=0"] if root else []
        out.append("runAsUser=0 (" + "; ".join(reasons) + ")")
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    bad = [
        c["name"]
        for c in containers
        if ((_sc(c).get("seccompProfile") or {}).get("type") or pod_seccomp)
        not in ("RuntimeDefault", "Localhost")
    ]
    if bad:
        out.append(
            f"seccompProfile (pod or {_must(bad, 'set')} securityContext.seccompProfile.type to "
            '"RuntimeDefault" or "Localhost")'
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
