"""The stand-in API server through the real ``kubernetes`` client over HTTPS: discovery, CRUD,
defaults, selectors, watch (resume, 410), logs, ephemeral containers, custom resources at every
served Istio version, and error Status bodies mapped to ``ApiException``."""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from lab.apiserver import ApiServer, LogUnavailable
from lab.apiserver.resources import ISTIO
from lab.certs import LabCA

_names = itertools.count()


def api_client(api: ApiServer, user: str = "admin") -> client.ApiClient:
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(api.kubeconfig(user)), client_configuration=cfg)
    cfg.retries = False
    return client.ApiClient(cfg)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    workdir = tmp_path_factory.mktemp("apiserver")
    with ApiServer(workdir, LabCA(workdir)) as server:
        yield server


@pytest.fixture(scope="module")
def core(api: ApiServer) -> client.CoreV1Api:
    return client.CoreV1Api(api_client(api))


@pytest.fixture
def ns(api: ApiServer) -> str:
    name = f"t{next(_names)}"
    api.store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


def pod(name: str, *containers: str, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {
            "containers": [{"name": c, "image": "busybox:1.36"} for c in containers or ("app",)],
            **spec,
        },
    }


def status_of(exc: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body)
    return body


def bearer(api: Any) -> dict[str, str]:
    return {"Authorization": api.api_client.configuration.api_key["BearerToken"]}


RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def test_discovery_deserializes_into_the_clients_models(api: ApiServer) -> None:
    c = api_client(api)
    assert client.CoreApi(c).get_api_versions().versions == ["v1"]
    groups = {g.name: g for g in client.ApisApi(c).get_api_versions().groups}
    assert groups["networking.istio.io"].preferred_version.version == "v1"
    assert [v.version for v in groups["networking.istio.io"].versions] == ["v1", "v1beta1", "v1alpha3"]
    resources = {r.name: r for r in client.CoreV1Api(c).get_api_resources().resources}
    assert resources["pods"].short_names == ["po"] and resources["pods"].namespaced
    assert resources["pods/log"].verbs == ["get"] and resources["services"].short_names == ["svc"]
    assert not resources["namespaces"].namespaced and resources["configmaps"].short_names == ["cm"]
    istio = {
        r.name: r for r in client.CustomObjectsApi(c).get_api_resources("networking.istio.io", "v1").resources
    }
    assert istio["serviceentries"].short_names == ["se"] and "istio-io" in istio["serviceentries"].categories
    assert "envoyfilters" not in istio  # served at v1alpha3 only, as Istio's CRD does
    assert client.VersionApi(c).get_code().git_version.startswith("v1.32")


def test_create_fills_real_defaults_and_the_models_deserialize(core: client.CoreV1Api, ns: str) -> None:
    created = core.create_namespaced_pod(ns, pod("web"))
    meta, spec = created.metadata, created.spec
    assert (
        meta.uid
        and meta.resource_version
        and RFC3339.match(meta.creation_timestamp.strftime("%Y-%m-%dT%H:%M:%SZ"))
    )
    assert (spec.restart_policy, spec.dns_policy, spec.service_account_name) == (
        "Always",
        "ClusterFirst",
        "default",
    )
    container = spec.containers[0]
    assert (container.termination_message_policy, container.image_pull_policy) == ("File", "IfNotPresent")
    assert created.status.phase == "Pending"
    fetched = core.read_namespaced_pod("web", ns)
    assert fetched.metadata.resource_version == meta.resource_version
    service = core.create_namespaced_service(
        ns, {"metadata": {"name": "svc"}, "spec": {"ports": [{"port": 80}], "selector": {"a": "b"}}}
    )
    assert service.spec.cluster_ip.startswith("10.96.") and service.spec.ports[0].target_port == 80


def test_update_patch_and_conflict_on_a_stale_resource_version(core: client.CoreV1Api, ns: str) -> None:
    cm = core.create_namespaced_config_map(ns, {"metadata": {"name": "cfg"}, "data": {"a": "1"}})
    stale = cm.metadata.resource_version
    cm.data = {"a": "2"}
    updated = core.replace_namespaced_config_map("cfg", ns, cm)
    assert int(updated.metadata.resource_version) > int(stale)
    cm.metadata.resource_version = stale
    with pytest.raises(ApiException) as caught:
        core.replace_namespaced_config_map("cfg", ns, cm)
    assert caught.value.status == 409
    assert status_of(caught.value)["message"] == (
        'Operation cannot be fulfilled on configmaps "cfg": the object has been modified; please apply your '
        "changes to the latest version and try again"
    )
    assert status_of(caught.value)["reason"] == "Conflict"
    merged = core.patch_namespaced_config_map("cfg", ns, {"data": {"b": "3"}})
    assert merged.data == {"a": "2", "b": "3"}
    unchanged = core.patch_namespaced_config_map("cfg", ns, {"data": {"b": "3"}})
    assert unchanged.metadata.resource_version == merged.metadata.resource_version  # no-op: no new version
    patched = core.patch_namespaced_config_map("cfg", ns, [{"op": "remove", "path": "/data/a"}])
    assert patched.data == {"b": "3"}


