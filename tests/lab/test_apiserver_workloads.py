"""apps/v1 workloads and the controllers behind them in the stand-in API server, through the
``kubernetes`` client: discovery and CRUD of Deployments, ReplicaSets, StatefulSets and DaemonSets
(status subresource, validation), Deployment → ReplicaSet → pods, a ReplicaSet adopting orphans
and deleting its surplus, releasing pods that stopped matching, the EndpointSlice controller's
slices (and its silence when nothing changed), and ``kubectl get deploy,rs``.

There is no kubelet here: ``start`` plays it, giving a pod an IP, a phase and a Ready condition.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from lab.apiserver import AdmissionDenied, AdmissionRequest, ApiServer
from lab.certs import LabCA

_names = itertools.count()
_ips = itertools.count(10)
SLICES = "discovery.k8s.io"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    workdir = tmp_path_factory.mktemp("apiserver")
    with ApiServer(workdir, LabCA(workdir)) as server:
        server.controllers.replicasets.backoff_base = 0.1
        yield server


@pytest.fixture(scope="module")
def kube(api: ApiServer) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(api.kubeconfig()))


@pytest.fixture(scope="module")
def apps(kube: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(kube)


@pytest.fixture
def ns(api: ApiServer) -> str:
    name = f"w{next(_names)}"
    api.store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


def eventually(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.02)


def settle(check: Callable[[], Any], timeout: float = 5.0) -> None:
    """Wait until ``check()`` holds or ``timeout`` passes; the assertion after it shows what differs."""
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() <= deadline:
        time.sleep(0.02)


def template(labels: dict[str, str], **spec: Any) -> dict[str, Any]:
    container = {
        "name": "app",
        "image": "lab.example/app:1",
        "ports": [{"name": "web", "containerPort": 8080}],
    }
    return {"metadata": {"labels": labels}, "spec": {"containers": [container], **spec}}


def workload(name: str, labels: dict[str, str], replicas: int = 1) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": template(labels)},
    }


def pods(api: ApiServer, ns: str, live: bool = True) -> list[dict[str, Any]]:
    return [p for p in api.store.list("pods", ns) if not (live and p["metadata"].get("deletionTimestamp"))]


def owner_names(pod: dict[str, Any]) -> list[str]:
    return [
        f"{r['kind']}/{r['name']}"
        for r in pod["metadata"].get("ownerReferences") or []
        if r.get("controller")
    ]


def start(api: ApiServer, ns: str, name: str, *, ready: bool = True, node: bool = False) -> dict[str, Any]:
    """What a kubelet reports for a running pod: phase, IP, Ready (and optionally a node)."""
    if node:
        pod = api.store.get("pods", ns, name)
        assert pod is not None
        pod["spec"]["nodeName"] = "lab-node"
        api.store.update(pod)
    status = {
        "phase": "Running",
        "podIP": f"10.1.0.{next(_ips)}",
        "conditions": [
            {
                "type": "Ready",
                "status": "True" if ready else "False",
                "lastTransitionTime": "2025-01-01T00:00:00Z",
            }
        ],
    }
    patched: dict[str, Any] = api.store.patch_status("pods", ns, name, status)
    return patched


def bare_pod(name: str, labels: dict[str, str], **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels, **meta},
        "spec": {"containers": [{"name": "app", "image": "lab.example/app:1"}]},
    }


# ---- the API ---------------------------------------------------------------------------------


def test_discovery_lists_the_apps_group_with_short_names_and_status(kube: client.ApiClient) -> None:
    resources = client.AppsV1Api(kube).get_api_resources().resources
    by_name = {r.name: r for r in resources}
    assert {
        n: by_name[n].short_names for n in ("deployments", "replicasets", "statefulsets", "daemonsets")
    } == {
        "deployments": ["deploy"],
        "replicasets": ["rs"],
        "statefulsets": ["sts"],
        "daemonsets": ["ds"],
    }
    assert {f"{k}/status" for k in ("deployments", "replicasets", "statefulsets", "daemonsets")} <= set(
        by_name
    )
    assert by_name["deployments"].kind == "Deployment" and by_name["deployments"].namespaced
    assert "all" in by_name["statefulsets"].categories
    groups = {g.name: g.preferred_version.version for g in client.ApisApi(kube).get_api_versions().groups}
    assert groups["apps"] == "v1"


@pytest.fixture(scope="module")
def quiet_apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[client.AppsV1Api]:
    """A second server whose Deployment and ReplicaSet controllers are stopped: only the API."""
    workdir = tmp_path_factory.mktemp("quiet")
    with ApiServer(workdir, LabCA(workdir)) as server:
        server.controllers.deployments.close()
        server.controllers.replicasets.close()
        server.store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "crud"}})
        yield client.AppsV1Api(config.new_client_from_config(config_file=str(server.kubeconfig())))


@pytest.mark.parametrize("kind", ["deployment", "replica_set", "stateful_set", "daemon_set"])
def test_crud_and_status_subresource(quiet_apps: client.AppsV1Api, kind: str) -> None:
    apps, ns = quiet_apps, "crud"
    body = workload(f"web-{kind.replace('_', '')}", {"app": kind}, replicas=0)
    name = body["metadata"]["name"]
    if kind == "daemon_set":
        del body["spec"]["replicas"]
    created = getattr(apps, f"create_namespaced_{kind}")(ns, body)
    assert created.metadata.generation == 1 and created.metadata.uid
    assert created.spec.template.spec.restart_policy == "Always"
    read = getattr(apps, f"read_namespaced_{kind}")(name, ns)
    assert read.metadata.resource_version == created.metadata.resource_version
    listed = getattr(apps, f"list_namespaced_{kind}")(ns).items
    assert name in [o.metadata.name for o in listed]
    patched = getattr(apps, f"patch_namespaced_{kind}")(
        name, ns, {"spec": {"template": {"metadata": {"annotations": {"x": "1"}}}}}
    )
    assert patched.metadata.generation == 2
    current = getattr(apps, f"read_namespaced_{kind}_status")(name, ns)
    current.status.observed_generation = 2
    current.spec.template.metadata.annotations = {"ignored": "by the status subresource"}
    updated = getattr(apps, f"replace_namespaced_{kind}_status")(name, ns, current)
    assert updated.status.observed_generation == 2 and updated.metadata.generation == 2
    assert updated.spec.template.metadata.annotations == {"x": "1"}
    getattr(apps, f"delete_namespaced_{kind}")(name, ns)
    with pytest.raises(ApiException) as caught:
        getattr(apps, f"read_namespaced_{kind}")(name, ns)
    assert caught.value.status == 404


def test_defaults(apps: client.AppsV1Api, ns: str) -> None:
    body = workload("web", {"app": "defaults"})
    del body["spec"]["replicas"]
    deployment = apps.create_namespaced_deployment(ns, body)
    assert deployment.spec.replicas == 1 and deployment.spec.revision_history_limit == 10
    assert deployment.spec.strategy.type == "RollingUpdate"
    assert deployment.spec.strategy.rolling_update.max_surge == "25%"
    assert deployment.spec.progress_deadline_seconds == 600
    sts = apps.create_namespaced_stateful_set(ns, workload("db", {"app": "db"}))
    assert (
        sts.spec.pod_management_policy == "OrderedReady"
        and sts.spec.update_strategy.rolling_update.partition == 0
    )
    agent = workload("agent", {"app": "agent"})
    del agent["spec"]["replicas"]
    ds = apps.create_namespaced_daemon_set(ns, agent)
    assert ds.spec.update_strategy.rolling_update.max_unavailable == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda b: b["spec"]["template"]["metadata"].update(labels={"app": "other"}),
            'spec.template.metadata.labels: Invalid value: map[string]string{"app":"other"}: '
            "`selector` does not match template `labels`",
        ),
        (
            lambda b: b["spec"]["template"]["spec"].update(restartPolicy="Never"),
            'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"',
        ),
    ],
)
def test_validation(apps: client.AppsV1Api, ns: str, change: Callable[[Any], Any], message: str) -> None:
    body = workload("bad", {"app": "bad"})
    change(body)
    with pytest.raises(ApiException) as caught:
        apps.create_namespaced_deployment(ns, body)
    assert caught.value.status == 422
    assert json.loads(caught.value.body)["message"] == f'Deployment.apps "bad" is invalid: {message}'


def test_a_selector_is_required(api: ApiServer, ns: str) -> None:
    """(The client refuses to send a Deployment without one, so this goes in-process.)"""
    from lab.apiserver.errors import Invalid

    body = {"apiVersion": "apps/v1", "kind": "Deployment", **workload("bad", {"app": "bad"})}
    body["metadata"]["namespace"] = ns
    del body["spec"]["selector"]
    with pytest.raises(Invalid) as caught:
        api.store.create(body)
    assert caught.value.message == 'Deployment.apps "bad" is invalid: spec.selector: Required value'


def test_selector_is_immutable(apps: client.AppsV1Api, ns: str) -> None:
    apps.create_namespaced_replica_set(ns, workload("fixed", {"app": "fixed"}, replicas=0))
    with pytest.raises(ApiException) as caught:
        apps.patch_namespaced_replica_set(
            "fixed",
            ns,
            {
                "spec": {
                    "selector": {"matchLabels": {"app": "fixed", "v": "2"}},
                    "template": template({"app": "fixed", "v": "2"}),
                }
            },
        )
    assert caught.value.status == 422 and "field is immutable" in json.loads(caught.value.body)["message"]


# ---- Deployment → ReplicaSet → pods --------------------------------------------------------------


def test_deployment_makes_one_replica_set_that_makes_the_pods(
    api: ApiServer, apps: client.AppsV1Api, ns: str
) -> None:
    deployment = apps.create_namespaced_deployment(ns, workload("api", {"app": "api"}, replicas=2))
    rs = eventually(lambda: apps.list_namespaced_replica_set(ns).items)[0]
    digest = rs.metadata.labels["pod-template-hash"]
    assert rs.metadata.name == f"api-{digest}" and set(digest) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert rs.spec.selector.match_labels == {"app": "api", "pod-template-hash": digest}
    assert rs.spec.template.metadata.labels == {"app": "api", "pod-template-hash": digest}
    assert rs.spec.replicas == 2
    (ref,) = rs.metadata.owner_references
    assert (ref.kind, ref.name, ref.uid, ref.controller) == (
        "Deployment",
        "api",
        deployment.metadata.uid,
        True,
    )
    assert rs.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    made = eventually(lambda: len(pods(api, ns)) == 2 and pods(api, ns))
    for pod in made:
        assert pod["metadata"]["name"].startswith(f"api-{digest}-")
        assert pod["metadata"]["labels"] == {"app": "api", "pod-template-hash": digest}
        assert owner_names(pod) == [f"ReplicaSet/api-{digest}"]
    for pod in made:
        start(api, ns, pod["metadata"]["name"])
    status = eventually(
        lambda: (d := apps.read_namespaced_deployment_status("api", ns).status).ready_replicas == 2 and d
    )
    assert (status.replicas, status.updated_replicas, status.available_replicas) == (2, 2, 2)
    assert status.unavailable_replicas is None
    conditions = {c.type: (c.status, c.reason) for c in status.conditions}
    assert conditions == {
        "Available": ("True", "MinimumReplicasAvailable"),
        "Progressing": ("True", "NewReplicaSetAvailable"),
    }
    rs_status = apps.read_namespaced_replica_set_status(rs.metadata.name, ns).status
    assert (rs_status.replicas, rs_status.ready_replicas, rs_status.available_replicas) == (2, 2, 2)
    events = client.CoreV1Api(apps.api_client).list_namespaced_event(ns).items
    assert f"Scaled up replica set api-{digest} from 0 to 2" in [e.message for e in events]


def test_a_new_template_makes_a_new_replica_set_and_scales_the_old_one_down(
    api: ApiServer, apps: client.AppsV1Api, ns: str
) -> None:
    apps.create_namespaced_deployment(ns, workload("api", {"app": "api"}))
    first = eventually(lambda: apps.list_namespaced_replica_set(ns).items)[0].metadata.name
    apps.patch_namespaced_deployment(
        "api",
        ns,
        {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "lab.example/app:2"}]}}}},
    )
    sets = eventually(lambda: len(items := apps.list_namespaced_replica_set(ns).items) == 2 and items)
    by_name = {r.metadata.name: r for r in sets}
    eventually(lambda: apps.read_namespaced_replica_set(first, ns).spec.replicas == 0)
    (second,) = set(by_name) - {first}
    assert (
        apps.read_namespaced_replica_set(second, ns).metadata.annotations["deployment.kubernetes.io/revision"]
        == "2"
    )
    live = eventually(lambda: [p for p in pods(api, ns) if p["metadata"]["name"].startswith(second)])
    assert [c["image"] for c in live[0]["spec"]["containers"]] == ["lab.example/app:2"]
    eventually(lambda: not [p for p in pods(api, ns) if p["metadata"]["name"].startswith(first)])
    assert (
        apps.read_namespaced_deployment("api", ns).metadata.annotations["deployment.kubernetes.io/revision"]
        == "2"
    )


def test_deleting_the_deployment_removes_its_replica_sets_and_pods(
    api: ApiServer, apps: client.AppsV1Api, ns: str
) -> None:
    apps.create_namespaced_deployment(ns, workload("api", {"app": "api"}, replicas=2))
    eventually(lambda: len(pods(api, ns)) == 2)
    apps.delete_namespaced_deployment("api", ns)
    eventually(lambda: not apps.list_namespaced_replica_set(ns).items and not pods(api, ns, live=False))


def test_pods_are_created_through_admission(api: ApiServer, apps: client.AppsV1Api, ns: str) -> None:
    """Mutating admission sees the controller's pods (the lab's injector adds the sidecar there), and
    what it adds is defaulted, so the pod can be updated later (labelled, adopted)."""
    seen: list[str] = []

    def add_sidecar(request: AdmissionRequest) -> dict[str, Any] | None:
        if request.resource != "pods" or request.namespace != ns or request.operation != "CREATE":
            return None
        seen.append(request.user)
        obj = dict(request.obj)
        sidecar = {"name": "sidecar", "image": "lab.example/proxy:1", "ports": [{"containerPort": 15090}]}
        obj["spec"] = {**obj["spec"], "containers": [*obj["spec"]["containers"], sidecar]}
        return obj

    api.add_mutating(add_sidecar)
    apps.create_namespaced_replica_set(ns, workload("api", {"app": "api"}))
    (pod,) = eventually(lambda: pods(api, ns))
    assert [c["name"] for c in pod["spec"]["containers"]] == ["app", "sidecar"]
    sidecar = pod["spec"]["containers"][1]
    assert sidecar["imagePullPolicy"] == "IfNotPresent" and sidecar["ports"][0]["protocol"] == "TCP"
    assert seen == ["system:serviceaccount:kube-system:replicaset-controller"]
    core = client.CoreV1Api(apps.api_client)
    core.patch_namespaced_pod(pod["metadata"]["name"], ns, {"metadata": {"labels": {"checked": "yes"}}})
    assert api.store.get("pods", ns, pod["metadata"]["name"])["metadata"]["labels"]["checked"] == "yes"  # type: ignore[index]


def test_a_refused_pod_is_a_failed_create_event_and_a_replica_failure(
    api: ApiServer, apps: client.AppsV1Api, ns: str
) -> None:
    admit = threading.Event()

    def deny(request: AdmissionRequest) -> None:
        if request.resource == "pods" and request.namespace == ns and not admit.is_set():
            raise AdmissionDenied('pods "x" is forbidden: exceeded quota: q')

    api.add_validating(deny)
    apps.create_namespaced_replica_set(ns, workload("api", {"app": "api"}))
    core = client.CoreV1Api(apps.api_client)
    failing = eventually(
        lambda: (s := apps.read_namespaced_replica_set_status("api", ns).status).conditions and s
    )
    (condition,) = failing.conditions
    assert (condition.type, condition.status, condition.reason) == ("ReplicaFailure", "True", "FailedCreate")
    assert condition.message == 'Error creating: pods "x" is forbidden: exceeded quota: q'
    event = next(e for e in core.list_namespaced_event(ns).items if e.reason == "FailedCreate")
    assert event.type == "Warning" and event.message == condition.message
    admit.set()
    eventually(lambda: len(pods(api, ns)) == 1, timeout=15)  # retried with backoff until admitted
    status = eventually(
        lambda: (s := apps.read_namespaced_replica_set_status("api", ns).status).replicas == 1 and s
    )
    assert not status.conditions


# ---- adoption, surplus, release ----------------------------------------------------------------


def watch_pods(api: ApiServer, ns: str) -> tuple[list[tuple[str, dict[str, Any]]], Callable[[], None]]:
    history: list[tuple[str, dict[str, Any]]] = []

    def record(kind: str, obj: dict[str, Any]) -> None:
        if obj.get("kind") == "Pod" and obj["metadata"].get("namespace") == ns:
            history.append((kind, obj))

    return history, api.store.subscribe(record)


def test_an_orphan_that_matches_is_adopted_and_the_surplus_deleted(
    api: ApiServer, apps: client.AppsV1Api, ns: str
) -> None:
    """The danger ``--like`` must avoid: a pod without a controller that matches a ReplicaSet's
    selector is taken over, and the ReplicaSet, now one pod over, deletes one."""
    apps.create_namespaced_replica_set(ns, workload("api", {"app": "api"}))
    (original,) = eventually(lambda: pods(api, ns))
    start(api, ns, original["metadata"]["name"], node=True)
    history, stop = watch_pods(api, ns)
    client.CoreV1Api(apps.api_client).create_namespaced_pod(ns, bare_pod("stranger", {"app": "api"}))
    eventually(lambda: api.store.get("pods", ns, "stranger") is None)
    api.wait_idle()
    stop()
    adopted = [o for k, o in history if o["metadata"]["name"] == "stranger" and owner_names(o)]
    assert adopted and owner_names(adopted[0]) == ["ReplicaSet/api"]
    assert [p["metadata"]["name"] for p in pods(api, ns)] == [original["metadata"]["name"]]
    events = [e.message for e in client.CoreV1Api(apps.api_client).list_namespaced_event(ns).items]
    assert "Deleted pod: stranger" in events


def test_the_surplus_is_chosen_worst_first(api: ApiServer, apps: client.AppsV1Api, ns: str) -> None:
    apps.create_namespaced_replica_set(ns, workload("api", {"app": "api"}, replicas=4))
    made = sorted(
        p["metadata"]["name"] for p in eventually(lambda: len(pods(api, ns)) == 4 and pods(api, ns))
    )
    ready, not_ready, running_unscheduled, pending = made
    start(api, ns, ready, node=True)
    start(api, ns, not_ready, ready=False, node=True)
    start(api, ns, running_unscheduled, ready=True)
    apps.patch_namespaced_replica_set("api", ns, {"spec": {"replicas": 1}})
    eventually(lambda: len(pods(api, ns)) == 1)
    assert [p["metadata"]["name"] for p in pods(api, ns)] == [ready]

    def deleted() -> list[str]:
        return sorted(
            e.message.removeprefix("Deleted pod: ")
            for e in client.CoreV1Api(apps.api_client).list_namespaced_event(ns).items
            if e.reason == "SuccessfulDelete"
        )

    # each deletion's Event is recorded after the pod is gone, as Kubernetes' controllers do
    surplus = sorted([not_ready, running_unscheduled, pending])
    settle(lambda: deleted() == surplus)
    assert deleted() == surplus


@pytest.mark.parametrize("controller", [True, False], ids=["controlled-by-another", "owned-not-controlled"])
def test_only_pods_without_a_controller_are_adopted(
    api: ApiServer, apps: client.AppsV1Api, ns: str, controller: bool
) -> None:
    apps.create_namespaced_replica_set(ns, workload("api", {"app": "api"}, replicas=2))
    mine = [p["metadata"]["name"] for p in eventually(lambda: len(pods(api, ns)) == 2 and pods(api, ns))]
    for name in mine:
        start(api, ns, name, node=True)
    owner = api.store.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "run", "namespace": ns}}
    )
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "run", "uid": owner["metadata"]["uid"]}
    if controller:
        ref["controller"] = True
    history, stop = watch_pods(api, ns)
    client.CoreV1Api(apps.api_client).create_namespaced_pod(
        ns, bare_pod("guest", {"app": "api"}, ownerReferences=[ref])
    )
    if controller:
        api.wait_idle()
    else:
        eventually(lambda: api.store.get("pods", ns, "guest") is None)
    api.wait_idle()
    stop()
    takeovers = [
        o for _, o in history if o["metadata"]["name"] == "guest" and "ReplicaSet/api" in owner_names(o)
    ]
    assert bool(takeovers) is not controller
    assert sorted(p["metadata"]["name"] for p in pods(api, ns)) == sorted(
        mine + (["guest"] if controller else [])
    )
    if not controller:  # the adopted guest keeps its other owner beside the ReplicaSet
        assert [r["kind"] for r in takeovers[0]["metadata"]["ownerReferences"]] == ["ConfigMap", "ReplicaSet"]


def test_a_pod_that_stops_matching_is_released_and_replaced(
    api: ApiServer, apps: client.AppsV1Api, ns: str
) -> None:
    apps.create_namespaced_replica_set(ns, workload("api", {"app": "api"}))
    (pod,) = eventually(lambda: pods(api, ns))
    name = pod["metadata"]["name"]
    client.CoreV1Api(apps.api_client).patch_namespaced_pod(
        name, ns, {"metadata": {"labels": {"app": "debug"}}}
    )
    eventually(lambda: not owner_names(api.store.get("pods", ns, name) or {"metadata": {}}))
    eventually(lambda: len(pods(api, ns)) == 2)
    assert api.store.get("pods", ns, name)["metadata"].get("ownerReferences") is None  # type: ignore[index]


@pytest.mark.parametrize("scheduled", [False, True], ids=["removed-at-once", "terminating"])
def test_a_job_whose_pod_is_deleted_fails_instead_of_replacing_it(
    api: ApiServer, kube: client.ApiClient, ns: str, scheduled: bool
) -> None:
    """What the probe pod's Job (backoffLimit 0) does if something — a ReplicaSet trimming its
    surplus — deletes the pod: a deleted pod that had not succeeded counts as failed."""
    batch, core = client.BatchV1Api(kube), client.CoreV1Api(kube)
    template = {"spec": {"restartPolicy": "Never", "containers": [{"name": "probe", "image": "probe:1"}]}}
    batch.create_namespaced_job(
        ns, {"metadata": {"name": "run"}, "spec": {"backoffLimit": 0, "template": template}}
    )
    (pod,) = eventually(lambda: pods(api, ns))
    if scheduled:
        start(api, ns, pod["metadata"]["name"], node=True)
    core.delete_namespaced_pod(pod["metadata"]["name"], ns)
    status = eventually(lambda: (s := batch.read_namespaced_job_status("run", ns).status).conditions and s)
    assert [(c.type, c.reason) for c in status.conditions] == [
        ("FailureTarget", "BackoffLimitExceeded"),
        ("Failed", "BackoffLimitExceeded"),
    ]
    assert status.failed == 1 and not status.active
    api.wait_idle()
    assert [p["metadata"]["uid"] for p in pods(api, ns, live=False)] in ([], [pod["metadata"]["uid"]])


# ---- EndpointSlices ----------------------------------------------------------------------------


def service(name: str, selector: dict[str, str] | None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {"name": name, "labels": {"team": "shop"}},
        "spec": {
            "ports": [
                {"name": "http", "port": 80, "targetPort": "web"},
                {"name": "admin", "port": 9000, "targetPort": 9001},
            ],
            **spec,
        },
    }
    if selector is not None:
        body["spec"]["selector"] = selector
    return body


def slices(api: ApiServer, ns: str, name: str) -> list[dict[str, Any]]:
    return api.store.list("endpointslices", ns, SLICES, label_selector=f"kubernetes.io/service-name={name}")


def endpoints_by_pod(api: ApiServer, ns: str, name: str) -> dict[str, dict[str, Any]]:
    return {e["targetRef"]["name"]: e for s in slices(api, ns, name) for e in s.get("endpoints") or []}


def test_endpoint_slice_lists_matching_pods_with_their_readiness(
    api: ApiServer, kube: client.ApiClient, ns: str
) -> None:
    core, discovery = client.CoreV1Api(kube), client.DiscoveryV1Api(kube)
    svc = core.create_namespaced_service(ns, service("api", {"app": "api"}))
    (placeholder,) = eventually(lambda: slices(api, ns, "api"))
    assert placeholder["endpoints"] == [] and placeholder["ports"] == []
    with_port = template({"app": "api"})["spec"]
    for name in ("ready", "unready", "terminating", "no-ip", "done", "other"):
        labels = {"app": "api"} if name != "other" else {"app": "web"}
        body = {"metadata": {"name": name, "labels": labels}, "spec": with_port}
        core.create_namespaced_pod(ns, body)
    for name in ("ready", "terminating", "done", "other"):
        start(api, ns, name, node=True)
    start(api, ns, "unready", ready=False)
    api.store.patch_status("pods", ns, "done", {"phase": "Succeeded"})
    core.delete_namespaced_pod("terminating", ns)
    expected = {
        "ready": {"ready": True, "serving": True, "terminating": False},
        "unready": {"ready": False, "serving": False, "terminating": False},
        "terminating": {"ready": False, "serving": True, "terminating": True},
    }

    def conditions(listed: dict[str, Any]) -> dict[str, Any]:
        return {name: ep["conditions"] for name, ep in listed.items()}

    # The slice passes through the pods' earlier states (the deleted pod still ready, before the
    # controller sees its deletion): wait for the state the changes above end in.
    settle(lambda: conditions(endpoints_by_pod(api, ns, "api")) == expected)
    listed = endpoints_by_pod(api, ns, "api")
    assert conditions(listed) == expected
    ready_pod = api.store.get("pods", ns, "ready")
    assert ready_pod is not None
    assert listed["ready"]["addresses"] == [ready_pod["status"]["podIP"]]
    assert listed["ready"]["targetRef"] == {
        "kind": "Pod",
        "namespace": ns,
        "name": "ready",
        "uid": ready_pod["metadata"]["uid"],
    }
    assert listed["ready"]["nodeName"] == "lab-node" and "nodeName" not in listed["unready"]
    (es,) = discovery.list_namespaced_endpoint_slice(
        ns, label_selector="kubernetes.io/service-name=api"
    ).items
    assert es.metadata.name.startswith("api-") and es.address_type == "IPv4"
    assert es.metadata.labels == {
        "team": "shop",
        "kubernetes.io/service-name": "api",
        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
    }
    (ref,) = es.metadata.owner_references
    assert (ref.kind, ref.name, ref.uid, ref.controller) == ("Service", "api", svc.metadata.uid, True)
    assert sorted((p.name, p.port, p.protocol) for p in es.ports) == [
        ("admin", 9001, "TCP"),
        ("http", 8080, "TCP"),
    ]
    api.store.remove("pods", ns, "terminating")  # the kubelet finishing the graceful deletion
    eventually(lambda: "terminating" not in endpoints_by_pod(api, ns, "api"))


def test_pods_resolving_different_ports_land_in_different_slices(
    api: ApiServer, kube: client.ApiClient, ns: str
) -> None:
    core = client.CoreV1Api(kube)
    core.create_namespaced_service(ns, service("api", {"app": "api"}))
    core.create_namespaced_pod(
        ns, {"metadata": {"name": "named", "labels": {"app": "api"}}, "spec": template({})["spec"]}
    )
    core.create_namespaced_pod(ns, bare_pod("unnamed", {"app": "api"}))
    start(api, ns, "named")
    start(api, ns, "unnamed")
    found = eventually(lambda: len(s := slices(api, ns, "api")) == 2 and s)
    by_ports = {
        tuple(sorted(p["name"] for p in s["ports"])): [e["targetRef"]["name"] for e in s["endpoints"]]
        for s in found
    }
    assert by_ports == {("admin", "http"): ["named"], ("admin",): ["unnamed"]}


def test_publish_not_ready_addresses_makes_every_listed_pod_ready(
    api: ApiServer, kube: client.ApiClient, ns: str
) -> None:
    core = client.CoreV1Api(kube)
    core.create_namespaced_service(
        ns, service("db", {"app": "db"}, publishNotReadyAddresses=True, clusterIP="None")
    )
    core.create_namespaced_pod(ns, bare_pod("db-0", {"app": "db"}))
    start(api, ns, "db-0", ready=False)
    listed = eventually(lambda: endpoints_by_pod(api, ns, "db"))
    assert listed["db-0"]["conditions"] == {"ready": True, "serving": False, "terminating": False}
    assert slices(api, ns, "db")[0]["metadata"]["labels"]["service.kubernetes.io/headless"] == ""


def test_services_without_a_selector_keep_their_own_slices(
    api: ApiServer, kube: client.ApiClient, ns: str
) -> None:
    core = client.CoreV1Api(kube)
    core.create_namespaced_service(ns, service("ext", None))
    own = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "ext-1", "namespace": ns, "labels": {"kubernetes.io/service-name": "ext"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["192.0.2.1"]}],
        "ports": [{"name": "http", "port": 80}],
    }
    api.store.create(own)
    core.create_namespaced_pod(ns, bare_pod("p", {"app": "ext"}))
    start(api, ns, "p")
    api.wait_idle()
    (only,) = slices(api, ns, "ext")
    assert only["metadata"]["name"] == "ext-1" and only["endpoints"] == [{"addresses": ["192.0.2.1"]}]


def test_slices_are_written_only_when_an_endpoint_changes(
    api: ApiServer, kube: client.ApiClient, ns: str
) -> None:
    """EndpointSlices reach every sidecar: a pod status change that moves no endpoint writes nothing."""
    core = client.CoreV1Api(kube)
    core.create_namespaced_service(ns, service("api", {"app": "api"}))
    core.create_namespaced_pod(ns, bare_pod("p", {"app": "api"}))
    start(api, ns, "p", ready=False)
    eventually(lambda: "p" in endpoints_by_pod(api, ns, "api"))
    api.wait_idle()
    writes: list[str] = []
    stop = api.store.subscribe(
        lambda kind, obj: (
            writes.append(kind)
            if obj.get("kind") == "EndpointSlice" and obj["metadata"]["namespace"] == ns
            else None
        )
    )
    try:
        for restarts in range(5):
            api.store.patch_status(
                "pods", ns, "p", {"containerStatuses": [{"name": "app", "restartCount": restarts}]}
            )
        api.store.patch_status("pods", ns, "p", {"message": "still starting"})
        api.wait_idle()
        assert writes == []
        api.store.patch_status(
            "pods",
            ns,
            "p",
            {
                "conditions": [
                    {"type": "Ready", "status": "True", "lastTransitionTime": "2025-01-01T00:00:00Z"}
                ]
            },
        )
        eventually(lambda: endpoints_by_pod(api, ns, "api")["p"]["conditions"]["ready"])
        api.wait_idle()
        assert writes == ["MODIFIED"]
    finally:
        stop()


def test_deleting_the_service_removes_its_slices(api: ApiServer, kube: client.ApiClient, ns: str) -> None:
    core = client.CoreV1Api(kube)
    core.create_namespaced_service(ns, service("api", {"app": "api"}))
    eventually(lambda: slices(api, ns, "api"))
    core.delete_namespaced_service("api", ns)
    eventually(lambda: not slices(api, ns, "api"))


# ---- kubectl -----------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_create_deployment_sends_protobuf(api: ApiServer, ns: str, tmp_path: Any) -> None:
    done = subprocess.run(
        [
            "kubectl",
            f"--kubeconfig={api.kubeconfig()}",
            f"--cache-dir={tmp_path}",
            "-n",
            ns,
            "create",
            "deployment",
            "web",
            "--image=lab.example/app:1",
            "--replicas=2",
            "--port=8080",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (done.returncode, done.stdout.strip()) == (0, "deployment.apps/web created"), done.stderr
    stored = api.store.get("deployments", ns, "web", "apps")
    assert stored is not None
    assert stored["spec"]["replicas"] == 2 and stored["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    (container,) = stored["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "lab.example/app:1" and container["ports"][0]["containerPort"] == 8080
    assert "serviceAccountName" not in stored["spec"]["template"]["spec"]
    eventually(lambda: len(pods(api, ns)) == 2)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_get_deploy_rs(api: ApiServer, apps: client.AppsV1Api, ns: str, tmp_path: Any) -> None:
    apps.create_namespaced_deployment(ns, workload("api", {"app": "api"}))
    (pod,) = eventually(lambda: pods(api, ns))
    start(api, ns, pod["metadata"]["name"])
    eventually(lambda: apps.read_namespaced_deployment("api", ns).status.ready_replicas == 1)
    done = subprocess.run(
        [
            "kubectl",
            f"--kubeconfig={api.kubeconfig()}",
            f"--cache-dir={tmp_path}",
            "-n",
            ns,
            "get",
            "deploy,rs",
            "-o",
            "wide",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = [line.split() for line in done.stdout.splitlines() if line.strip()]
    digest = pod["metadata"]["labels"]["pod-template-hash"]
    assert lines[0][:5] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert lines[1][:4] == ["deployment.apps/api", "1/1", "1", "1"]
    assert lines[1][-3:] == ["app", "lab.example/app:1", "app=api"]
    assert lines[2][:5] == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    assert lines[3][:4] == [f"replicaset.apps/api-{digest}", "1", "1", "1"]
    assert lines[3][-1] == f"app=api,pod-template-hash={digest}"
