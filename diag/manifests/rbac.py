"""Least-privilege RBAC for ``check``, ``explain``/``lint`` reading a live cluster, and
``cleanup`` (``docs/rbac.md``). The cluster-wide reads come from the kinds ``diag.live.meshread``
lists; the probe namespace's rights from what ``diag.pod.launcher`` and ``diag.pod.cleanup`` call.

- ClusterRole ``meshprobe-mesh-reader``, bound cluster-wide: list the mesh config everywhere
  (entries exported from other namespaces apply to the source's);
- Role ``meshprobe-istio-config`` in Istio's root namespace: the mesh ConfigMap, istiod's
  Deployment;
- ClusterRole ``meshprobe-prober``, bound per probe namespace with a RoleBinding (or
  cluster-wide with ``all_namespaces``): the per-run Job and its pod, ``--from``, ``--like``,
  cleanup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from diag import errors
from diag.live.meshread import CORE_KINDS, ISTIO_KINDS, ROOT_NAMESPACE
from diag.manifests.common import DEFAULT_NAMESPACE, DEFAULT_SERVICE_ACCOUNT, check_label, meta

RBAC_GROUP = "rbac.authorization.k8s.io"
DEFAULT_GROUP = "meshprobe-users"
MESH_READER = "meshprobe-mesh-reader"
ISTIO_CONFIG = "meshprobe-istio-config"
PROBER = "meshprobe-prober"


@dataclass(frozen=True)
class Rule:
    """One RBAC rule and what needs it (printed as a comment above the rule)."""

    group: str
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    why: str
    names: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "apiGroups": [self.group],
            "resources": list(self.resources),
            "verbs": list(self.verbs),
        }
        if self.names:
            out["resourceNames"] = list(self.names)
        return out


def _istio_rules() -> list[Rule]:
    by_group: dict[str, list[tuple[str, str]]] = {}
    for group, resource, kind in ISTIO_KINDS:
        by_group.setdefault(group, []).append((resource, kind))
    return [
        Rule(
            group,
            tuple(r for r, _ in kinds),
            ("list",),
            f"check, explain, lint: {', '.join(k for _, k in kinds)} (the mesh config predictions use)",
        )
        for group, kinds in sorted(by_group.items())
    ]


def mesh_reader_rules() -> list[Rule]:
    """Cluster-wide reads: the mesh config (``diag.live.meshread``), listed in every namespace because
    entries exported from other namespaces apply to the source's."""
    core = [
        Rule(group, (resource,), ("list",), f"check, explain, lint: {kind}s (hosts, ports, addresses)")
        for group, _, resource, kind in CORE_KINDS
    ]
    return [
        *_istio_rules(),
        *core,
        Rule("", ("namespaces",), ("list",), "check, explain, lint: namespace labels (injection, ambient)"),
        Rule(
            "authorization.k8s.io",
            ("selfsubjectaccessreviews",),
            ("create",),
            "cleanup --dry-run: may the removal happen? (kubectl auth can-i asks the same)",
        ),
    ]


def istio_config_rules(revisions: Sequence[str] = ()) -> list[Rule]:
    """In Istio's root namespace: the mesh config and the istiod Deployment (its version)."""
    names = ("istio", *(f"istio-{r}" for r in revisions if r and r != "default"))
    return [
        Rule(
            "",
            ("configmaps",),
            ("get",),
            "check, explain, lint: MeshConfig (outboundTrafficPolicy, ...)",
            names,
        ),
        Rule(
            "apps", ("deployments",), ("list",), "check, explain, lint: istiod's Deployment (Istio version)"
        ),
    ]


def prober_rules() -> list[Rule]:
    """In each probe namespace: the per-run Job and its pod, ``--from``, ``--like``, cleanup."""
    return [
        Rule("batch", ("jobs",), ("create", "list", "delete"), "check: the per-run Job; cleanup: leftovers"),
        Rule(
            "",
            ("pods",),
            ("get", "list", "watch", "delete"),
            "check: follow the probe pod, read --from/--like pods; cleanup: leftovers",
        ),
        Rule("", ("pods/log",), ("get",), "check: the probe's JSON result is its container log"),
        Rule(
            "", ("pods/ephemeralcontainers",), ("patch",), "check --from: the probe as an ephemeral container"
        ),
        Rule("", ("events",), ("list",), "check: quote why the Job could not create its pod (FailedCreate)"),
        Rule(
            "apps",
            ("deployments", "statefulsets", "daemonsets"),
            ("get",),
            "check --like: the workload's template",
        ),
    ]


