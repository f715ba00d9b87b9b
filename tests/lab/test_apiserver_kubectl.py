"""The real ``kubectl`` against the stand-in API server: apply (create, configured, unchanged,
server dry run), get -o json, get -w, delete, logs, wait, auth can-i, api-resources, custom
resources, and the typed commands that send protobuf bodies (create namespace, run, debug)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.apiserver import ApiServer
from lab.certs import LabCA

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")

MANIFEST = """\
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec:
  containers:
  - {name: app, image: "nginx:IMAGE"}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: shop}
spec:
  hosts: [api.example.com]
  ports: [{number: 443, name: https, protocol: TLS}]
  resolution: RESOLUTION
"""


class Kubectl:
    def __init__(self, kubeconfig: Path, cache: Path) -> None:
        self.base = [
            str(KUBECTL),
            f"--kubeconfig={kubeconfig}",
            f"--cache-dir={cache}",
            "--request-timeout=10s",
        ]

    def __call__(
        self, *args: str, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*self.base, *args], capture_output=True, text=True, timeout=30, input=stdin, check=False
        )
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({done.returncode}): {done.stderr}")
        return done

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*self.base, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    workdir = tmp_path_factory.mktemp("apiserver")
    with ApiServer(workdir, LabCA(workdir)) as server:
        server.set_log_source(
            lambda ns, pod, c, *, follow, tail_lines: iter([f"{pod}/{c} says hi\n".encode()])
        )
        yield server


@pytest.fixture(scope="module")
def kubectl(api: ApiServer, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return Kubectl(api.kubeconfig(), tmp_path_factory.mktemp("kubectl-cache"))


def manifest(tmp_path: Path, image: str, resolution: str) -> str:
    path = tmp_path / "m.yaml"
    path.write_text(MANIFEST.replace("IMAGE", image).replace("RESOLUTION", resolution))
    return str(path)


def test_apply_creates_then_configures_then_leaves_unchanged(
    api: ApiServer, kubectl: Kubectl, tmp_path: Path
) -> None:
    first = kubectl("apply", "-f", manifest(tmp_path, "1.25", "DNS")).stdout.splitlines()
    assert first == [
        "namespace/shop created",
        "pod/web created",
        "serviceentry.networking.istio.io/ext created",
    ]
    second = kubectl("apply", "-f", manifest(tmp_path, "1.26", "NONE")).stdout.splitlines()
    assert second == [
        "namespace/shop unchanged",
        "pod/web configured",
        "serviceentry.networking.istio.io/ext configured",
    ]
    third = kubectl("apply", "-f", manifest(tmp_path, "1.26", "NONE")).stdout.splitlines()
    assert third[1:] == ["pod/web unchanged", "serviceentry.networking.istio.io/ext unchanged"]
    pod = json.loads(kubectl("get", "pod", "web", "-n", "shop", "-o", "json").stdout)
    assert pod["spec"]["containers"][0]["image"] == "nginx:1.26"
    assert "kubectl.kubernetes.io/last-applied-configuration" in pod["metadata"]["annotations"]
    se = api.store.get("serviceentries", "shop", "ext", "networking.istio.io")
    assert se is not None and se["spec"]["resolution"] == "NONE" and se["metadata"]["generation"] == 2
    listed = kubectl("get", "serviceentries.networking.istio.io", "-A", "-o", "json").stdout
    assert [i["metadata"]["name"] for i in json.loads(listed)["items"]] == ["ext"]
    table = kubectl("get", "se", "-n", "shop").stdout.splitlines()
    assert table[0].split() == ["NAME", "HOSTS", "LOCATION", "RESOLUTION", "AGE"]
    assert table[1].split()[:3] == ["ext", '["api.example.com"]', "NONE"]
    pods = kubectl("get", "pods", "-n", "shop").stdout.splitlines()
    assert pods[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert pods[1].split()[:3] == ["web", "0/1", "Pending"]


def test_apply_server_dry_run_persists_nothing(api: ApiServer, kubectl: Kubectl, tmp_path: Path) -> None:
    path = tmp_path / "cm.yaml"
    path.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: dry, namespace: default}\ndata: {a: b}\n"
    )
    assert kubectl("apply", "--dry-run=server", "-f", str(path)).stdout.strip() == (
        "configmap/dry created (server dry run)"
    )
    assert api.store.get("configmaps", "default", "dry") is None


def test_get_watch_prints_changes_as_they_happen(api: ApiServer, kubectl: Kubectl) -> None:
    kubectl("run", "watched", "--image=busybox:1.36", "-n", "default")
    proc = kubectl.popen("get", "pods", "-n", "default", "-w", "--no-headers")
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().split()[:4] == ["watched", "0/1", "Pending", "0"]
        running = {"running": {"startedAt": "2026-01-01T00:00:00Z"}}
        api.store.patch_status(
            "pods",
            "default",
            "watched",
            {
                "phase": "Running",
                "containerStatuses": [
                    {
                        "name": "watched",
                        "ready": True,
                        "restartCount": 1,
                        "image": "busybox",
                        "imageID": "",
                        "state": running,
                    }
                ],
            },
        )
        assert proc.stdout.readline().split()[:4] == ["watched", "1/1", "Running", "1"]
    finally:
        proc.kill()
        proc.wait(5)


def test_logs_wait_and_delete(api: ApiServer, kubectl: Kubectl) -> None:
    kubectl("run", "waiter", "--image=busybox:1.36", "-n", "default")
    assert kubectl("logs", "waiter", "-n", "default").stdout == "waiter/waiter says hi\n"
    timed_out = kubectl(
        "wait", "--for=condition=Ready", "pod/waiter", "-n", "default", "--timeout=1s", check=False
    )
    assert timed_out.returncode != 0 and "timed out" in timed_out.stderr
    waiting = kubectl.popen("wait", "--for=condition=Ready", "pod/waiter", "-n", "default", "--timeout=5s")
    time.sleep(0.5)
    api.store.patch_status(
        "pods",
        "default",
        "waiter",
        {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
        },
    )
    out, err = waiting.communicate(timeout=10)
    assert waiting.returncode == 0, err
    assert out.strip() == "pod/waiter condition met"
    assert kubectl("delete", "pod", "waiter", "-n", "default").stdout.strip() == 'pod "waiter" deleted'
    assert api.store.get("pods", "default", "waiter") is None


def test_auth_can_i_for_admin_and_a_restricted_user(
    api: ApiServer, kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory
) -> None:
    assert kubectl("auth", "can-i", "create", "pods", "-n", "shop").stdout.strip() == "yes"
    api.add_user("viewer")
    api.store.create(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "viewer", "namespace": "shop"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "name": "viewer", "apiGroup": "rbac.authorization.k8s.io"}],
        }
    )
    viewer = Kubectl(api.kubeconfig("viewer"), tmp_path_factory.mktemp("viewer-cache"))
    denied = viewer("auth", "can-i", "create", "pods", "-n", "shop", check=False)
    assert (denied.returncode, denied.stdout.strip()) == (1, "no")
    assert viewer("auth", "can-i", "list", "pods", "-n", "shop").stdout.strip() == "yes"
    whoami = viewer("auth", "whoami").stdout.split()
    assert whoami[2:6] == ["Username", "viewer", "Groups", "[system:authenticated]"]
    refused = viewer("get", "pods", "-n", "default", check=False)
    assert refused.returncode == 1 and refused.stderr.strip() == (
        'Error from server (Forbidden): pods is forbidden: User "viewer" cannot list resource "pods" in API '
        'group "" in the namespace "default"'
    )


def test_api_resources_lists_builtin_and_istio_kinds(kubectl: Kubectl) -> None:
    rows = {line.split()[0]: line.split() for line in kubectl("api-resources").stdout.splitlines()[1:]}
    for name, short in [
        ("pods", "po"),
        ("services", "svc"),
        ("configmaps", "cm"),
        ("namespaces", "ns"),
        ("serviceentries", "se"),
        ("destinationrules", "dr"),
        ("virtualservices", "vs"),
        ("gateways", "gw"),
    ]:
        assert rows[name][1] == short, rows[name]
    assert rows["jobs"][1:] == ["batch/v1", "true", "Job"]
    assert rows["envoyfilters"][1:] == ["networking.istio.io/v1alpha3", "true", "EnvoyFilter"]


def test_typed_commands_send_protobuf_and_are_understood(api: ApiServer, kubectl: Kubectl) -> None:
    assert kubectl("create", "namespace", "typed").stdout.strip() == "namespace/typed created"
    kubectl("create", "configmap", "settings", "-n", "typed", "--from-literal=mode=strict")
    assert api.store.get("configmaps", "typed", "settings")["data"] == {"mode": "strict"}  # type: ignore[index]
    kubectl("run", "target", "--image=busybox:1.36", "-n", "typed", "--labels=app=t", "--env=A=1")
    pod = api.store.get("pods", "typed", "target")
    assert pod is not None and pod["metadata"]["labels"] == {"app": "t"}
    assert pod["spec"]["containers"][0]["env"] == [{"name": "A", "value": "1"}]
    kubectl("debug", "target", "-n", "typed", "--image=busybox:1.36", "-c", "dbg", "--profile=general")
    pod = api.store.get("pods", "typed", "target")
    assert pod is not None and [c["name"] for c in pod["spec"]["ephemeralContainers"]] == ["dbg"]
    kubectl("create", "job", "once", "-n", "typed", "--image=busybox:1.36")
    events = kubectl("get", "events", "-n", "typed", "-o", "json").stdout
    assert any(e["reason"] == "SuccessfulCreate" for e in json.loads(events)["items"])