def test_strategic_merge_patch_merges_containers_by_name(core: client.CoreV1Api, ns: str) -> None:
    core.create_namespaced_pod(ns, pod("two", "a", "b"))
    patched = core.patch_namespaced_pod(
        "two", ns, {"spec": {"containers": [{"name": "b", "image": "busybox:1.37"}]}}
    )
    assert [(c.name, c.image) for c in patched.spec.containers] == [
        ("a", "busybox:1.36"),
        ("b", "busybox:1.37"),
    ]
    with pytest.raises(ApiException) as caught:
        core.patch_namespaced_pod("two", ns, {"spec": {"restartPolicy": "Never"}})
    assert (
        caught.value.status == 422
        and "pod updates may not change fields" in status_of(caught.value)["message"]
    )


def test_error_bodies_carry_the_real_reasons_and_messages(core: client.CoreV1Api, ns: str) -> None:
    core.create_namespaced_pod(ns, pod("dup"))
    cases = [
        (
            lambda: core.create_namespaced_pod(ns, pod("dup")),
            409,
            "AlreadyExists",
            'pods "dup" already exists',
        ),
        (lambda: core.read_namespaced_pod("nope", ns), 404, "NotFound", 'pods "nope" not found'),
        (
            lambda: core.create_namespaced_pod("missing-ns", pod("x")),
            404,
            "NotFound",
            'namespaces "missing-ns" not found',
        ),
        (
            lambda: core.create_namespaced_pod(ns, pod("Bad_Name")),
            422,
            "Invalid",
            'Pod "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123',
        ),
    ]
    for call, code, reason, message in cases:
        with pytest.raises(ApiException) as caught:
            call()
        body = status_of(caught.value)
        assert (caught.value.status, body["reason"], body["kind"], body["status"]) == (
            code,
            reason,
            "Status",
            "Failure",
        )
        assert body["message"].startswith(message), body["message"]
    jobs = client.BatchV1Api(core.api_client)
    bad_job = {
        "metadata": {"name": "j"},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}},
    }
    with pytest.raises(ApiException) as caught:
        jobs.create_namespaced_job(ns, bad_job)
    assert status_of(caught.value)["message"] == (
        'Job.batch "j" is invalid: spec.template.spec.restartPolicy: Unsupported value: "Always": '
        'supported values: "OnFailure", "Never"'
    )


def test_list_with_label_and_field_selectors(api: ApiServer, core: client.CoreV1Api, ns: str) -> None:
    core.create_namespaced_pod(ns, pod("a", labels={"app": "web", "tier": "front"}))
    core.create_namespaced_pod(ns, pod("b", labels={"app": "db"}))
    core.create_namespaced_pod(ns, pod("c", labels={}, nodeName="lab-node"))
    api.store.patch_status("pods", ns, "b", {"phase": "Running"})

    def names(**kw: Any) -> list[str]:
        return [p.metadata.name for p in core.list_namespaced_pod(ns, **kw).items]

    assert names(label_selector="app=web") == ["a"]
    assert names(label_selector="app!=web") == ["b", "c"]
    assert names(label_selector="app in (web,db)") == ["a", "b"]
    assert names(label_selector="app notin (web)") == ["b", "c"]
    assert names(label_selector="tier") == ["a"] and names(label_selector="!app") == ["c"]
    assert names(field_selector="metadata.name=b") == ["b"]
    assert names(field_selector="status.phase=Running") == ["b"]
    assert names(field_selector="spec.nodeName=lab-node") == ["c"]
    assert names(field_selector="status.phase!=Running,metadata.name!=a") == ["c"]
    listed = core.list_namespaced_pod(ns)
    assert listed.kind == "PodList" and int(listed.metadata.resource_version) > 0
    everywhere = core.list_pod_for_all_namespaces(label_selector="app=db")
    assert [(p.metadata.namespace, p.metadata.name) for p in everywhere.items] == [(ns, "b")]
    with pytest.raises(ApiException) as caught:
        core.list_namespaced_pod(ns, field_selector="spec.bogus=1")
    assert caught.value.status == 400


