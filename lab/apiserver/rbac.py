"""Authorization: RBAC over the Roles, ClusterRoles and bindings in the store, the bootstrap roles
every cluster starts with, and the real denial message.

Rule matching follows pkg/apis/rbac/v1/evaluation_helpers.go (verbs and groups with ``*``,
``resource/subresource`` and ``*/subresource``, resourceNames, nonResourceURLs with a trailing
``*``); bindings are walked as in plugin/pkg/auth/authorizer/rbac/rbac.go (ClusterRoleBindings,
then RoleBindings of the request's namespace). Bootstrap roles and bindings: a subset of
plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go. The denial message is
staging/src/k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go ``forbiddenMessage``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from lab.apiserver.errors import Forbidden

RBAC = "rbac.authorization.k8s.io"
MASTERS = "system:masters"
DISCOVERY_URLS = [
    "/api",
    "/api/*",
    "/apis",
    "/apis/*",
    "/healthz",
    "/livez",
    "/openapi",
    "/openapi/*",
    "/readyz",
    "/version",
    "/version/",
]
PUBLIC_URLS = ["/healthz", "/livez", "/readyz", "/version", "/version/"]


@dataclass(frozen=True)
class Attributes:
    """One request as the authorizer sees it (authorizer.AttributesRecord)."""

    user: str
    groups: tuple[str, ...]
    verb: str
    resource_request: bool = True
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""


def _role(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRole",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
            "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
        },
        "rules": rules,
    }


def _binding(name: str, role: str, *groups: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
            "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
        },
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": RBAC, "kind": "Group", "name": g} for g in groups],
    }


READ = ["get", "list", "watch"]
WRITE = ["create", "delete", "deletecollection", "patch", "update"]
APPS = ["daemonsets", "deployments", "replicasets", "statefulsets"]
WORKLOADS = [
    "pods",
    "pods/log",
    "pods/status",
    "services",
    "endpoints",
    "configmaps",
    "serviceaccounts",
    "events",
]


def bootstrap_objects() -> list[dict[str, Any]]:
    """The ClusterRoles and ClusterRoleBindings a new cluster has (the ones this stand-in models)."""
    return [
        _role(
            "cluster-admin",
            [
                {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                {"nonResourceURLs": ["*"], "verbs": ["*"]},
            ],
        ),
        _role("system:discovery", [{"nonResourceURLs": DISCOVERY_URLS, "verbs": ["get"]}]),
        _role("system:public-info-viewer", [{"nonResourceURLs": PUBLIC_URLS, "verbs": ["get"]}]),
        _role(
            "system:basic-user",
            [
                {
                    "apiGroups": ["authorization.k8s.io"],
                    "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    "verbs": ["create"],
                },
                {
                    "apiGroups": ["authentication.k8s.io"],
                    "resources": ["selfsubjectreviews"],
                    "verbs": ["create"],
                },
            ],
        ),
        _role(
            "view",
            [
                {"apiGroups": [""], "resources": WORKLOADS, "verbs": READ},
                {"apiGroups": ["batch"], "resources": ["jobs", "jobs/status"], "verbs": READ},
                {"apiGroups": ["apps"], "resources": APPS + [f"{r}/status" for r in APPS], "verbs": READ},
                {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": READ},
            ],
        ),
        _role(
            "edit",
            [
                {"apiGroups": [""], "resources": WORKLOADS, "verbs": READ + WRITE},
                {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": READ + WRITE},
                {"apiGroups": ["apps"], "resources": APPS, "verbs": READ + WRITE},
                {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": READ},
            ],
        ),
        _binding("cluster-admin", "cluster-admin", MASTERS),
        _binding("system:discovery", "system:discovery", "system:authenticated"),
        _binding("system:basic-user", "system:basic-user", "system:authenticated"),
        _binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            "system:authenticated",
            "system:unauthenticated",
        ),
    ]


def _subject_matches(subject: Mapping[str, Any], attrs: Attributes, binding_ns: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return bool(name == attrs.user)
    if kind == "Group":
        return name in attrs.groups
    if kind == "ServiceAccount":
        return attrs.user == f"system:serviceaccount:{subject.get('namespace') or binding_ns}:{name}"
    return False


def rule_allows(rule: Mapping[str, Any], attrs: Attributes) -> bool:
    verbs = rule.get("verbs") or []
    if "*" not in verbs and attrs.verb not in verbs:
        return False
    if not attrs.resource_request:
        return any(
            u == "*" or u == attrs.path or (u.endswith("*") and attrs.path.startswith(u[:-1]))
            for u in rule.get("nonResourceURLs") or []
        )
    groups = rule.get("apiGroups") or []
    if "*" not in groups and attrs.group not in groups:
        return False
    combined = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    resources = rule.get("resources") or []
    if not any(
        r in ("*", combined) or (attrs.subresource and r == f"*/{attrs.subresource}") for r in resources
    ):
        return False
    names = rule.get("resourceNames") or []
    return not names or attrs.name in names


class Authorizer:
    """Decides requests from the RBAC objects in ``store`` (read on every decision)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def _rules(self, attrs: Attributes) -> Iterator[tuple[str, Mapping[str, Any]]]:
        for crb in self.store.list("clusterrolebindings", group=RBAC):
            if any(_subject_matches(s, attrs, "") for s in crb.get("subjects") or []):
                role = self.store.get("clusterroles", None, crb["roleRef"]["name"], RBAC) or {}
                why = (
                    f'ClusterRoleBinding "{crb["metadata"]["name"]}" of ClusterRole '
                    f'"{crb["roleRef"]["name"]}"'
                )
                for rule in role.get("rules") or []:
                    yield why, rule
        if not attrs.namespace:
            return
        for rb in self.store.list("rolebindings", attrs.namespace, group=RBAC):
            ns = rb["metadata"]["namespace"]
            if any(_subject_matches(s, attrs, ns) for s in rb.get("subjects") or []):
                ref = rb["roleRef"]
                role = (
                    self.store.get("roles", ns, ref["name"], RBAC)
                    if ref.get("kind") == "Role"
                    else self.store.get("clusterroles", None, ref["name"], RBAC)
                ) or {}
                why = f'RoleBinding "{rb["metadata"]["name"]}/{ns}" of {ref.get("kind")} "{ref["name"]}"'
                for rule in role.get("rules") or []:
                    yield why, rule

    def decide(self, attrs: Attributes) -> tuple[bool, str]:
        """(allowed, reason) — the reason names the binding, as the RBAC authorizer does."""
        if MASTERS in attrs.groups:
            return True, ""
        for why, rule in self._rules(attrs):
            if rule_allows(rule, attrs):
                return True, f'RBAC: allowed by {why} to User "{attrs.user}"'
        return False, ""

    def check(self, attrs: Attributes) -> None:
        """Raise the real 403 Forbidden when ``attrs`` is not allowed."""
        if not self.decide(attrs)[0]:
            raise Forbidden(attrs.resource, attrs.name, attrs.group, forbidden_message(attrs))


