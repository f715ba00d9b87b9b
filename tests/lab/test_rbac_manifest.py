"""`manifests/rbac.yaml` is enough, and each of its rules is needed: in the lab, a user bound only
by the manifest (rendered for namespace `shop` and user `alice`) runs `meshprobe check` (the Job
path, `--from`, `--like`), `explain` and `lint` on the live cluster, and `meshprobe cleanup`; with
one verb taken out of one rule, the command that needs it fails with exit 4 naming that verb and
resource — or, for the cluster-wide reads, says which objects it could not read.

Every (group, resource, verb) the manifest grants is one of the cases below, or in ``UNOBSERVED``
with the reason the lab cannot show it (a meta-test keeps that list honest).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import require_lab

pytestmark = pytest.mark.lab

RBAC = "rbac.authorization.k8s.io"
READER, CONFIG, PROBER = "meshprobe-mesh-reader", "meshprobe-istio-config", "meshprobe-prober"
OBJECTS = """
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Namespace
metadata:
  name: strict
  labels: {istio-injection: enabled, pod-security.kubernetes.io/enforce: restricted}
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
INTERNET = ["pkg.lab.example", "blocked.lab.example"]


@pytest.fixture(scope="module")
def lab() -> Iterator[Any]:
    require_lab()
    from lab.apiserver.admission import pod_security_restricted
    from lab.runtime import Lab

    with Lab(
        list(yaml.safe_load_all(OBJECTS)),
        mode="REGISTRY_ONLY",
        internet=INTERNET,
        api=True,
        pods=[],
        drain_seconds=0.1,
    ) as running:
        running.control_plane.api.add_validating(
            pod_security_restricted(running.control_plane._namespace_labels)
        )
        yield running


@pytest.fixture(scope="module")
def alice(lab: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """alice's kubeconfig; the manifest's objects are all that bind her."""
    from diag.manifests import Subjects, rbac

    for obj in rbac(["shop", "strict"], Subjects(users=("alice",))):
        lab.control_plane.store.create(obj)
    api = lab.control_plane.api
    api.add_user("alice", groups=["developers"])
    return str(api.kubeconfig(user="alice", path=tmp_path_factory.mktemp("alice") / "kubeconfig"))


@pytest.fixture(scope="module")
def worker(lab: Any) -> Iterator[str]:
    """A running workload pod in shop, behind its sidecar, for --from and --like."""
    store = lab.control_plane.store
    store.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "worker", "namespace": "shop", "labels": {"app": "w"}},
            "spec": {
                "containers": [{"name": "app", "image": "lab.example/app:1", "command": ["sleep", "900"]}]
            },
        },
        admission=True,
    )
    wait_for(
        lambda: (store.get("pods", "shop", "worker") or {}).get("status", {}).get("phase") == "Running", 20
    )
    yield "worker"
    store.delete("pods", "shop", "worker")