@dataclass(frozen=True)
class Subjects:
    """Who the bindings grant the roles to."""

    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    service_accounts: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [{"apiGroup": RBAC_GROUP, "kind": "User", "name": u} for u in self.users]
        out += [{"apiGroup": RBAC_GROUP, "kind": "Group", "name": g} for g in self.groups]
        out += [{"kind": "ServiceAccount", "name": n, "namespace": ns} for ns, n in self.service_accounts]
        return out


def default_subjects(namespace: str = DEFAULT_NAMESPACE) -> Subjects:
    """A group for people, and the CronJob's ServiceAccount."""
    return Subjects(groups=(DEFAULT_GROUP,), service_accounts=((namespace, DEFAULT_SERVICE_ACCOUNT),))


def _role(kind: str, name: str, rules: list[Rule], namespace: str | None = None) -> dict[str, Any]:
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": kind,
        "metadata": meta(name, namespace),
        "rules": [r.to_json() for r in rules],
    }


def _binding(
    kind: str, name: str, role_kind: str, subjects: Subjects, namespace: str | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": kind,
        "metadata": meta(name, namespace),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": role_kind, "name": name},
        "subjects": subjects.to_json(),
    }


def rbac(
    namespaces: Sequence[str] = (DEFAULT_NAMESPACE,),
    subjects: Subjects | None = None,
    *,
    revisions: Sequence[str] = (),
    all_namespaces: bool = False,
) -> list[dict[str, Any]]:
    """The RBAC objects (module docstring); ``namespaces`` are where probes run."""
    for ns in [*namespaces, *revisions]:
        check_label(ns, "namespace" if ns in namespaces else "revision")
    if not namespaces and not all_namespaces:
        raise errors.UsageError("rbac: give at least one probe namespace (-n NS) or --all-namespaces")
    who = (
        subjects
        if subjects is not None
        else default_subjects(namespaces[0] if namespaces else DEFAULT_NAMESPACE)
    )
    if not who.to_json():
        raise errors.UsageError("rbac: no subjects to bind (--user, --group or --service-account)")
    objects = [
        _role("ClusterRole", MESH_READER, mesh_reader_rules()),
        _binding("ClusterRoleBinding", MESH_READER, "ClusterRole", who),
        _role("Role", ISTIO_CONFIG, istio_config_rules(revisions), ROOT_NAMESPACE),
        _binding("RoleBinding", ISTIO_CONFIG, "Role", who, ROOT_NAMESPACE),
        _role("ClusterRole", PROBER, prober_rules()),
    ]
    if all_namespaces:
        objects.append(_binding("ClusterRoleBinding", PROBER, "ClusterRole", who))
    else:
        objects += [
            _binding("RoleBinding", PROBER, "ClusterRole", who, ns) for ns in dict.fromkeys(namespaces)
        ]
    return objects


def rule_comments(revisions: Sequence[str] = ()) -> dict[str, list[str]]:
    """Which rule list each role of ``rbac`` was built from (for the comments)."""
    return {
        f"ClusterRole/{MESH_READER}": [r.why for r in mesh_reader_rules()],
        f"Role/{ISTIO_CONFIG}": [r.why for r in istio_config_rules(revisions)],
        f"ClusterRole/{PROBER}": [r.why for r in prober_rules()],
    }


GATEWAY_PORTFORWARD = "meshprobe-gateway-portforward"
GATEWAY_NAMESPACE = "istio-system"


def gateway_portforward_rules() -> list[Rule]:
    """The optional Role's one rule (``gateway_portforward``)."""
    return [
        Rule(
            "",
            ("pods/portforward",),
            ("get", "create"),
            "OPTIONAL check: the egress gateway's config_dump (admin port 15000) for actual.gateway",
        )
    ]


def gateway_portforward(subjects: Subjects, namespace: str = GATEWAY_NAMESPACE) -> list[dict[str, Any]]:
    """OPTIONAL, never in ``rbac``'s objects: ``pods/portforward`` in the egress gateway's namespace,
    so ``check`` reads the gateway's own config (its admin port) for ``actual.gateway``. A websocket
    port-forward is a GET that the API server also authorizes as ``create``."""
    return [
        _role("Role", GATEWAY_PORTFORWARD, gateway_portforward_rules(), namespace),
        _binding("RoleBinding", GATEWAY_PORTFORWARD, "Role", subjects, namespace),
    ]
