"""`meshprobe check` end to end in the lab: the real `kubernetes` client over HTTPS to the lab's API
server, a probe Job whose pod the kubelet runs behind a real Envoy sidecar, the live mesh read
through the API, and the report. Each case asserts the diagnosis codes, the exit code, and that no
probe pod or Job is left behind (asserted through the API).
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
from tests.lab.checkrun import codes, leftovers, run_check, wait_clean

pytestmark = pytest.mark.lab

CONFIG = """
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Namespace
metadata: {name: other}
---
apiVersion: v1
kind: Namespace
metadata: {name: locked, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Namespace
metadata: {name: open, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Namespace
metadata: {name: plain, labels: {istio-injection: disabled}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: pkg, namespace: shop}
spec:
  hosts: [pkg.lab.example]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 443, name: tls, protocol: TLS}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httponly, namespace: shop}
spec:
  hosts: [httponly.lab.example]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 443, name: http, protocol: HTTP}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: hidden, namespace: other}
spec:
  hosts: [hidden.lab.example]
  exportTo: ["."]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 443, name: tls, protocol: TLS}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: shared, namespace: other}
spec:
  hosts: [shared.lab.example]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 443, name: tls, protocol: TLS}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: locked}
spec:
  egress: [{hosts: ["./*"]}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: open}
spec:
  outboundTrafficPolicy: {mode: ALLOW_ANY}
"""
INTERNET = ["blocked.lab.example", "late.lab.example"]


@pytest.fixture(scope="module")
def lab() -> Iterator[Any]:
    require_lab()
    from lab.runtime import Lab

    objects = list(yaml.safe_load_all(CONFIG))
    with Lab(
        objects, mode="REGISTRY_ONLY", internet=INTERNET, api=True, pods=[], drain_seconds=0.1
    ) as running:
        yield running


def check(lab: Any, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, Any]:
    return run_check(lab, capsys, *args)


def test_registered_passes_and_unregistered_is_mp0101(lab: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = check(lab, "-n", "shop", "pkg.lab.example", "blocked.lab.example", capsys=capsys)
    assert code == 1
    found = codes(report)
    assert found["pkg.lab.example"] == []
    assert "MP0101" in found["blocked.lab.example"]
    blocked = next(t for t in report["targets"] if t["target"] == "blocked.lab.example")
    assert blocked["observed"]["signature"] == "RESET_BEFORE_RESPONSE"
    assert blocked["actual"]["cluster"] == "BlackHoleCluster" == blocked["predicted"]["envoy"]
    assert report["source"]["kind"] == "pod" and report["source"]["dataplane"] == "sidecar"
    assert report["mesh"]["outbound_policy"] == "REGISTRY_ONLY"
    assert leftovers(lab) == []


def test_config_codes_in_one_run(lab: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = check(
        lab,
        "-n",
        "shop",
        "tls://pkg.lab.example:8443",
        "https://httponly.lab.example/",
        "hidden.lab.example",
        "nosuch.lab.example",
        capsys=capsys,
    )
    found = codes(report)
    assert "MP0102" in found["tls://pkg.lab.example:8443"]
    assert "MP0103" in found["https://httponly.lab.example/"]
    assert "MP0104" in found["hidden.lab.example"]
    assert found["nosuch.lab.example"] == ["MP0201"]
    assert code == 1
    assert leftovers(lab) == []


def test_sidecar_scope_allow_any_and_no_sidecar(lab: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from jsonschema import validate

    schema = json.loads(Path("docs/schema/report.schema.json").read_text())
    code, report = check(
        lab,
        "-n",
        "locked",
        "-n",
        "open",
        "-n",
        "plain",
        "shared.lab.example",
        "blocked.lab.example",
        capsys=capsys,
    )
    assert isinstance(report, list) and len(report) == 3
    by_ns = {r["source"]["namespace"]: r for r in report}
    for one in report:
        validate(one, schema)
    assert "MP0105" in codes(by_ns["locked"])["shared.lab.example"]
    assert "MP0301" in codes(by_ns["open"])["blocked.lab.example"]
    assert [t["outcome"] for t in by_ns["open"]["targets"]] == ["pass", "pass"]
    assert by_ns["plain"]["source"]["dataplane"] == "none"
    assert "MP0302" in codes(by_ns["plain"])["shared.lab.example"]
    assert code == 1
    assert leftovers(lab) == []


def test_explain_and_lint_read_the_live_cluster(lab: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --config, explain and lint read the mesh through the API (read-only)."""
    from diag.cli import main

    writes: list[str] = []
    unsubscribe = lab.control_plane.store.subscribe(
        lambda kind, obj: writes.append(f"{kind} {obj.get('kind')}")
    )
    code = main(["explain", "--kubeconfig", str(lab.kubeconfig), "-n", "shop", "-o", "json",
                 "pkg.lab.example", "blocked.lab.example"])  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    verdicts = {t["target"]: t["predicted"]["verdict"] for t in report["targets"]}
    assert verdicts == {"pkg.lab.example": "allowed", "blocked.lab.example": "blocked"}
    assert report["mesh"]["outbound_policy"] == "REGISTRY_ONLY" and report["source"]["context"] == "lab"
    assert any("read from the cluster" in n for n in report["notes"])
    assert code == 1
    code = main(["lint", "--kubeconfig", str(lab.kubeconfig), "-o", "json"])
    linted = json.loads(capsys.readouterr().out)
    assert code in (0, 1) and "findings" in linted
    unsubscribe()
    assert writes == [], "explain/lint must not write"


