"""Read the live mesh config through ``diag.cluster`` (read-only): what ``check``, and ``explain``
/ ``lint`` without ``--config``, predict from.

- Istio kinds in the version the cluster serves (v1, else v1beta1, else v1alpha3: discovery of
  ``/apis/<group>``; EnvoyFilter at v1alpha3 and WasmPlugin at v1alpha1, the only versions their
  CRDs have); a group the cluster does not serve means Istio's CRDs are not installed,
  which is a note, not an error (probing still runs).
- Kubernetes Services, EndpointSlices and Namespaces (labels: injection, ambient, discovery
  selectors).
- Lists are cluster-wide; when the authorizer forbids that, the namespaces that matter (the
  sources and Istio's root namespace) are read one by one, and the report says so: entries
  exported from other namespaces are then unseen.
- MeshConfig from the ``istio`` / ``istio-<rev>`` ConfigMap in istiod's namespace; the istiod
  Deployment gives the Istio version.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from diag import errors
from diag.cluster import Cluster, NotFound, resource_path

ROOT_NAMESPACE = "istio-system"
VERSIONS = ("v1", "v1beta1", "v1alpha3")
# Kinds Istio serves only at an older version (its CRDs: EnvoyFilter v1alpha3, WasmPlugin v1alpha1).
ONLY_AT = {"envoyfilters": ("v1alpha3",), "wasmplugins": ("v1alpha1",)}
ISTIO_KINDS: tuple[tuple[str, str, str], ...] = (
    ("networking.istio.io", "serviceentries", "ServiceEntry"),
    ("networking.istio.io", "sidecars", "Sidecar"),
    ("networking.istio.io", "destinationrules", "DestinationRule"),
    ("networking.istio.io", "virtualservices", "VirtualService"),
    ("networking.istio.io", "gateways", "Gateway"),
    ("networking.istio.io", "envoyfilters", "EnvoyFilter"),
    ("extensions.istio.io", "wasmplugins", "WasmPlugin"),
    ("security.istio.io", "authorizationpolicies", "AuthorizationPolicy"),
)
CORE_KINDS: tuple[tuple[str, str, str, str], ...] = (
    ("", "v1", "services", "Service"),
    ("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"),
)


@dataclass
class LiveMesh:
    objects: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    istio_installed: bool = True
    mesh_from: str | None = None
    mesh_unreadable: bool = False  # the istio ConfigMap may not be read


def served_versions(cluster: Cluster, group: str) -> set[str]:
    """The versions the cluster serves for ``group`` (empty when the group is not served)."""
    try:
        data = cluster.get(f"/apis/{group}", what=f"discover {group}")
    except NotFound:
        return set()
    return {str(v.get("version")) for v in data.get("versions") or []}


def pick_version(resource: str, served: set[str]) -> str | None:
    """The version to read ``resource`` at: v1 > v1beta1 > v1alpha3, or the one its CRD has."""
    return next((v for v in ONLY_AT.get(resource, VERSIONS) if v in served), None)


def read_mesh(cluster: Cluster, namespaces: Sequence[str], *, revision: str | None = None) -> LiveMesh:
    """Everything predictions need, read in parallel (see the module docstring)."""
    live = LiveMesh()
    wanted = sorted({*namespaces, ROOT_NAMESPACE})
    groups = sorted({g for g, _, _ in ISTIO_KINDS})
    with ThreadPoolExecutor(max_workers=8) as pool:
        versions = dict(zip(groups, pool.map(lambda g: served_versions(cluster, g), groups), strict=True))
        if not versions.get("networking.istio.io"):
            live.istio_installed = False
            live.notes.append(
                "Istio is not installed in this cluster (no networking.istio.io API): "
                "nothing is predicted from mesh config; probing still runs"
            )
        jobs: list[tuple[str, str, str, str]] = []
        for group, resource, kind in ISTIO_KINDS:
            version = pick_version(resource, versions.get(group, set()))
            if version is not None:
                jobs.append((group, version, resource, kind))
        jobs.extend(CORE_KINDS)
        lists = list(pool.map(lambda job: _list_kind(cluster, job, wanted, live.notes), jobs))
        namespace_objs = pool.submit(_namespaces, cluster, wanted, live.notes)
        config = pool.submit(_mesh_configmap, cluster, revision, live)
        istiod = pool.submit(_istiod, cluster)
        for items in lists:
            live.objects.extend(items)
        live.objects.extend(namespace_objs.result())
        configmap = config.result()
        if configmap is not None:
            live.objects.append(configmap)
            live.mesh_from = f"ConfigMap {ROOT_NAMESPACE}/{configmap['metadata']['name']}"
        live.objects.extend(istiod.result())
    return live


def _list_kind(
    cluster: Cluster, job: tuple[str, str, str, str], namespaces: Sequence[str], notes: list[str]
) -> list[dict[str, Any]]:
    group, version, resource, kind = job
    api_version = f"{group}/{version}" if group else version
    try:
        items = cluster.list(
            resource_path(group, version, resource), what=f"list {resource} in all namespaces"
        )
    except errors.PermissionDenied:
        notes.append(
            f"cannot list {resource} cluster-wide (forbidden): read namespaces "
            f"{', '.join(namespaces)} only; objects exported from elsewhere are not seen"
        )
        items = []
        for ns in namespaces:
            try:
                items.extend(
                    cluster.list(resource_path(group, version, resource, ns), what=f"list {resource} in {ns}")
                )
            except (errors.PermissionDenied, NotFound):
                notes.append(f"cannot list {resource} in {ns}: predictions may miss objects")
    except NotFound:
        return []
    return [_typed(item, api_version, kind) for item in items]


def _namespaces(cluster: Cluster, wanted: Sequence[str], notes: list[str]) -> list[dict[str, Any]]:
    try:
        items = cluster.list("/api/v1/namespaces", what="list namespaces")
    except errors.PermissionDenied:
        items = []
        for ns in wanted:
            try:
                items.append(
                    cluster.get(resource_path("", "v1", "namespaces", name=ns), what=f"get namespace {ns}")
                )
            except (errors.PermissionDenied, NotFound):
                notes.append(f"cannot read namespace {ns}: its labels (injection, ambient) are unknown")
    return [_typed(item, "v1", "Namespace") for item in items]


def _mesh_configmap(cluster: Cluster, revision: str | None, live: LiveMesh) -> dict[str, Any] | None:
    names = [f"istio-{revision}"] if revision and revision != "default" else []
    names.append("istio")
    for name in names:
        try:
            cm = cluster.get(
                resource_path("", "v1", "configmaps", ROOT_NAMESPACE, name), what=f"get configmap {name}"
            )
        except NotFound:
            continue
        except errors.PermissionDenied:
            live.mesh_unreadable = True
            live.notes.append(
                f"cannot read ConfigMap {ROOT_NAMESPACE}/{name} (forbidden): the mesh-wide settings are "
                "unknown; the outbound mode is the sidecar's own (its catch-all)"
            )
            continue
        return _typed(cm, "v1", "ConfigMap")
    return None


def _istiod(cluster: Cluster) -> list[dict[str, Any]]:
    try:
        items = cluster.list(
            resource_path("apps", "v1", "deployments", ROOT_NAMESPACE),
            label_selector="app=istiod",
            what="list istiod deployments",
        )
    except (NotFound, errors.PermissionDenied):
        return []
    return [_typed(item, "apps/v1", "Deployment") for item in items]


def _typed(item: dict[str, Any], api_version: str, kind: str) -> dict[str, Any]:
    """List items of built-in kinds come without apiVersion/kind: put them back."""
    item.setdefault("apiVersion", api_version)
    item.setdefault("kind", kind)
    return item


Reader = Callable[[Cluster, Sequence[str]], LiveMesh]


@dataclass(frozen=True)
class LiveConfig:
    """The live mesh as ``explain``/``lint`` use it when no ``--config`` is given."""

    objects: list[Any]
    mesh: Any
    notes: tuple[str, ...]
    context: str
    namespace: str
    loaded: Any = None  # the loader's LoadResult (objects, problems, mesh)


def load_live(kubeconfig: str | None, context: str | None, namespace: str | None) -> LiveConfig:
    """Connect, read the mesh (read-only) and parse it as files are parsed."""
    from diag.model.loader import load_documents

    cluster = Cluster.connect(kubeconfig, context, namespace)
    try:
        live = read_mesh(cluster, [cluster.namespace])
    finally:
        cluster.close()
    loaded = load_documents(live.objects, origin=f"cluster {cluster.context}")
    notes = [f"mesh config read from the cluster (context {cluster.context})", *live.notes]
    objects = list(loaded.objects)
    return LiveConfig(objects, loaded.mesh, tuple(notes), cluster.context, cluster.namespace, loaded)