def test_generate_name_and_dry_run(core: client.CoreV1Api, ns: str) -> None:
    made = core.create_namespaced_config_map(ns, {"metadata": {"generateName": "gen-"}})
    assert re.fullmatch(r"gen-[a-z0-9]{5}", made.metadata.name)
    core.create_namespaced_config_map(ns, {"metadata": {"name": "dry"}}, dry_run="All")
    with pytest.raises(ApiException):
        core.read_namespaced_config_map("dry", ns)


def test_watch_sees_changes_in_order_and_resumes_from_a_resource_version(
    api: ApiServer, core: client.CoreV1Api, ns: str
) -> None:
    start = core.list_namespaced_config_map(ns).metadata.resource_version
    core.create_namespaced_config_map(ns, {"metadata": {"name": "w"}, "data": {"a": "1"}})
    middle = core.patch_namespaced_config_map("w", ns, {"data": {"a": "2"}}).metadata.resource_version
    core.delete_namespaced_config_map("w", ns)
    seen = [
        (e["type"], e["object"].metadata.name, e["object"].metadata.resource_version)
        for e in first(
            3,
            watch.Watch().stream(
                core.list_namespaced_config_map, ns, resource_version=start, timeout_seconds=5
            ),
        )
    ]
    assert [t for t, _, _ in seen] == ["ADDED", "MODIFIED", "DELETED"]
    assert seen[1][2] == middle
    resumed = first(
        1,
        watch.Watch().stream(core.list_namespaced_config_map, ns, resource_version=middle, timeout_seconds=5),
    )
    assert [e["type"] for e in resumed] == ["DELETED"]
    fresh = first(1, watch.Watch().stream(core.list_namespaced_service_account, ns, timeout_seconds=5))
    assert [e["object"].metadata.name for e in fresh] == [
        "default"
    ]  # no resourceVersion: ADDED for what exists


def first(count: int, events: Iterator[dict[str, Any]]) -> list[dict[str, Any]]:
    """Up to ``count`` events, then stop watching."""
    out: list[dict[str, Any]] = []
    for event in events:
        out.append(event)
        if len(out) == count:
            break
    return out


def test_watch_from_a_compacted_resource_version_is_410_gone(
    api: ApiServer, core: client.CoreV1Api, ns: str
) -> None:
    old = core.create_namespaced_config_map(ns, {"metadata": {"name": "old"}}).metadata.resource_version
    core.patch_namespaced_config_map("old", ns, {"data": {"x": "y"}})
    api.store.compact()
    with pytest.raises(ApiException) as caught:
        for _ in watch.Watch().stream(
            core.list_namespaced_config_map, ns, resource_version=old, timeout_seconds=1
        ):
            pass
    assert caught.value.status == 410 and "Expired: too old resource version" in caught.value.reason


def test_logs_choose_the_container_and_pass_options_to_the_source(
    api: ApiServer, core: client.CoreV1Api, ns: str
) -> None:
    calls: list[tuple[str, str, bool, int | None]] = []

    def source(
        namespace: str, name: str, container: str, *, follow: bool, tail_lines: int | None
    ) -> Iterator[bytes]:
        calls.append((name, container, follow, tail_lines))
        if container == "sidecar":
            raise LogUnavailable(
                f'container "{container}" in pod "{name}" is waiting to start: PodInitializing'
            )
        yield b"line 1\n"
        yield b"line 2\n"

    api.set_log_source(source)
    core.create_namespaced_pod(ns, pod("one"))
    core.create_namespaced_pod(ns, pod("many", "app", "sidecar"))
    assert core.read_namespaced_pod_log("one", ns) == "line 1\nline 2\n"
    assert (
        core.read_namespaced_pod_log("many", ns, container="app", tail_lines=5, follow=True)
        == "line 1\nline 2\n"
    )
    assert calls == [("one", "app", False, None), ("many", "app", True, 5)]
    for kwargs, message in [
        ({}, "a container name must be specified for pod many, choose one of: [app sidecar]"),
        ({"container": "sidecar"}, 'container "sidecar" in pod "many" is waiting to start: PodInitializing'),
        ({"container": "nope"}, "container nope is not valid for pod many"),
    ]:
        with pytest.raises(ApiException) as caught:
            core.read_namespaced_pod_log("many", ns, **kwargs)
        assert caught.value.status == 400 and status_of(caught.value)["message"] == message


