"""RBAC in the stand-in API server, through the ``kubernetes`` client as restricted users:
Role/ClusterRole with RoleBinding/ClusterRoleBinding, subresources, resourceNames, groups and
service accounts, bootstrap discovery access, SelfSubjectAccessReview, and the exact 403 body."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from lab.apiserver import ApiServer
from lab.certs import LabCA

RBAC = "rbac.authorization.k8s.io"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    workdir = tmp_path_factory.mktemp("apiserver")
    with ApiServer(workdir, LabCA(workdir)) as server:
        for ns in ("shop", "other"):
            server.store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
            for name in ("a", "b"):
                server.store.create(
                    {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "metadata": {"name": name, "namespace": ns},
                        "spec": {"containers": [{"name": "app", "image": "x"}]},
                    }
                )
        server.set_log_source(lambda ns, pod, c, *, follow, tail_lines: iter([b"log\n"]))
        yield server


def as_user(api: ApiServer, user: str, groups: tuple[str, ...] = ()) -> client.CoreV1Api:
    api.add_user(user, groups)
    return client.CoreV1Api(config.new_client_from_config(config_file=str(api.kubeconfig(user))))


def role(api: ApiServer, kind: str, name: str, rules: list[dict[str, Any]], ns: str | None = None) -> None:
    meta: dict[str, Any] = {"name": name}
    if ns:
        meta["namespace"] = ns
    api.store.create({"apiVersion": f"{RBAC}/v1", "kind": kind, "metadata": meta, "rules": rules})


def bind(
    api: ApiServer,
    kind: str,
    name: str,
    role_kind: str,
    role_name: str,
    subjects: list[dict[str, Any]],
    ns: str | None = None,
) -> None:
    meta: dict[str, Any] = {"name": name}
    if ns:
        meta["namespace"] = ns
    api.store.create(
        {
            "apiVersion": f"{RBAC}/v1",
            "kind": kind,
            "metadata": meta,
            "subjects": subjects,
            "roleRef": {"apiGroup": RBAC, "kind": role_kind, "name": role_name},
        }
    )


def user(name: str) -> list[dict[str, Any]]:
    return [{"kind": "User", "name": name, "apiGroup": RBAC}]


def forbidden(call: Any) -> dict[str, Any]:
    with pytest.raises(ApiException) as caught:
        call()
    assert caught.value.status == 403
    body: dict[str, Any] = json.loads(caught.value.body)
    assert (body["reason"], body["code"]) == ("Forbidden", 403)
    return body


def test_role_and_rolebinding_allow_only_their_namespace_and_verbs(api: ApiServer) -> None:
    role(
        api,
        "Role",
        "pod-reader",
        [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
        "shop",
    )
    bind(api, "RoleBinding", "alice-reads", "Role", "pod-reader", user("alice"), "shop")
    alice = as_user(api, "alice")
    assert [p.metadata.name for p in alice.list_namespaced_pod("shop").items] == ["a", "b"]
    assert alice.read_namespaced_pod("a", "shop").metadata.name == "a"
    body = forbidden(
        lambda: alice.create_namespaced_pod(
            "shop", {"metadata": {"name": "c"}, "spec": {"containers": [{"name": "x", "image": "x"}]}}
        )
    )
    assert body["message"] == (
        'pods is forbidden: User "alice" cannot create resource "pods" in API group "" '
        'in the namespace "shop"'
    )
    assert body["details"] == {"kind": "pods"}
    body = forbidden(lambda: alice.read_namespaced_pod("a", "other"))
    assert body["message"] == (
        'pods "a" is forbidden: User "alice" cannot get resource "pods" in API group "" '
        'in the namespace "other"'
    )
    body = forbidden(lambda: alice.list_namespace())
    assert body["message"] == (
        'namespaces is forbidden: User "alice" cannot list resource "namespaces" in API '
        'group "" at the cluster scope'
    )


def test_subresources_need_their_own_rule(api: ApiServer) -> None:
    role(api, "Role", "pods-only", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}], "shop")
    role(api, "Role", "logs", [{"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}], "shop")
    bind(api, "RoleBinding", "bob-pods", "Role", "pods-only", user("bob"), "shop")
    bob = as_user(api, "bob")
    body = forbidden(lambda: bob.read_namespaced_pod_log("a", "shop"))
    assert body["message"] == (
        'pods "a" is forbidden: User "bob" cannot get resource "pods/log" in API group "" '
        'in the namespace "shop"'
    )
    body = forbidden(lambda: bob.patch_namespaced_pod_ephemeralcontainers("a", "shop", {"spec": {}}))
    assert 'cannot patch resource "pods/ephemeralcontainers"' in body["message"]
    bind(api, "RoleBinding", "bob-logs", "Role", "logs", user("bob"), "shop")
    assert bob.read_namespaced_pod_log("a", "shop") == "log\n"


def test_resource_names_limit_a_rule_to_named_objects(api: ApiServer) -> None:
    role(
        api,
        "Role",
        "one-pod",
        [
            {
                "apiGroups": [""],
                "resources": ["pods"],
                "verbs": ["get", "list", "watch"],
                "resourceNames": ["a"],
            }
        ],
        "shop",
    )
    bind(api, "RoleBinding", "carol-one", "Role", "one-pod", user("carol"), "shop")
    carol = as_user(api, "carol")
    assert carol.read_namespaced_pod("a", "shop").metadata.name == "a"
    forbidden(lambda: carol.read_namespaced_pod("b", "shop"))
    forbidden(lambda: carol.list_namespaced_pod("shop"))
    narrowed = carol.list_namespaced_pod("shop", field_selector="metadata.name=a")  # names the object
    assert [p.metadata.name for p in narrowed.items] == ["a"]


def test_cluster_roles_bound_cluster_wide_or_per_namespace(api: ApiServer) -> None:
    role(
        api,
        "ClusterRole",
        "ns-viewer",
        [
            {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list"]},
            {"apiGroups": ["*"], "resources": ["*"], "verbs": ["watch"]},
        ],
    )
    role(api, "ClusterRole", "cm-writer", [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["*"]}])
    bind(api, "ClusterRoleBinding", "dave-ns", "ClusterRole", "ns-viewer", user("dave"))
    bind(api, "RoleBinding", "dave-cm", "ClusterRole", "cm-writer", user("dave"), "other")
    dave = as_user(api, "dave")
    assert "shop" in [n.metadata.name for n in dave.list_namespace().items]
    dave.create_namespaced_config_map("other", {"metadata": {"name": "d"}})
    body = forbidden(lambda: dave.create_namespaced_config_map("shop", {"metadata": {"name": "d"}}))
    assert body["message"].endswith(
        'cannot create resource "configmaps" in API group "" in the namespace "shop"'
    )


def test_groups_and_service_accounts_are_subjects(api: ApiServer) -> None:
    role(api, "Role", "pod-lister", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}], "other")
    bind(
        api,
        "RoleBinding",
        "team",
        "Role",
        "pod-lister",
        [{"kind": "Group", "name": "team", "apiGroup": RBAC}, {"kind": "ServiceAccount", "name": "probe"}],
        "other",
    )
    assert len(as_user(api, "erin", ("team",)).list_namespaced_pod("other").items) == 2
    assert len(as_user(api, "system:serviceaccount:other:probe").list_namespaced_pod("other").items) == 2
    forbidden(lambda: as_user(api, "system:serviceaccount:shop:probe").list_namespaced_pod("other"))
    forbidden(lambda: as_user(api, "frank", ("not-team",)).list_namespaced_pod("other"))


def test_every_authenticated_user_may_discover_and_review_itself(api: ApiServer) -> None:
    nobody = as_user(api, "nobody")
    kube = nobody.api_client
    assert client.CoreApi(kube).get_api_versions().versions == ["v1"]
    assert any(g.name == "batch" for g in client.ApisApi(kube).get_api_versions().groups)
    assert client.VersionApi(kube).get_code().major == "1"
    reviews = client.AuthorizationV1Api(kube)
    denied = reviews.create_self_subject_access_review(
        {"spec": {"resourceAttributes": {"verb": "create", "resource": "pods", "namespace": "shop"}}}
    )
    assert denied.status.allowed is False
    role(api, "Role", "creator", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}], "shop")
    bind(api, "RoleBinding", "nobody-creates", "Role", "creator", user("nobody"), "shop")
    allowed = reviews.create_self_subject_access_review(
        {"spec": {"resourceAttributes": {"verb": "create", "resource": "pods", "namespace": "shop"}}}
    )
    assert allowed.status.allowed is True
    assert (
        allowed.status.reason
        == 'RBAC: allowed by RoleBinding "nobody-creates/shop" of Role "creator" to User "nobody"'
    )
    status, body = raw_get(kube, "/metrics")
    assert status == 403 and body["message"] == 'forbidden: User "nobody" cannot get path "/metrics"'


def raw_get(kube: client.ApiClient, path: str) -> tuple[int, dict[str, Any]]:
    response = kube.call_api(
        "GET",
        kube.configuration.host + path,
        header_params={"Authorization": kube.configuration.api_key["BearerToken"]},
    )
    response.read()
    return response.status, json.loads(response.data)