def wait_for(condition: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def ours(lab: Any) -> list[str]:
    store, selector = lab.control_plane.store, "app.kubernetes.io/managed-by=meshprobe"
    items = store.list("jobs", group="batch", label_selector=selector) + store.list(
        "pods", label_selector=selector
    )
    return [f"{o['kind']} {o['metadata']['namespace']}/{o['metadata']['name']}" for o in items]


def purge(lab: Any) -> None:
    """Remove runs as the admin (in-process), and wait until they are gone."""
    store, selector = lab.control_plane.store, "app.kubernetes.io/managed-by=meshprobe"
    for job in store.list("jobs", group="batch", label_selector=selector):
        store.delete("jobs", job["metadata"]["namespace"], job["metadata"]["name"], group="batch")
    for pod in store.list("pods", label_selector=selector):
        store.delete("pods", pod["metadata"]["namespace"], pod["metadata"]["name"])
    wait_for(lambda: not ours(lab), 20)


def meshprobe(kubeconfig: str, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from diag.cli import main

    code = main([args[0], "--kubeconfig", kubeconfig, *args[1:]])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


class Without:
    """Take ``verb`` on ``group``/``resource`` out of a role of the manifest, put it back after."""

    def __init__(self, lab: Any, role: str, group: str, resource: str, verb: str) -> None:
        self.store = lab.control_plane.store
        self.plural = "roles" if role == CONFIG else "clusterroles"
        self.namespace = "istio-system" if role == CONFIG else None
        self.role, self.group, self.resource, self.verb = role, group, resource, verb
        self.original: list[dict[str, Any]] = []

    def __enter__(self) -> Without:
        current = self.store.get(self.plural, self.namespace, self.role, RBAC)
        self.original = current["rules"]
        rules = []
        for rule in self.original:
            if (
                self.group in rule["apiGroups"]
                and self.resource in rule["resources"]
                and self.verb in rule["verbs"]
            ):
                others = [r for r in rule["resources"] if r != self.resource]
                if others:
                    rules.append({**rule, "resources": others})
                verbs = [v for v in rule["verbs"] if v != self.verb]
                if verbs:
                    rules.append({**rule, "resources": [self.resource], "verbs": verbs})
            else:
                rules.append(rule)
        assert rules != self.original, f"no rule grants {self.verb} {self.resource}"
        self.store.update({**current, "rules": rules})
        return self

    def __exit__(self, *exc: object) -> None:
        current = self.store.get(self.plural, self.namespace, self.role, RBAC)
        self.store.update({**current, "rules": self.original})


# ---- everything works with the manifest alone -----------------------------------------------------


def test_alice_has_only_what_the_manifest_grants(lab: Any, alice: str) -> None:
    from diag.cluster import Cluster

    cluster = Cluster.connect(alice, namespace="shop")
    try:
        assert cluster.can_i("create", "jobs", "shop", group="batch")
        assert cluster.can_i("list", "serviceentries", None, group="networking.istio.io")
        assert not cluster.can_i("create", "pods", "shop")  # only the Job controller creates the pod
        assert not cluster.can_i("get", "secrets", "shop")
        assert not cluster.can_i("create", "jobs", "default", group="batch")  # not bound there
        assert not cluster.can_i("list", "configmaps", "istio-system")
    finally:
        cluster.close()


def test_check_job_path(lab: Any, alice: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = meshprobe(
        alice, capsys, "check", "-n", "shop", "-o", "json", "pkg.lab.example", "blocked.lab.example"
    )
    assert code == 1, err
    report = json.loads(out)
    assert [t["outcome"] for t in report["targets"]] == ["pass", "fail"]
    assert "MP0101" in {d["code"] for d in report["targets"][1]["diagnoses"]}
    assert not [n for n in report.get("notes", []) if "cannot" in n or "forbidden" in n], report["notes"]
    assert report["mesh"]["outbound_policy"] == "REGISTRY_ONLY"
    assert "warning" not in err
    assert ours(lab) == []


def test_check_from_and_like_pod(
    lab: Any, alice: str, worker: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = meshprobe(
        alice, capsys, "check", "-n", "shop", "--from", f"pod/{worker}", "-o", "json", "pkg.lab.example"
    )
    assert code == 0, err
    assert json.loads(out)["source"]["kind"] == "ephemeral"
    code, out, err = meshprobe(
        alice, capsys, "check", "-n", "shop", "--like", f"pod/{worker}", "-o", "json", "pkg.lab.example"
    )
    assert code == 0, err
    assert json.loads(out)["source"]["kind"] == "like"
    wait_for(lambda: not ours(lab), 10)


@pytest.mark.parametrize("kind", ["deploy", "sts", "ds"])
def test_like_reads_workloads(alice: str, kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Allowed to read the workload: a missing one is the user's mistake (2), not a denial (4)."""
    code, _, err = meshprobe(
        alice, capsys, "check", "-n", "shop", "--like", f"{kind}/nosuch", "pkg.lab.example"
    )
    assert code == 2 and f"{kind}/nosuch not found in namespace shop" in err


def test_explain_and_lint_read_the_live_cluster(alice: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = meshprobe(
        alice, capsys, "explain", "-n", "shop", "-o", "json", "pkg.lab.example", "blocked.lab.example"
    )
    assert code == 1, err
    report = json.loads(out)
    assert [t["predicted"]["verdict"] for t in report["targets"]] == ["allowed", "blocked"]
    assert not [n for n in report.get("notes", []) if "cannot" in n], report["notes"]
    code, out, err = meshprobe(alice, capsys, "lint", "-o", "json")
    assert code in (0, 1) and "error:" not in err


def test_cleanup(lab: Any, alice: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = meshprobe(alice, capsys, "check", "-n", "shop", "--keep-pod", "pkg.lab.example")
    assert code == 0, err
    assert len(ours(lab)) == 2
    code, out, err = meshprobe(alice, capsys, "cleanup", "-n", "shop", "--older-than", "0", "--dry-run")
    assert code == 0 and "would remove 1 Job and 1 pod" in out and "warning" not in out, out + err
    code, out, err = meshprobe(alice, capsys, "cleanup", "-n", "shop", "--older-than", "0")
    assert code == 0, err
    assert "removed 1 Job and 1 pod in namespace shop" in out
    assert ours(lab) == []


# ---- each rule is needed --------------------------------------------------------------------------

CHECK_NEEDS = [
    (PROBER, "batch", "jobs", "create", ()),
    (PROBER, "", "pods", "list", ()),
    (PROBER, "", "pods", "watch", ()),
    (PROBER, "", "pods/log", "get", ()),
    (PROBER, "", "pods", "get", ("--from", "pod/worker")),
    (PROBER, "", "pods/ephemeralcontainers", "patch", ("--from", "pod/worker")),
    (PROBER, "apps", "deployments", "get", ("--like", "deploy/api")),
    (PROBER, "apps", "statefulsets", "get", ("--like", "sts/api")),
    (PROBER, "apps", "daemonsets", "get", ("--like", "ds/api")),
]
CLEANUP_NEEDS = [
    (PROBER, "batch", "jobs", "list"),
    (PROBER, "batch", "jobs", "delete"),
    (PROBER, "", "pods", "list"),
    (PROBER, "", "pods", "delete"),
]
READS = [
    (READER, group, resource, "list", f"cannot list {resource} in shop")
    for group, resource in [
        ("networking.istio.io", "serviceentries"),
        ("networking.istio.io", "sidecars"),
        ("networking.istio.io", "destinationrules"),
        ("networking.istio.io", "virtualservices"),
        ("networking.istio.io", "gateways"),
        ("security.istio.io", "authorizationpolicies"),
        ("", "services"),
        ("discovery.k8s.io", "endpointslices"),
        ("networking.istio.io", "envoyfilters"),
        ("extensions.istio.io", "wasmplugins"),
    ]
] + [(READER, "", "namespaces", "list", "cannot read namespace shop")]
SPECIAL = [(CONFIG, "", "configmaps", "get"), (PROBER, "", "events", "list")]
UNOBSERVED = {
    (
        CONFIG,
        "apps",
        "deployments",
        "list",
    ): "the lab runs no istiod Deployment: meshprobe reads the version from it",
    (READER, "authorization.k8s.io", "selfsubjectaccessreviews", "create"): (
        "every authenticated user has it through system:basic-user, in the lab as in most clusters"
    ),
}


def _name(case: tuple[Any, ...]) -> str:
    return f"{case[3]}-{case[1] + '/' if case[1] else ''}{case[2]}"


@pytest.mark.parametrize("case", CHECK_NEEDS, ids=_name)
def test_check_fails_with_exit_4_without(
    lab: Any, alice: str, worker: str, case: tuple[Any, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    role, group, resource, verb, args = case
    with Without(lab, role, group, resource, verb):
        code, _, err = meshprobe(alice, capsys, "check", "-n", "shop", *args, "pkg.lab.example")
    shown = f"{group}/{resource}" if group else resource
    assert code == 4, err
    error = next(line for line in err.splitlines() if line.startswith("error: "))  # after cleanup warnings
    assert error == f"error: permission denied: alice cannot {verb} {shown} in namespace shop"
    assert "meshprobe manifests rbac" in err  # the hint
    wait_for(lambda: not ours(lab), 20)  # the Job's deletion (allowed) took its pod with it


@pytest.mark.parametrize("case", CLEANUP_NEEDS, ids=_name)
def test_cleanup_fails_with_exit_4_without(
    lab: Any, alice: str, case: tuple[Any, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    role, group, resource, verb = case
    code, _, err = meshprobe(
        str(lab.kubeconfig), capsys, "check", "-n", "shop", "--keep-pod", "pkg.lab.example"
    )
    assert code == 0, err
    shown = f"{group}/{resource}" if group else resource
    try:
        with Without(lab, role, group, resource, verb):
            if verb == "delete":
                code, out, err = meshprobe(
                    alice, capsys, "cleanup", "-n", "shop", "--older-than", "0", "--dry-run"
                )
                assert code == 0 and f"warning: you may not delete {shown} in namespace shop" in out, (
                    out + err
                )
            code, _, err = meshprobe(alice, capsys, "cleanup", "-n", "shop", "--older-than", "0")
        assert code == 4
        assert (
            err.splitlines()[0] == f"error: permission denied: alice cannot {verb} {shown} in namespace shop"
        )
    finally:
        purge(lab)


@pytest.mark.parametrize("case", [pytest.param(c, id=_name(c)) for c in READS])
def test_reads_without_a_rule_say_what_they_missed(
    alice: str, lab: Any, case: tuple[Any, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    """The cluster-wide reads degrade instead of failing: the report says what could not be read."""
    role, group, resource, verb, note = case
    with Without(lab, role, group, resource, verb):
        code, out, err = meshprobe(alice, capsys, "explain", "-n", "shop", "-o", "json", "pkg.lab.example")
    assert code in (0, 1), err
    notes = json.loads(out).get("notes", [])
    assert any(note in n for n in notes), notes


def test_the_mesh_config_needs_the_configmap_rule(
    alice: str, lab: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without reading the istio ConfigMap, REGISTRY_ONLY is unknown: the default, ALLOW_ANY, is predicted."""
    with Without(lab, CONFIG, "", "configmaps", "get"):
        code, out, err = meshprobe(
            alice, capsys, "explain", "-n", "shop", "-o", "json", "blocked.lab.example"
        )
    target = json.loads(out)["targets"][0]
    assert target["predicted"]["verdict"] != "blocked" and code == 0, err
    code, out, _ = meshprobe(alice, capsys, "explain", "-n", "shop", "-o", "json", "blocked.lab.example")
    assert json.loads(out)["targets"][0]["predicted"]["verdict"] == "blocked" and code == 1


def test_events_say_why_the_probe_pod_was_not_created(
    alice: str, lab: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a namespace enforcing Pod Security "restricted" the Job cannot create the injected pod:
    the Job's FailedCreate event quotes why; without events the run can only time out."""
    monkeypatch.setenv("MESHPROBE_POD_START_TIMEOUT", "3")
    code, _, err = meshprobe(alice, capsys, "check", "-n", "strict", "pkg.lab.example")
    assert code == 4 and 'violates PodSecurity "restricted' in err, err
    with Without(lab, PROBER, "", "events", "list"):
        code, _, err = meshprobe(alice, capsys, "check", "-n", "strict", "pkg.lab.example")
    assert code == 4 and "PodSecurity" not in err and "created no pod in time" in err, err
    wait_for(lambda: not ours(lab), 20)


def test_every_granted_permission_is_tested_or_explained() -> None:
    from diag.manifests import rbac

    granted = set()
    for role in rbac(["shop"]):
        for rule in role.get("rules", []):
            granted |= {
                (role["metadata"]["name"], g, r, v)
                for g in rule["apiGroups"]
                for r in rule["resources"]
                for v in rule["verbs"]
            }
    covered = {c[:4] for c in [*CHECK_NEEDS, *CLEANUP_NEEDS, *READS, *SPECIAL]} | set(UNOBSERVED)
    assert granted == covered


@pytest.mark.parametrize(
    "native", [True, False], ids=["as-rendered", "without-the-native-sidecar-annotation"]
)
def test_the_cronjobs_job_finishes_despite_its_sidecar_and_logs_its_exit_status(
    lab: Any, native: bool
) -> None:
    """The CronJob's Job template, run by the lab's Job controller and kubelet as the CronJob
    controller would create it — only the image swapped for the lab's (this checkout's
    ``meshprobe`` on PATH). Lab pods get no service-account token and cannot reach the API
    server, so meshprobe exits 4: the log ends with that status, the Job fails, and the pod
    finishes because its sidecar is native. Without the annotation the injected sidecar is a
    regular container that keeps the pod running: the annotation is what lets the Job finish."""
    import sys

    from diag.manifests import EXIT_LINE, cronjob

    store = lab.control_plane.store
    account, cron = cronjob("shop", targets=["pkg.lab.example"])
    template = cron["spec"]["jobTemplate"]
    pod = template["spec"]["template"]
    container = pod["spec"]["containers"][0]
    container["image"] = "lab.example/app:1"
    container["env"].append({"name": "PATH", "value": f"{Path(sys.executable).parent}:/usr/bin:/bin"})
    if not native:
        del pod["metadata"]["annotations"]["sidecar.istio.io/nativeSidecar"]
    name = f"meshprobe-smoke-{'native' if native else 'regular'}"
    if store.get("serviceaccounts", "shop", "meshprobe") is None:
        store.create(account)
    store.create(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name, "namespace": "shop", **template["metadata"]},
            "spec": template["spec"],
        },
        admission=True,
    )
    try:

        def job_failed() -> bool:
            job = store.get("jobs", "shop", name, "batch") or {}
            return any(
                c["type"] == "Failed" and c["status"] == "True"
                for c in job.get("status", {}).get("conditions") or []
            )

        if not native:
            time.sleep(8)
            pods = store.list("pods", "shop", label_selector=f"job-name={name}")
            assert [p["status"]["phase"] for p in pods] == ["Running"] and not job_failed()
            return
        wait_for(job_failed, 40)
        (pod_obj,) = store.list("pods", "shop", label_selector=f"job-name={name}")
        assert pod_obj["status"]["phase"] == "Failed"
        assert [
            c["name"] for c in pod_obj["spec"]["initContainers"] if c.get("restartPolicy") == "Always"
        ] == ["istio-proxy"]
        log = b"".join(
            lab.control_plane.kubelet.logs(
                "shop", pod_obj["metadata"]["name"], "meshprobe", follow=False, tail_lines=None
            )
        ).decode()
        lines = log.strip().splitlines()
        assert lines[-1] == f"{EXIT_LINE} 4", log
        assert lines[0].startswith("error: no usable kubeconfig") and len(lines) <= 3, log  # error, hint
    finally:
        store.delete("jobs", "shop", name, group="batch")