def test_ephemeral_containers_are_added_but_never_changed_or_removed(core: client.CoreV1Api, ns: str) -> None:
    core.create_namespaced_pod(ns, pod("dbg"))
    debug = {"name": "debugger", "image": "busybox:1.36", "targetContainerName": "app"}
    added = core.patch_namespaced_pod_ephemeralcontainers(
        "dbg", ns, {"spec": {"ephemeralContainers": [debug]}}
    )
    container = added.spec.ephemeral_containers[0]
    assert (container.name, container.target_container_name, container.termination_message_policy) == (
        "debugger",
        "app",
        "File",
    )
    for body, text in [
        (
            {"spec": {"ephemeralContainers": [dict(debug, image="busybox:1.37")]}},
            'Pod "dbg" is invalid: spec.ephemeralContainers: Forbidden: existing ephemeral containers '
            '"debugger" may not be changed',
        ),
        (
            [{"op": "replace", "path": "/spec/ephemeralContainers", "value": []}],
            'Pod "dbg" is invalid: spec.ephemeralContainers: Forbidden: existing ephemeral containers '
            '"debugger" may not be removed\n',
        ),
    ]:
        with pytest.raises(ApiException) as caught:
            core.patch_namespaced_pod_ephemeralcontainers("dbg", ns, body)
        assert caught.value.status == 422 and status_of(caught.value)["message"] == text
    with pytest.raises(ApiException) as caught:  # only the subresource adds them
        core.patch_namespaced_pod("dbg", ns, {"spec": {"ephemeralContainers": [dict(debug, name="other")]}})
    assert caught.value.status == 422


def test_custom_resources_at_every_served_istio_version(core: client.CoreV1Api, ns: str) -> None:
    custom = client.CustomObjectsApi(core.api_client)
    for rtype in ISTIO:
        first = rtype.versions[-1]
        body = {
            "apiVersion": f"{rtype.group}/{first}",
            "kind": rtype.kind,
            "metadata": {"name": "x"},
            "spec": {},
        }
        created = custom.create_namespaced_custom_object(rtype.group, first, ns, rtype.plural, body)
        assert created["metadata"]["generation"] == 1
        for version in rtype.versions:
            got = custom.get_namespaced_custom_object(rtype.group, version, ns, rtype.plural, "x")
            assert (got["apiVersion"], got["kind"]) == (f"{rtype.group}/{version}", rtype.kind)
            listed = custom.list_namespaced_custom_object(rtype.group, version, ns, rtype.plural)
            assert listed["kind"] == f"{rtype.kind}List" and len(listed["items"]) == 1
        with pytest.raises(ApiException) as caught:
            custom.get_namespaced_custom_object(rtype.group, "v9", ns, rtype.plural, "x")
        assert status_of(caught.value)["message"] == "the server could not find the requested resource"
    patched = custom.patch_namespaced_custom_object(
        "networking.istio.io", "v1", ns, "serviceentries", "x", {"spec": {"hosts": ["a.example"]}}
    )
    assert patched["spec"] == {"hosts": ["a.example"]} and patched["metadata"]["generation"] == 2
    refused = core.api_client.call_api(  # custom resources take no strategic merge patch
        "PATCH",
        f"{core.api_client.configuration.host}/apis/networking.istio.io/v1/namespaces/{ns}/serviceentries/x",
        header_params={"Content-Type": "application/strategic-merge-patch+json", **bearer(core)},
        body={"spec": {}},
    )
    refused.read()
    assert refused.status == 415 and json.loads(refused.data)["reason"] == "UnsupportedMediaType"


def test_typed_apis_deserialize_every_builtin_kind(api: ApiServer, core: client.CoreV1Api, ns: str) -> None:
    c = core.api_client
    rbac = client.RbacAuthorizationV1Api(c)
    role = rbac.create_namespaced_role(
        ns,
        {"metadata": {"name": "r"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]},
    )
    binding = rbac.create_namespaced_role_binding(
        ns,
        {
            "metadata": {"name": "rb"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
            "subjects": [{"kind": "User", "name": "bob", "apiGroup": "rbac.authorization.k8s.io"}],
        },
    )
    assert role.rules[0].verbs == ["get"] and binding.role_ref.name == "r"
    assert rbac.read_cluster_role("cluster-admin").rules[0].verbs == ["*"]
    slices = client.DiscoveryV1Api(c).create_namespaced_endpoint_slice(
        ns, {"metadata": {"name": "s"}, "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"]}]}
    )
    assert slices.endpoints[0].addresses == ["10.0.0.1"]
    core.create_namespaced_endpoints(ns, {"metadata": {"name": "e"}, "subsets": []})
    assert [s.metadata.name for s in core.list_namespaced_service_account(ns).items] == ["default"]
    api.store.create(
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "ev", "namespace": ns},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": ns},
            "reason": "Test",
            "message": "hello",
            "type": "Normal",
        }
    )
    assert [e.reason for e in core.list_namespaced_event(ns).items] == ["Test"]
    review = client.AuthorizationV1Api(c).create_self_subject_access_review(
        {"spec": {"resourceAttributes": {"verb": "create", "resource": "pods", "namespace": ns}}}
    )
    assert review.status.allowed is True