def test_ambient_namespace_is_mp0303(lab: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """An ambient namespace: no sidecar is injected or waited for, sidecar rules stay silent, and
    MP0303 says ztunnel does not enforce REGISTRY_ONLY."""
    lab.control_plane.store.create({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "amb", "labels": {"istio.io/dataplane-mode": "ambient"}},
    })  # fmt: skip
    _, report = check(lab, "-n", "amb", "blocked.lab.example", capsys=capsys)
    assert report["source"]["dataplane"] == "ambient"
    found = codes(report)["blocked.lab.example"]
    assert "MP0303" in found and "MP0101" not in found
    assert report["targets"][0]["observed"]["signature"] == "OK"
    assert leftovers(lab) == []


def test_namespace_only_permissions_read_what_they_can(
    lab: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A user who may do everything in `shop` but nothing cluster-wide: mesh objects are read from
    the namespaces that matter, and the report says what could not be seen."""
    api = lab.control_plane.api
    api.add_user("teamlead", groups=["team"])
    store = lab.control_plane.store
    store.create({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "all", "namespace": "shop"},
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
    })  # fmt: skip
    store.create({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "teamlead-all", "namespace": "shop"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "all"},
        "subjects": [{"kind": "User", "name": "teamlead", "apiGroup": "rbac.authorization.k8s.io"}],
    })  # fmt: skip
    config = api.kubeconfig(user="teamlead", path=tmp_path / "teamlead.kubeconfig")
    from diag.cli import main

    code = main(["check", "--kubeconfig", str(config), "-n", "shop", "-o", "json", "pkg.lab.example",
                 "blocked.lab.example"])  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert any("cannot list serviceentries cluster-wide" in n for n in report["notes"])
    assert any("ConfigMap istio-system/istio (forbidden)" in n for n in report["notes"])
    found = codes(report)
    assert found["pkg.lab.example"] == [] and "MP0101" in found["blocked.lab.example"]
    assert code == 1
    assert wait_clean(lab) == []


def test_two_contexts_from_a_merged_kubeconfig(
    lab: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """KUBECONFIG with two files (merged as kubectl merges them) and --context twice: one report per
    context, each named after its context."""
    base = yaml.safe_load(Path(lab.kubeconfig).read_text())
    paths = []
    for name in ("east", "west"):
        config = yaml.safe_load(yaml.safe_dump(base))
        config["contexts"][0]["name"] = name
        config["contexts"][0]["context"]["cluster"] = config["clusters"][0]["name"] = f"{name}-cluster"
        config["contexts"][0]["context"]["user"] = config["users"][0]["name"] = f"{name}-user"
        config["current-context"] = name
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config))
        paths.append(str(path))
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join(paths))
    from diag.cli import main

    code = main(["check", "--context", "east", "--context", "west", "-n", "shop", "-o", "json",
                 "pkg.lab.example"])  # fmt: skip
    reports = json.loads(capsys.readouterr().out)
    assert sorted(r["source"]["context"] for r in reports) == ["east", "west"]
    assert all(r["targets"][0]["outcome"] == "pass" for r in reports)
    assert code == 0
    code = main(["check", "--context", "north", "pkg.lab.example"])
    assert code == 2 and "no such context" in capsys.readouterr().err


def test_expect_blocked(lab: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = check(lab, "-n", "shop", "--expect", "blocked", "blocked.lab.example", capsys=capsys)
    assert code == 0 and report["targets"][0]["outcome"] == "pass"
    code, report = check(lab, "-n", "shop", "--expect", "blocked", "pkg.lab.example", capsys=capsys)
    assert code == 1
    assert "MP0304" in codes(report)["pkg.lab.example"]


def test_fix_applied_through_the_api_turns_green(lab: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = check(lab, "-n", "shop", "late.lab.example", capsys=capsys)
    assert code == 1
    fix = next(d["fix"] for d in report["targets"][0]["diagnoses"] if d["code"] == "MP0101")
    body = yaml.safe_load(fix["yaml"])
    lab.control_plane.store.create(body)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        code, report = check(lab, "-n", "shop", "late.lab.example", capsys=capsys)
        if code == 0:
            break
        time.sleep(0.2)
    assert code == 0, report
    assert report["targets"][0]["observed"]["signature"] == "OK"
    assert report["targets"][0]["actual"]["cluster"] == "outbound|443||late.lab.example"


def test_config_not_yet_pushed_is_mp0120(lab: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """The API has the entry, the sidecar does not yet (istiod's push delay): the live path and the
    prediction disagree."""
    plane = lab.control_plane
    plane.propagation_delay = 30.0
    try:
        plane.store.create(
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "ServiceEntry",
                "metadata": {"name": "pending", "namespace": "shop"},
                "spec": {
                    "hosts": ["blocked.lab.example"],
                    "location": "MESH_EXTERNAL",
                    "resolution": "DNS",
                    "ports": [{"number": 443, "name": "tls", "protocol": "TLS"}],
                },
            }
        )
        code, report = check(lab, "-n", "shop", "blocked.lab.example", capsys=capsys)
    finally:
        plane.propagation_delay = 0.0
        plane.store.delete("serviceentries", "shop", "pending", group="networking.istio.io")
    target = report["targets"][0]
    assert target["predicted"]["verdict"] == "allowed"
    assert target["actual"]["cluster"] == "BlackHoleCluster"
    assert "MP0120" in codes(report)["blocked.lab.example"]
    assert code == 1


def test_like_copies_identity_and_never_becomes_ready(lab: Any, capsys: pytest.CaptureFixture[str]) -> None:
    store = lab.control_plane.store
    store.create(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "api", "namespace": "shop"}}
    )
    store.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "api-7d4b9-xk2lp",
                "namespace": "shop",
                "labels": {"app": "api", "pod-template-hash": "7d4b9"},
                "annotations": {"traffic.sidecar.istio.io/excludeOutboundPorts": "9999"},
            },
            "spec": {
                "serviceAccountName": "api",
                "nodeSelector": {"kubernetes.io/hostname": "elsewhere"},
                "containers": [{"name": "app", "image": "lab.example/app:1", "command": ["sleep", "60"]}],
            },
        }
    )
    seen: list[dict[str, Any]] = []
    unsubscribe = store.subscribe(
        lambda kind, obj: (
            seen.append(obj)
            if obj.get("kind") == "Pod" and "meshprobe.io/run-id" in (obj["metadata"].get("labels") or {})
            else None
        )
    )
    try:
        code, report = check(
            lab, "-n", "shop", "--like", "pod/api-7d4b9-xk2lp", "pkg.lab.example", capsys=capsys
        )
    finally:
        unsubscribe()
        store.delete("pods", "shop", "api-7d4b9-xk2lp")
    assert code == 0 and report["source"]["kind"] == "like"
    probe_pod = seen[-1]
    meta, spec = probe_pod["metadata"], probe_pod["spec"]
    assert meta["labels"]["app"] == "api" and "pod-template-hash" not in meta["labels"]
    assert meta["annotations"]["traffic.sidecar.istio.io/excludeOutboundPorts"] == "9999"
    assert spec["serviceAccountName"] == "api"
    owners = meta["ownerReferences"]
    assert [o["kind"] for o in owners] == ["Job"] and owners[0]["controller"] is True
    assert all(
        not (c["type"] == "Ready" and c["status"] == "True")
        for o in seen
        for c in (o.get("status") or {}).get("conditions") or []
    ), "the probe pod must never be Ready (it would become a Service endpoint)"
    assert wait_clean(lab) == []


def test_from_runs_in_the_pod_and_leaves_its_sidecar_alone(
    lab: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    store = lab.control_plane.store
    store.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "worker", "namespace": "shop", "labels": {"app": "w"}},
            "spec": {
                "containers": [{"name": "app", "image": "lab.example/app:1", "command": ["sleep", "600"]}]
            },
        },
        admission=True,  # through the injector, as a pod created with kubectl would be
    )
    try:
        deadline = time.monotonic() + 15
        while (store.get("pods", "shop", "worker") or {}).get("status", {}).get("phase") != "Running":
            assert time.monotonic() < deadline, "workload pod never ran"
            time.sleep(0.1)
        envoy_pid = lab.pods[("shop", "worker")].envoy.pid
        code, report = check(
            lab, "-n", "shop", "--from", "pod/worker", "pkg.lab.example", "blocked.lab.example", capsys=capsys
        )
        assert code == 1 and report["source"]["kind"] == "ephemeral"
        assert "MP0101" in codes(report)["blocked.lab.example"]
        assert any("ephemeral" in n for n in report["notes"])
        pod = lab.pods[("shop", "worker")]
        assert pod.envoy.pid == envoy_pid and pod.envoy.running(), "the workload's sidecar was touched"
        assert lab.ready("shop", "worker")
    finally:
        store.delete("pods", "shop", "worker")


def test_istio_not_installed_still_probes(capsys: pytest.CaptureFixture[str]) -> None:
    require_lab()
    from lab.runtime import Lab

    with Lab([], internet=["pkg.lab.example"], api=True, pods=[], istio_crds=False) as bare:
        code, report = check(bare, "pkg.lab.example", capsys=capsys)
    assert any("Istio is not installed" in n for n in report["notes"])
    assert report["targets"][0]["observed"]["signature"] in ("OK", "HTTP_STATUS")
    assert code == 0


# ---- faults ------------------------------------------------------------------------------------


def fails(
    lab: Any, capsys: pytest.CaptureFixture[str], *args: str, kubeconfig: str | None = None
) -> tuple[int, str]:
    from diag.cli import main

    code = main(["check", "--kubeconfig", kubeconfig or str(lab.kubeconfig), *args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.err


def test_authorizer_denial_names_verb_and_resource(
    lab: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api = lab.control_plane.api
    api.add_user("viewer", groups=["viewers"])
    lab.control_plane.store.create(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "viewer-view"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view-all"},
            "subjects": [{"kind": "User", "name": "viewer", "apiGroup": "rbac.authorization.k8s.io"}],
        }
    )
    lab.control_plane.store.create(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "view-all"},
            "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "watch"]}],
        }
    )
    config = api.kubeconfig(user="viewer", path=tmp_path / "viewer.kubeconfig")
    code, err = fails(lab, capsys, "-n", "shop", "pkg.lab.example", kubeconfig=str(config))
    assert code == 4
    assert "permission denied: viewer cannot create batch/jobs in namespace shop" in err
    assert leftovers(lab) == []


def test_pod_security_rejection_is_quoted(lab: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from lab.apiserver.admission import pod_security_restricted

    store = lab.control_plane.store
    store.create(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": "strict",
                "labels": {"istio-injection": "enabled", "pod-security.kubernetes.io/enforce": "restricted"},
            },
        }
    )
    lab.control_plane.api.add_validating(pod_security_restricted(lab.control_plane._namespace_labels))
    code, err = fails(lab, capsys, "-n", "strict", "pkg.lab.example")
    assert code == 4
    assert 'violates PodSecurity "restricted' in err and "istio-init" in err
    assert wait_clean(lab) == []


def test_api_500_and_unreachable(lab: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lab.control_plane.api.inject_fault("create", "jobs", status=500, message="etcdserver: request timed out")
    code, err = fails(lab, capsys, "-n", "shop", "pkg.lab.example")
    assert code == 4 and "500" in err and "etcdserver" in err
    lab.control_plane.api.inject_fault("create", "jobs", status=409, message='jobs.batch "x" already exists')
    code, err = fails(lab, capsys, "-n", "shop", "pkg.lab.example")
    assert code == 4 and "conflict" in err and "already exists" in err
    dead = tmp_path / "dead.kubeconfig"
    text = Path(lab.kubeconfig).read_text()
    server = yaml.safe_load(text)["clusters"][0]["cluster"]["server"]
    dead.write_text(text.replace(server, "https://127.0.0.1:9"))
    code, err = fails(lab, capsys, "-n", "shop", "pkg.lab.example", kubeconfig=str(dead))
    assert code == 4 and "cannot reach the Kubernetes API" in err
    assert leftovers(lab) == []


def test_image_that_cannot_be_pulled(lab: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = fails(lab, capsys, "-n", "shop", "--image", "lab.example/missing:1", "pkg.lab.example")
    assert (code == 4 and "ImagePullBackOff" in err) or "ErrImagePull" in err
    assert wait_clean(lab) == []


def test_pod_never_scheduled_and_sidecar_never_ready(
    lab: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESHPROBE_POD_START_TIMEOUT", "2")
    faults = lab.control_plane.kubelet.faults
    faults.unschedulable = True
    try:
        code, err = fails(lab, capsys, "-n", "shop", "pkg.lab.example")
    finally:
        faults.unschedulable = False
    assert code == 4 and "never scheduled" in err and "0/1 nodes are available" in err
    assert wait_clean(lab) == []
    faults.proxy_never_starts = True
    try:
        code, err = fails(lab, capsys, "-n", "shop", "pkg.lab.example")
    finally:
        faults.proxy_never_starts = False
    assert code == 4 and "sidecar never became ready" in err
    assert wait_clean(lab) == []


def test_a_probe_that_crashes_says_so(lab: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """A policy engine rewrites the probe's command and the container dies without a result: the
    error quotes its exit code and last words, and nothing is left."""
    from lab.apiserver import AdmissionRequest

    def crash(request: AdmissionRequest) -> dict[str, Any] | None:
        pod = request.obj
        if request.resource != "pods" or "meshprobe.io/run-id" not in (pod["metadata"].get("labels") or {}):
            return None
        for container in pod["spec"]["containers"]:
            if container["name"] == "probe":
                container["command"] = [
                    "python",
                    "-c",
                    "import sys; print('boom: out of memory'); sys.exit(3)",
                ]
                container["args"] = []
        return pod

    lab.control_plane.api.add_mutating(crash)
    try:
        code, err = fails(lab, capsys, "-n", "shop", "pkg.lab.example")
    finally:
        lab.control_plane.api.admission.mutating.remove(crash)
    assert code == 4 and "exited with code 3" in err and "boom: out of memory" in err
    assert wait_clean(lab) == []


def test_watch_dropped_mid_run_is_resumed(lab: Any, capsys: pytest.CaptureFixture[str]) -> None:
    import threading

    api = lab.control_plane.api
    stop = threading.Event()

    def dropper() -> None:
        while not stop.wait(0.15):
            api.drop_watches()

    thread = threading.Thread(target=dropper, daemon=True)
    thread.start()
    try:
        code, report = check(lab, "-n", "shop", "pkg.lab.example", capsys=capsys)
    finally:
        stop.set()
        thread.join()
    assert code == 0 and report["targets"][0]["outcome"] == "pass"
    assert leftovers(lab) == []


def _job_created(kind: str, obj: dict[str, Any]) -> bool:
    return obj.get("kind") == "Job" and kind == "ADDED"


def _pod_created(kind: str, obj: dict[str, Any]) -> bool:
    return (
        obj.get("kind") == "Pod"
        and kind == "ADDED"
        and "meshprobe.io/run-id" in obj["metadata"].get("labels", {})
    )


def _probe_state(state: str) -> Any:
    def seen(kind: str, obj: dict[str, Any]) -> bool:
        statuses = (obj.get("status") or {}).get("containerStatuses") or []
        return obj.get("kind") == "Pod" and any(
            c["name"] == "probe" and state in c["state"] for c in statuses
        )

    return seen


@pytest.mark.parametrize(
    "moment",
    [_job_created, _pod_created, _probe_state("running"), _probe_state("terminated")],
    ids=["job-created", "pod-created", "probing", "result-ready"],
)
def test_ctrl_c_in_every_phase_leaves_nothing(lab: Any, moment: Any) -> None:
    """SIGINT at each step of a run — the Job just created, its pod just created, the probe running,
    the probe finished (result being read, cleanup about to run): one line, exit 130, no debris."""
    import threading

    proc = subprocess.Popen(
        [sys.executable, "-c", "from diag.entry import run; run()", "check",
         "--kubeconfig", str(lab.kubeconfig), "-n", "shop", "pkg.lab.example", "blocked.lab.example"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    fired = threading.Event()

    def on_event(kind: str, obj: dict[str, Any]) -> None:
        if not fired.is_set() and moment(kind, obj):
            fired.set()
            proc.send_signal(signal.SIGINT)

    unsubscribe = lab.control_plane.store.subscribe(on_event)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        unsubscribe()
    assert fired.is_set(), "the run never reached that moment"
    if proc.returncode == 130:
        assert err.strip().splitlines()[-1] == "error: interrupted", err
    else:  # the run finished before the signal landed: a normal outcome, still no debris
        assert proc.returncode == 1, err
    assert "Traceback" not in err
    assert wait_clean(lab) == []


def test_sigkill_of_the_cli_is_collected_by_the_job_ttl(lab: Any) -> None:
    """SIGKILL leaves no chance to clean up: the Job's ttlSecondsAfterFinished (30 s) and the
    garbage collector remove the run once the probe has finished."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "from diag.cli import run; run()", "check",
         "--kubeconfig", str(lab.kubeconfig), "-n", "shop", "pkg.lab.example"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    store = lab.control_plane.store
    deadline = time.monotonic() + 15
    while not [
        p for p in store.list("pods", "shop") if "meshprobe.io/run-id" in (p["metadata"].get("labels") or {})
    ]:
        assert time.monotonic() < deadline, "no probe pod appeared"
        time.sleep(0.02)
    proc.kill()
    proc.wait(10)
    assert leftovers(lab), "the run must still exist right after the kill (nothing cleaned it up)"
    assert wait_clean(lab, 60) == [], "the Job's TTL and the garbage collector did not collect the run"