def forbidden_message(attrs: Attributes) -> str:
    if not attrs.resource_request:
        return f'User "{attrs.user}" cannot {attrs.verb} path "{attrs.path}"'
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    head = f'User "{attrs.user}" cannot {attrs.verb} resource "{resource}" in API group "{attrs.group}"'
    if attrs.namespace:
        return f'{head} in the namespace "{attrs.namespace}"'
    return f"{head} at the cluster scope"


def access_review_status(
    authorizer: Authorizer, spec: Mapping[str, Any], user: str, groups: tuple[str, ...]
) -> dict[str, Any]:
    """The ``status`` of a SelfSubjectAccessReview for ``spec``."""
    res = spec.get("resourceAttributes")
    if res is not None:
        attrs = Attributes(
            user,
            groups,
            str(res.get("verb", "")),
            True,
            str(res.get("group", "")),
            str(res.get("resource", "")),
            str(res.get("subresource", "")),
            str(res.get("namespace", "")),
            str(res.get("name", "")),
        )
    else:
        non = spec.get("nonResourceAttributes") or {}
        attrs = Attributes(user, groups, str(non.get("verb", "")), False, path=str(non.get("path", "")))
    allowed, reason = authorizer.decide(attrs)
    status: dict[str, Any] = {"allowed": allowed}
    if reason:
        status["reason"] = reason
    return status