def test_graceful_pod_deletion_waits_for_the_kubelet(api: ApiServer, core: client.CoreV1Api, ns: str) -> None:
    core.create_namespaced_pod(ns, pod("run", nodeName="lab-node"))
    core.delete_namespaced_pod("run", ns)
    marked = core.read_namespaced_pod("run", ns)
    assert (
        marked.metadata.deletion_timestamp is not None and marked.metadata.deletion_grace_period_seconds == 30
    )
    api.store.remove("pods", ns, "run")
    with pytest.raises(ApiException):
        core.read_namespaced_pod("run", ns)
    core.create_namespaced_pod(ns, pod("now", nodeName="lab-node"))
    core.delete_namespaced_pod("now", ns, grace_period_seconds=0)
    core.create_namespaced_pod(ns, pod("unscheduled"))
    core.delete_namespaced_pod("unscheduled", ns)
    assert core.list_namespaced_pod(ns).items == []


def test_delete_collection_and_uid_precondition(core: client.CoreV1Api, ns: str) -> None:
    for name in ("a", "b"):
        core.create_namespaced_config_map(ns, {"metadata": {"name": name, "labels": {"drop": "yes"}}})
    kept = core.create_namespaced_config_map(ns, {"metadata": {"name": "c"}})
    core.delete_collection_namespaced_config_map(ns, label_selector="drop=yes")
    left = [c.metadata.name for c in core.list_namespaced_config_map(ns).items]
    assert left == ["c", "kube-root-ca.crt"]
    with pytest.raises(ApiException) as caught:
        core.delete_namespaced_config_map(
            "c",
            ns,
            body=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid="not-" + kept.metadata.uid)),
        )
    assert caught.value.status == 409


def test_unknown_token_is_401_and_store_subscribers_see_commit_order(
    api: ApiServer, ns: str, tmp_path: Path
) -> None:
    api.add_user("ghost")
    path = api.kubeconfig("ghost", tmp_path / "kc", namespace=ns)
    assert config.list_kube_config_contexts(str(path))[1]["context"] == {
        "cluster": "lab",
        "user": "ghost",
        "namespace": ns,
    }
    path.write_text(path.read_text().replace(api.token_of("ghost"), "wrong"))
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(path), client_configuration=cfg)
    with pytest.raises(ApiException) as caught:
        client.CoreV1Api(client.ApiClient(cfg)).list_namespaced_pod(ns)
    assert caught.value.status == 401 and status_of(caught.value)["message"] == "Unauthorized"
    seen: list[tuple[str, str, str]] = []
    threads: set[str] = set()
    done = threading.Event()

    def record(kind: str, obj: dict[str, Any]) -> None:
        threads.add(threading.current_thread().name)
        if obj["metadata"].get("namespace") == ns:
            seen.append((kind, obj["kind"], obj["metadata"]["name"]))
            if kind == "DELETED":
                done.set()

    stop = api.store.subscribe(record)
    api.store.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "s", "namespace": ns}})
    api.store.delete("configmaps", ns, "s")
    assert done.wait(5)
    stop()
    assert seen == [("ADDED", "ConfigMap", "s"), ("DELETED", "ConfigMap", "s")] and len(threads) == 1


def test_without_istio_crds_the_groups_are_absent_and_their_paths_404(tmp_path: Path) -> None:
    with ApiServer(tmp_path, LabCA(tmp_path), istio_crds=False) as bare:
        kube = api_client(bare)
        groups = {g.name for g in client.ApisApi(kube).get_api_versions().groups}
        assert "batch" in groups and not any(g.endswith("istio.io") for g in groups)
        with pytest.raises(ApiException) as caught:
            client.CustomObjectsApi(kube).list_namespaced_custom_object(
                "networking.istio.io", "v1", "default", "serviceentries"
            )
        assert caught.value.status == 404 and status_of(caught.value) == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "the server could not find the requested resource",
            "reason": "NotFound",
            "details": {},
            "code": 404,
        }
        plain = kube.call_api("GET", f"{bare.url}/nothing-here", header_params=bearer(client.CoreV1Api(kube)))
        plain.read()
        assert (plain.status, plain.data) == (404, b"404 page not found\n")
