"""`meshprobe cleanup` in the lab, through the real `kubernetes` client: leftovers of a `--keep-pod`
run, of a CLI killed with SIGKILL (finished and still going), and an orphaned pod are removed
and gone when the command returns; anything without meshprobe's label — whatever its name — is
never touched; `--dry-run`, `--all-namespaces`, `--older-than`, the ephemeral-container note and
the errors.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import require_lab

pytestmark = pytest.mark.lab

CONFIG = """
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Namespace
metadata: {name: other, labels: {istio-injection: enabled}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: pkg, namespace: shop}
spec:
  hosts: [pkg.lab.example]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 443, name: tls, protocol: TLS}]
"""
APP = {"name": "app", "image": "lab.example/app:1", "command": ["sleep", "600"]}
NO_SIDECAR = {"sidecar.istio.io/inject": "false"}


@pytest.fixture(scope="module")
def lab() -> Iterator[Any]:
    require_lab()
    from lab.runtime import Lab

    with Lab(
        list(yaml.safe_load_all(CONFIG)),
        mode="REGISTRY_ONLY",
        internet=["pkg.lab.example"],
        api=True,
        pods=[],
        drain_seconds=0.1,
    ) as running:
        yield running


@pytest.fixture
def clean(lab: Any) -> Iterator[None]:
    """Every test starts and ends without meshprobe objects (removed as admin, in-process)."""
    _purge(lab)
    yield
    _purge(lab)


def _purge(lab: Any) -> None:
    store = lab.control_plane.store
    for job in store.list("jobs", group="batch", label_selector="app.kubernetes.io/managed-by=meshprobe"):
        store.delete("jobs", job["metadata"]["namespace"], job["metadata"]["name"], group="batch")
    for pod in store.list("pods", label_selector="app.kubernetes.io/managed-by=meshprobe"):
        store.delete("pods", pod["metadata"]["namespace"], pod["metadata"]["name"])
    wait_for(lambda: not ours(lab), 15, "meshprobe objects of an earlier test")


def ours(lab: Any) -> list[str]:
    store = lab.control_plane.store
    selector = "app.kubernetes.io/managed-by=meshprobe"
    jobs = store.list("jobs", group="batch", label_selector=selector)
    pods = store.list("pods", label_selector=selector)
    return sorted(f"{o['kind']} {o['metadata']['namespace']}/{o['metadata']['name']}" for o in jobs + pods)


def wait_for(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def phase(lab: Any, namespace: str, name: str) -> str | None:
    pod = lab.control_plane.store.get("pods", namespace, name)
    return (pod or {}).get("status", {}).get("phase")


def meshprobe(lab: Any, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from diag.cli import main

    code = main([args[0], "--kubeconfig", str(lab.kubeconfig), *args[1:]])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def job_finished(lab: Any, namespace: str) -> bool:
    jobs = lab.control_plane.store.list(
        "jobs", namespace, group="batch", label_selector="app.kubernetes.io/managed-by=meshprobe"
    )
    return bool(jobs) and all(
        any(
            c["type"] in ("Complete", "Failed") and c["status"] == "True"
            for c in j["status"].get("conditions") or []
        )
        for j in jobs
    )


def keep_pod_run(lab: Any, capsys: pytest.CaptureFixture[str], namespace: str = "shop") -> None:
    code, out, err = meshprobe(lab, capsys, "check", "-n", namespace, "--keep-pod", "pkg.lab.example")
    assert code == 0, err
    assert "meshprobe cleanup" in out  # the report says how to remove the kept pod
    wait_for(lambda: job_finished(lab, namespace), 20, "the kept run's Job to finish")


@pytest.fixture
def bystanders(lab: Any) -> Iterator[list[tuple[str, str, str]]]:
    """Objects cleanup must never touch: a Job named like ours without our label, a pod labelled
    by another manager, a pod with only our run-id label, and a finished pod of another tool."""
    store = lab.control_plane.store
    made = [
        store.create(
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": "meshprobe-lookalike", "namespace": "shop", "labels": {"app": "report"}},
                "spec": {
                    "backoffLimit": 0,
                    "template": {
                        "metadata": {"labels": {"app": "report"}, "annotations": NO_SIDECAR},
                        "spec": {"restartPolicy": "Never", "containers": [APP]},
                    },
                },
            }
        ),
        store.create(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": "meshprobe-helm",
                    "namespace": "shop",
                    "labels": {"app.kubernetes.io/managed-by": "helm"},
                    "annotations": NO_SIDECAR,
                },
                "spec": {"restartPolicy": "Never", "containers": [APP]},
            }
        ),
        store.create(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": "run-label-only",
                    "namespace": "shop",
                    "labels": {"meshprobe.io/run-id": "deadbeef"},
                    "annotations": NO_SIDECAR,
                },
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{**APP, "command": ["true"]}],  # finishes at once
                },
            }
        ),
    ]
    refs = [(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]) for o in made]
    yield refs
    for kind, ns, name in refs:
        if kind == "Job":
            store.delete("jobs", ns, name, group="batch")
        else:
            store.delete("pods", ns, name)


def untouched(lab: Any, refs: list[tuple[str, str, str]]) -> list[str]:
    store = lab.control_plane.store
    problems = []
    for kind, ns, name in refs:
        obj = store.get("jobs", ns, name, "batch") if kind == "Job" else store.get("pods", ns, name)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            problems.append(f"{kind} {ns}/{name}")
    return problems


def test_keep_pod_leftovers_are_removed_and_nothing_else(
    lab: Any, clean: None, bystanders: list[tuple[str, str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    keep_pod_run(lab, capsys)
    left = ours(lab)
    assert len(left) == 2 and left[0].startswith("Job shop/meshprobe-"), left
    job = left[0].split("/")[1]
    code, out, err = meshprobe(lab, capsys, "cleanup", "-n", "shop")
    assert code == 0, err
    assert ours(lab) == [], "cleanup returned before its objects were gone"
    assert f"removed job shop/{job} (run {job.removeprefix('meshprobe-')}, finished" in out
    assert "and its pod meshprobe-" in out
    assert out.strip().splitlines()[-1] == "removed 1 Job and 1 pod in namespace shop"
    assert untouched(lab, bystanders) == []
    code, out, _ = meshprobe(lab, capsys, "cleanup", "-n", "shop")
    assert code == 0 and out.strip() == "nothing to remove in namespace shop"


def _spawn_check(lab: Any, namespace: str = "shop") -> subprocess.Popen[str]:
    argv = [
        sys.executable,
        "-c",
        "from diag.cli import run; run()",
        "check",
        "--kubeconfig",
        str(lab.kubeconfig),
    ]
    return subprocess.Popen(
        [*argv, "-n", namespace, "pkg.lab.example"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        text=True,
    )


def _kill_when_the_pod_exists(lab: Any, proc: subprocess.Popen[str]) -> None:
    store = lab.control_plane.store
    try:
        wait_for(
            lambda: bool(store.list("pods", "shop", label_selector="meshprobe.io/run-id")), 20, "a probe pod"
        )
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)


def test_a_killed_cli_leaves_a_run_that_cleanup_removes(
    lab: Any, clean: None, capsys: pytest.CaptureFixture[str]
) -> None:
    _kill_when_the_pod_exists(lab, _spawn_check(lab))
    assert ours(lab), "SIGKILL should have left the run behind"
    wait_for(lambda: job_finished(lab, "shop"), 20, "the orphaned run to finish")
    code, out, err = meshprobe(lab, capsys, "cleanup", "-n", "shop")
    assert code == 0, err
    assert "removed 1 Job and 1 pod in namespace shop" in out
    assert ours(lab) == []


def test_a_run_still_going_is_left_alone_unless_older_than(
    lab: Any, clean: None, capsys: pytest.CaptureFixture[str]
) -> None:
    faults = lab.control_plane.kubelet.faults
    faults.proxy_never_starts = True  # the probe waits for its sidecar: the run never finishes
    try:
        _kill_when_the_pod_exists(lab, _spawn_check(lab))
        code, out, err = meshprobe(lab, capsys, "cleanup", "-n", "shop")
        assert code == 0, err
        assert "left job shop/meshprobe-" in out and "not finished" in out and "--older-than 0" in out
        assert out.strip().splitlines()[-1] == "nothing to remove in namespace shop"
        assert len(ours(lab)) == 2
        code, out, err = meshprobe(lab, capsys, "cleanup", "-n", "shop", "--older-than", "1h")
        assert code == 0 and "nothing to remove" in out and len(ours(lab)) == 2
        code, out, err = meshprobe(lab, capsys, "cleanup", "-n", "shop", "--older-than", "0s")
        assert code == 0, err
        assert "removed 1 Job and 1 pod in namespace shop" in out and "not finished" in out
        assert ours(lab) == []
    finally:
        faults.proxy_never_starts = False


@pytest.mark.parametrize("native", [True, False], ids=["native-sidecar", "regular-sidecar"])
def test_the_example_probe_pod_runs_and_cleanup_removes_it_alone(
    lab: Any, clean: None, native: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """`manifests/probe-pod.yaml` (rendered for the lab's namespace and host) is a pod without a
    Job: applied as is it probes, finishes despite its sidecar, prints the result, and cleanup
    removes it alone."""
    from diag.cluster import Cluster
    from diag.manifests import probe_pod

    store = lab.control_plane.store
    store.create(probe_pod("shop", targets=["pkg.lab.example"], native=native), admission=True)
    wait_for(
        lambda: (
            (store.get("pods", "shop", "meshprobe-example") or {}).get("status", {}).get("phase")
            in ("Succeeded", "Failed")
        ),
        30,
        "the example probe pod to finish",
    )
    pod = store.get("pods", "shop", "meshprobe-example")
    sidecars = [
        c["name"] for c in pod["spec"].get("initContainers") or [] if c.get("restartPolicy") == "Always"
    ]
    assert (sidecars == ["istio-proxy"]) is native
    assert pod["status"]["phase"] == "Succeeded"
    cluster = Cluster.connect(str(lab.kubeconfig))
    try:
        log = cluster.request(
            "GET",
            "/api/v1/namespaces/shop/pods/meshprobe-example/log",
            query={"container": "probe"},
            raw=True,
        ).decode()
    finally:
        cluster.close()
    result = json.loads(
        next(line for line in log.splitlines() if line.startswith('{"schema": "meshprobe.probe/v1"'))
    )
    assert [t["signature"] for t in result["results"]] == ["OK"]
    code, out, err = meshprobe(lab, capsys, "cleanup", "-n", "shop")
    assert code == 0, err
    assert "removed pod shop/meshprobe-example (no Job; run example, finished" in out
    assert "removed 0 Jobs and 1 pod in namespace shop" in out
    assert ours(lab) == []


def test_dry_run_then_all_namespaces(lab: Any, clean: None, capsys: pytest.CaptureFixture[str]) -> None:
    keep_pod_run(lab, capsys, "shop")
    keep_pod_run(lab, capsys, "other")
    before = ours(lab)
    code, out, err = meshprobe(lab, capsys, "cleanup", "--all-namespaces", "--dry-run")
    assert code == 0, err
    assert "would remove job shop/meshprobe-" in out and "would remove job other/meshprobe-" in out
    assert "would remove 2 Jobs and 2 pods in all namespaces (dry run: nothing was deleted)" in out
    assert "warning" not in out  # the admin may delete
    assert ours(lab) == before
    code, out, err = meshprobe(lab, capsys, "cleanup", "-n", "other")
    assert code == 0 and "removed 1 Job and 1 pod in namespace other" in out
    assert [o for o in ours(lab) if " other/" in o] == [] and ours(lab) != []
    code, out, err = meshprobe(lab, capsys, "cleanup", "-A")
    assert code == 0 and "removed 1 Job and 1 pod in all namespaces" in out
    assert ours(lab) == []


def test_ephemeral_containers_are_named_not_removed(
    lab: Any, clean: None, capsys: pytest.CaptureFixture[str]
) -> None:
    store = lab.control_plane.store
    store.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "worker", "namespace": "shop", "labels": {"app": "w"}},
            "spec": {"containers": [APP]},
        },
        admission=True,
    )
    try:
        wait_for(lambda: phase(lab, "shop", "worker") == "Running", 15, "the workload pod")
        code, _, err = meshprobe(
            lab, capsys, "check", "-n", "shop", "--from", "pod/worker", "pkg.lab.example"
        )
        assert code == 0, err
        code, out, err = meshprobe(lab, capsys, "cleanup", "-n", "shop")
        assert code == 0, err
        assert "note: pod shop/worker keeps meshprobe ephemeral container(s) meshprobe-" in out
        assert "(stopped)" in out and "Kubernetes cannot remove ephemeral containers" in out
        assert out.strip().splitlines()[-1] == "nothing to remove in namespace shop"
        worker = store.get("pods", "shop", "worker")
        assert worker is not None and not worker["metadata"].get("deletionTimestamp")
    finally:
        store.delete("pods", "shop", "worker")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["-n", "shop", "-A"], 2, "-n and --all-namespaces are mutually exclusive"),
        (["-n", "shop", "--older-than", "soon"], 2, "--older-than 'soon': expected a duration"),
        (["-n", "Shop"], 2, "a namespace is a DNS label"),
        (["-n", "shop", "--timeout", "0"], 2, "--timeout must be between"),
    ],
)
def test_bad_usage_is_exit_2(
    lab: Any, args: list[str], code: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    got, _, err = meshprobe(lab, capsys, "cleanup", *args)
    assert got == code and message in err and len(err.strip().splitlines()) <= 2


def test_an_unreachable_cluster_is_exit_4(
    lab: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from diag.cli import main

    text = Path(lab.kubeconfig).read_text()
    server = yaml.safe_load(text)["clusters"][0]["cluster"]["server"]
    dead = tmp_path / "dead.kubeconfig"
    dead.write_text(text.replace(server, "https://127.0.0.1:9"))
    code = main(["cleanup", "--kubeconfig", str(dead), "-n", "shop"])
    err = capsys.readouterr().err
    assert code == 4 and err.startswith("error: cannot reach the Kubernetes API")
