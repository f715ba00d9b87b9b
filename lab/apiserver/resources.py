"""The resource types the stand-in serves: group, versions, plural, kind, scope, verbs, short names.

Built-in types mirror what ``kubectl api-resources`` prints against a 1.32 cluster (apps/v1 without
the ``scale`` subresource); the Istio types
mirror the CRDs in istio/istio manifests/charts/base/files/crd-all.gen.yaml (served versions, short
names, categories). The first version listed is the preferred one (and the one objects are stored
at: a custom resource is stored once and returned at whichever version the request names, as the
apiextensions server does with the ``None`` conversion strategy).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

STANDARD_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
NO_COLLECTION_VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Subresource:
    name: str
    verbs: tuple[str, ...]
    kind: str = ""  # empty: the parent's kind


@dataclass(frozen=True)
class ResourceType:
    """One served resource (all its versions)."""

    group: str
    versions: tuple[str, ...]
    plural: str
    kind: str
    namespaced: bool = True
    verbs: tuple[str, ...] = STANDARD_VERBS
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[Subresource, ...] = ()
    stored: bool = True  # False for the reviews, answered and never stored

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def preferred(self) -> str:
        return self.versions[0]

    def api_version(self, version: str | None = None) -> str:
        version = version or self.preferred
        return f"{self.group}/{version}" if self.group else version

    @property
    def has_status(self) -> bool:
        return any(s.name == "status" for s in self.subresources)

    def subresource(self, name: str) -> Subresource | None:
        return next((s for s in self.subresources if s.name == name), None)


STATUS = Subresource("status", ("get", "patch", "update"))
POD_SUBRESOURCES = (
    Subresource("ephemeralcontainers", ("get", "patch", "update")),
    Subresource("log", ("get",)),
    Subresource("portforward", ("get", "create")),
    STATUS,
)

CORE: tuple[ResourceType, ...] = (
    ResourceType("", ("v1",), "configmaps", "ConfigMap", short_names=("cm",)),
    ResourceType("", ("v1",), "endpoints", "Endpoints", short_names=("ep",)),
    ResourceType("", ("v1",), "events", "Event", short_names=("ev",)),
    ResourceType(
        "",
        ("v1",),
        "namespaces",
        "Namespace",
        namespaced=False,
        verbs=NO_COLLECTION_VERBS,
        short_names=("ns",),
        subresources=(Subresource("finalize", ("update",)), STATUS),
    ),
    ResourceType(
        "", ("v1",), "pods", "Pod", short_names=("po",), categories=("all",), subresources=POD_SUBRESOURCES
    ),
    ResourceType("", ("v1",), "serviceaccounts", "ServiceAccount", short_names=("sa",)),
    ResourceType(
        "",
        ("v1",),
        "services",
        "Service",
        verbs=NO_COLLECTION_VERBS,
        short_names=("svc",),
        categories=("all",),
        subresources=(STATUS,),
    ),
)

APPS: tuple[ResourceType, ...] = tuple(
    ResourceType(
        "apps", ("v1",), plural, kind, short_names=(short,), categories=("all",), subresources=(STATUS,)
    )
    for plural, kind, short in (
        ("daemonsets", "DaemonSet", "ds"),
        ("deployments", "Deployment", "deploy"),
        ("replicasets", "ReplicaSet", "rs"),
        ("statefulsets", "StatefulSet", "sts"),
    )
)
WORKLOAD_KINDS = frozenset(t.kind for t in APPS)

BUILTIN_GROUPS: tuple[ResourceType, ...] = (
    *APPS,
    ResourceType(
        "authentication.k8s.io",
        ("v1",),
        "selfsubjectreviews",
        "SelfSubjectReview",
        namespaced=False,
        verbs=("create",),
        stored=False,
    ),
    ResourceType(
        "authorization.k8s.io",
        ("v1",),
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        namespaced=False,
        verbs=("create",),
        stored=False,
    ),
    ResourceType("batch", ("v1",), "jobs", "Job", categories=("all",), subresources=(STATUS,)),
    ResourceType("discovery.k8s.io", ("v1",), "endpointslices", "EndpointSlice"),
    ResourceType(
        "rbac.authorization.k8s.io", ("v1",), "clusterrolebindings", "ClusterRoleBinding", namespaced=False
    ),
    ResourceType("rbac.authorization.k8s.io", ("v1",), "clusterroles", "ClusterRole", namespaced=False),
    ResourceType("rbac.authorization.k8s.io", ("v1",), "rolebindings", "RoleBinding"),
    ResourceType("rbac.authorization.k8s.io", ("v1",), "roles", "Role"),
)


def _istio(group: str, versions: tuple[str, ...], plural: str, kind: str, *short: str) -> ResourceType:
    category = group.replace(".", "-")
    return ResourceType(
        group,
        versions,
        plural,
        kind,
        short_names=short,
        categories=("istio-io", category),
        subresources=(STATUS,),
    )


NET = "networking.istio.io"
SEC = "security.istio.io"
NET_VERSIONS = ("v1", "v1beta1", "v1alpha3")

ISTIO: tuple[ResourceType, ...] = (
    _istio(NET, ("v1alpha3",), "envoyfilters", "EnvoyFilter"),
    _istio(NET, NET_VERSIONS, "destinationrules", "DestinationRule", "dr"),
    _istio(NET, NET_VERSIONS, "gateways", "Gateway", "gw"),
    _istio(NET, ("v1beta1",), "proxyconfigs", "ProxyConfig"),
    _istio(NET, NET_VERSIONS, "serviceentries", "ServiceEntry", "se"),
    _istio(NET, NET_VERSIONS, "sidecars", "Sidecar"),
    _istio(NET, NET_VERSIONS, "virtualservices", "VirtualService", "vs"),
    _istio(NET, NET_VERSIONS, "workloadentries", "WorkloadEntry", "we"),
    _istio(NET, NET_VERSIONS, "workloadgroups", "WorkloadGroup", "wg"),
    _istio(SEC, ("v1", "v1beta1"), "authorizationpolicies", "AuthorizationPolicy", "ap"),
    _istio(SEC, ("v1", "v1beta1"), "peerauthentications", "PeerAuthentication", "pa"),
    _istio(SEC, ("v1", "v1beta1"), "requestauthentications", "RequestAuthentication", "ra"),
    _istio("telemetry.istio.io", ("v1", "v1alpha1"), "telemetries", "Telemetry", "telemetry"),
    _istio("extensions.istio.io", ("v1alpha1",), "wasmplugins", "WasmPlugin"),
)
ISTIO_GROUPS = frozenset(t.group for t in ISTIO)


class Registry:
    """Lookups over the served types (by path, by apiVersion/kind, by group)."""

    def __init__(self, types: Iterable[ResourceType]) -> None:
        self.types = tuple(types)
        self._by_plural = {(t.group, t.plural): t for t in self.types}
        self._by_kind = {(t.group, t.kind): t for t in self.types}

    @classmethod
    def default(cls, istio_crds: bool) -> Registry:
        return cls(CORE + BUILTIN_GROUPS + (ISTIO if istio_crds else ()))

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        rtype = self._by_plural.get((group, plural))
        return rtype if rtype is not None and version in rtype.versions else None

    def by_plural(self, group: str, plural: str) -> ResourceType | None:
        return self._by_plural.get((group, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        rtype = self._by_kind.get((group, kind))
        return rtype if rtype is not None and version in rtype.versions else None

    def groups(self) -> list[tuple[str, tuple[str, ...]]]:
        """Each named group with its versions, preferred first (discovery order)."""
        out: dict[str, list[str]] = {}
        for rtype in self.types:
            if rtype.group:
                versions = out.setdefault(rtype.group, [])
                versions.extend(v for v in rtype.versions if v not in versions)
        return [(g, tuple(sorted(vs, key=version_priority))) for g, vs in out.items()]

    def in_version(self, group: str, version: str) -> list[ResourceType]:
        return sorted(
            (t for t in self.types if t.group == group and version in t.versions), key=lambda t: t.plural
        )


def version_priority(version: str) -> tuple[int, int, int]:
    """Kubernetes version ordering (GA > beta > alpha, then higher numbers first), as a sort key."""
    import re

    match = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if match is None:
        return (3, 0, 0)
    level = {"": 0, "beta": 1, "alpha": 2}[match.group(2) or ""]
    return (level, -int(match.group(1)), -int(match.group(3) or 0))
