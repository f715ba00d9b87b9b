"""The controllers beside the stand-in API server: namespaces (default ServiceAccount, emptying on
delete), the garbage collector (Background, Orphan, Foreground), the Job controller (pods,
completion, backoffLimit, activeDeadlineSeconds, ttlSecondsAfterFinished, admission refusals as
FailedCreate events) and the Pod Security "restricted" hook — seen through the ``kubernetes`` client."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from lab.apiserver import AdmissionDenied, AdmissionRequest, ApiServer, pod_security_restricted
from lab.certs import LabCA

_names = itertools.count()
RESTRICTED_SC = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    workdir = tmp_path_factory.mktemp("apiserver")
    with ApiServer(workdir, LabCA(workdir)) as server:
        server.controllers.jobs.backoff_base = 0.2
        yield server


@pytest.fixture(scope="module")
def kube(api: ApiServer) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(api.kubeconfig()))


@pytest.fixture
def ns(api: ApiServer) -> str:
    name = f"c{next(_names)}"
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


def job(name: str, **spec: Any) -> dict[str, Any]:
    template = {"spec": {"restartPolicy": "Never", "containers": [{"name": "probe", "image": "probe:1"}]}}
    return {"metadata": {"name": name}, "spec": {"template": template, **spec}}


def job_pods(api: ApiServer, ns: str, name: str) -> list[dict[str, Any]]:
    return api.store.list("pods", ns, label_selector=f"batch.kubernetes.io/job-name={name}")


def conditions(batch: client.BatchV1Api, ns: str, name: str) -> list[tuple[str, str]]:
    status = batch.read_namespaced_job(name, ns).status
    return [(c.type, c.reason) for c in status.conditions or []]


def test_every_namespace_gets_a_default_service_account_and_the_root_ca(kube: client.ApiClient) -> None:
    core = client.CoreV1Api(kube)
    core.create_namespace({"metadata": {"name": "fresh"}})
    assert [sa.metadata.name for sa in core.list_namespaced_service_account("fresh").items] == ["default"]
    assert "BEGIN CERTIFICATE" in core.read_namespaced_config_map("kube-root-ca.crt", "fresh").data["ca.crt"]
    for boot in ("default", "kube-system", "kube-public", "istio-system"):
        assert core.read_namespaced_service_account("default", boot).metadata.name == "default"


def test_deleting_a_namespace_empties_it_then_removes_it(
    api: ApiServer, kube: client.ApiClient, ns: str
) -> None:
    core = client.CoreV1Api(kube)
    core.create_namespaced_config_map(ns, {"metadata": {"name": "x"}})
    phases: list[str] = []
    stop = api.store.subscribe(
        lambda kind, obj: (
            phases.append(f"{kind} {obj['kind']} {obj.get('status')}")
            if obj["metadata"].get("name") == ns
            else None
        )
    )
    core.delete_namespace(ns)
    eventually(lambda: ns not in [n.metadata.name for n in core.list_namespace().items])
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_config_map(ns, {"metadata": {"name": "y"}})
    assert caught.value.status == 404
    api.wait_idle()
    stop()
    assert phases[0] == "MODIFIED Namespace {'phase': 'Terminating'}" and phases[-1].startswith(
        "DELETED Namespace"
    )


def owned(name: str, owner: dict[str, Any]) -> dict[str, Any]:
    ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "blockOwnerDeletion": True,
    }
    return {"metadata": {"name": name, "ownerReferences": [ref]}}


@pytest.mark.parametrize("policy", ["Background", "Foreground", "Orphan"])
def test_garbage_collector_follows_the_propagation_policy(
    kube: client.ApiClient, ns: str, policy: str
) -> None:
    core = client.CoreV1Api(kube)
    owner = core.create_namespaced_config_map(ns, {"metadata": {"name": "owner"}}).to_dict()
    core.create_namespaced_config_map(ns, owned("child", owner))
    other = core.create_namespaced_config_map(ns, {"metadata": {"name": "other"}}).to_dict()
    shared = owned("shared", owner)
    shared["metadata"]["ownerReferences"].append(owned("x", other)["metadata"]["ownerReferences"][0])
    core.create_namespaced_config_map(ns, shared)
    core.delete_namespaced_config_map("owner", ns, propagation_policy=policy)

    def names() -> set[str]:
        return {c.metadata.name for c in core.list_namespaced_config_map(ns).items} - {"kube-root-ca.crt"}

    if policy == "Orphan":
        eventually(lambda: names() == {"child", "other", "shared"})
        assert core.read_namespaced_config_map("child", ns).metadata.owner_references is None
    else:
        eventually(lambda: names() == {"other", "shared"})
    refs = core.read_namespaced_config_map("shared", ns).metadata.owner_references
    eventually(
        lambda: (
            [r.name for r in core.read_namespaced_config_map("shared", ns).metadata.owner_references]
            == ["other"]
        )
    )
    assert refs is not None


def test_a_job_runs_a_labelled_owned_pod_and_completes(
    api: ApiServer, kube: client.ApiClient, ns: str
) -> None:
    batch = client.BatchV1Api(kube)
    created = batch.create_namespaced_job(ns, job("probe"))
    uid = created.metadata.uid
    assert created.spec.backoff_limit == 6 and created.spec.selector.match_labels == {
        "batch.kubernetes.io/controller-uid": uid
    }
    pods = eventually(lambda: job_pods(api, ns, "probe"))
    meta = pods[0]["metadata"]
    assert meta["name"].startswith("probe-") and meta["labels"]["controller-uid"] == uid
    assert meta["labels"]["job-name"] == meta["labels"]["batch.kubernetes.io/job-name"] == "probe"
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": "probe",
            "uid": uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    eventually(lambda: (batch.read_namespaced_job("probe", ns).status.active or 0) == 1)
    api.store.patch_status("pods", ns, meta["name"], {"phase": "Succeeded"})
    eventually(lambda: ("Complete", "CompletionsReached") in conditions(batch, ns, "probe"))
    status = batch.read_namespaced_job("probe", ns).status
    assert (status.succeeded, status.active, status.completion_time is not None) == (1, None, True)
    assert status.start_time is not None and len(job_pods(api, ns, "probe")) == 1


def test_backoff_limit_zero_fails_on_the_first_failed_pod(
    api: ApiServer, kube: client.ApiClient, ns: str
) -> None:
    batch = client.BatchV1Api(kube)
    batch.create_namespaced_job(ns, job("once", backoffLimit=0))
    pod = eventually(lambda: job_pods(api, ns, "once"))[0]
    api.store.patch_status("pods", ns, pod["metadata"]["name"], {"phase": "Failed"})
    eventually(lambda: ("Failed", "BackoffLimitExceeded") in conditions(batch, ns, "once"))
    failed = next(c for c in batch.read_namespaced_job("once", ns).status.conditions if c.type == "Failed")
    assert failed.message == "Job has reached the specified backoff limit"
    time.sleep(0.5)
    assert len(job_pods(api, ns, "once")) == 1  # no replacement pod


def test_a_failed_pod_is_replaced_while_under_the_backoff_limit(
    api: ApiServer, kube: client.ApiClient, ns: str
) -> None:
    client.BatchV1Api(kube).create_namespaced_job(ns, job("retry", backoffLimit=2))
    pod = eventually(lambda: job_pods(api, ns, "retry"))[0]
    api.store.patch_status("pods", ns, pod["metadata"]["name"], {"phase": "Failed"})
    pods = eventually(lambda: len(job_pods(api, ns, "retry")) == 2 and job_pods(api, ns, "retry"))
    assert {p["status"]["phase"] for p in pods} == {"Failed", "Pending"}


def test_active_deadline_deletes_the_pods_and_fails_the_job(
    api: ApiServer, kube: client.ApiClient, ns: str
) -> None:
    batch = client.BatchV1Api(kube)
    batch.create_namespaced_job(ns, job("slow", activeDeadlineSeconds=1))
    eventually(lambda: job_pods(api, ns, "slow"))
    eventually(lambda: ("Failed", "DeadlineExceeded") in conditions(batch, ns, "slow"), timeout=5)
    eventually(lambda: not job_pods(api, ns, "slow"))
    assert batch.read_namespaced_job("slow", ns).status.failed == 1


def test_ttl_after_finished_deletes_the_job_and_the_collector_its_pods(
    api: ApiServer, kube: client.ApiClient, ns: str
) -> None:
    batch = client.BatchV1Api(kube)
    batch.create_namespaced_job(ns, job("short", ttlSecondsAfterFinished=1))
    pod = eventually(lambda: job_pods(api, ns, "short"))[0]
    api.store.patch_status("pods", ns, pod["metadata"]["name"], {"phase": "Succeeded"})
    eventually(lambda: ("Complete", "CompletionsReached") in conditions(batch, ns, "short"))
    assert job_pods(api, ns, "short")  # kept until the TTL runs out
    eventually(lambda: not batch.list_namespaced_job(ns).items, timeout=5)
    eventually(lambda: not job_pods(api, ns, "short"))


def test_deleting_a_job_without_a_policy_orphans_its_pods_as_batch_v1_does(
    api: ApiServer, kube: client.ApiClient, ns: str
) -> None:
    batch = client.BatchV1Api(kube)
    batch.create_namespaced_job(ns, job("keep"))
    eventually(lambda: job_pods(api, ns, "keep"))
    batch.delete_namespaced_job("keep", ns)
    eventually(lambda: not batch.list_namespaced_job(ns).items)
    api.wait_idle()
    pods = job_pods(api, ns, "keep")
    assert len(pods) == 1 and not pods[0]["metadata"].get("ownerReferences")


def test_a_refused_pod_becomes_a_failed_create_event_and_is_retried(
    api: ApiServer, kube: client.ApiClient, ns: str
) -> None:
    refusals = {"left": 2}
    seen: list[AdmissionRequest] = []

    def quota(request: AdmissionRequest) -> None:
        if request.namespace == ns and request.resource == "pods" and request.operation == "CREATE":
            seen.append(request)
            if refusals["left"]:
                refusals["left"] -= 1
                raise AdmissionDenied(f'pods "{request.name}" is forbidden: exceeded quota: q', code=403)

    api.add_validating(quota)
    client.BatchV1Api(kube).create_namespaced_job(ns, job("denied"))
    pods = eventually(lambda: job_pods(api, ns, "denied"))
    assert len(seen) == 3 and seen[0].user == "system:serviceaccount:kube-system:job-controller"
    events = client.CoreV1Api(kube).list_namespaced_event(ns).items
    failed = [e for e in events if e.reason == "FailedCreate"]
    assert len(failed) == 2 and {e.type for e in failed} == {"Warning"}  # one per generated name
    assert failed[0].message.startswith('Error creating: pods "denied-') and failed[0].message.endswith(
        '" is forbidden: exceeded quota: q'
    )
    assert (failed[0].involved_object.kind, failed[0].involved_object.name) == ("Job", "denied")
    assert pods[0]["metadata"]["name"].startswith("denied-")


def test_mutating_hooks_run_before_validating_ones_and_see_the_caller(
    api: ApiServer, kube: client.ApiClient, ns: str
) -> None:
    def label(request: AdmissionRequest) -> dict[str, Any] | None:
        if request.namespace != ns or request.resource != "configmaps":
            return None
        obj = request.obj
        obj["metadata"].setdefault("labels", {})["mutated"] = request.user
        return obj

    def require_label(request: AdmissionRequest) -> None:
        if (
            request.namespace == ns
            and request.resource == "configmaps"
            and request.operation == "CREATE"
            and "mutated" not in request.obj["metadata"].get("labels", {})
        ):
            raise AdmissionDenied("no label", code=400)

    api.add_validating(require_label)
    api.add_mutating(label)
    made = client.CoreV1Api(kube).create_namespaced_config_map(ns, {"metadata": {"name": "m"}})
    assert made.metadata.labels == {"mutated": "admin"}


def test_pod_security_restricted_denies_with_the_real_message(api: ApiServer, kube: client.ApiClient) -> None:
    core = client.CoreV1Api(kube)

    def labels(name: str) -> dict[str, str] | None:
        found = api.store.get("namespaces", None, name)
        return found["metadata"].get("labels") if found else None

    api.add_validating(pod_security_restricted(labels))
    core.create_namespace(
        {"metadata": {"name": "locked", "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    )
    bad = {"metadata": {"name": "bad"}, "spec": {"containers": [{"name": "app", "image": "x"}]}}
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_pod("locked", bad)
    body = json.loads(caught.value.body)
    assert (caught.value.status, body["reason"]) == (403, "Forbidden")
    assert body["message"] == (
        'pods "bad" is forbidden: violates PodSecurity "restricted:latest": '
        'allowPrivilegeEscalation != false (container "app" must set '
        "securityContext.allowPrivilegeEscalation=false), unrestricted capabilities "
        '(container "app" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or '
        'container "app" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container "app" '
        'must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")'
    )
    good = {
        "metadata": {"name": "good"},
        "spec": {"containers": [{"name": "app", "image": "x", "securityContext": RESTRICTED_SC}]},
    }
    assert core.create_namespaced_pod("locked", good).metadata.name == "good"
    core.create_namespaced_pod("default", dict(bad, metadata={"name": "elsewhere"}))  # not enforced there
    client.BatchV1Api(kube).create_namespaced_job("locked", job("psa"))
    event = eventually(
        lambda: [e for e in core.list_namespaced_event("locked").items if e.reason == "FailedCreate"]
    )
    assert 'violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false' in event[0].message
