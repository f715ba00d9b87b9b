"""`meshprobe check --like deploy/api` against a real Deployment in the lab: the ReplicaSet and
EndpointSlice controllers run, so the two ways a look-alike probe pod can hurt the workload are
live (docs/probe-pod.md): a ReplicaSet adopting it (and then deleting a pod to get back to its
replica count), and the Service sending it traffic (a Ready endpoint).

Every change to pods, ReplicaSets and EndpointSlices is recorded while the check runs, and the
assertions read that history, not only the end state.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.conftest import require_lab

pytestmark = pytest.mark.lab

NS = "shop"
CONFIG = f"""
apiVersion: v1
kind: Namespace
metadata: {{name: {NS}, labels: {{istio-injection: enabled}}}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: pkg, namespace: {NS}}}
spec:
  hosts: [pkg.lab.example]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{{number: 443, name: tls, protocol: TLS}}]
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: api, namespace: {NS}}}
---
apiVersion: v1
kind: Service
metadata: {{name: api, namespace: {NS}}}
spec:
  selector: {{app: api}}
  ports: [{{name: http, port: 80, targetPort: 8080}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: api, namespace: {NS}, labels: {{app: api}}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: api}}}}
  template:
    metadata:
      labels: {{app: api, tier: backend}}
      annotations: {{traffic.sidecar.istio.io/excludeOutboundPorts: "9999"}}
    spec:
      serviceAccountName: api
      containers:
      - name: app
        image: lab.example/app:1
        command: [sleep, "600"]
        ports: [{{containerPort: 8080}}]
"""
RUN_LABEL = "meshprobe.io/run-id"


@pytest.fixture(scope="module")
def lab() -> Iterator[Any]:
    require_lab()
    from lab.runtime import Lab

    with Lab(
        list(yaml.safe_load_all(CONFIG)), mode="REGISTRY_ONLY", api=True, pods=[], drain_seconds=0.1
    ) as running:
        yield running


def eventually(check: Any, timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"{what} not met within {timeout}s"
        time.sleep(0.1)
    return value


def controller(obj: dict[str, Any]) -> dict[str, Any] | None:
    return next((r for r in obj["metadata"].get("ownerReferences") or [] if r.get("controller")), None)


def is_ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def check(lab: Any, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from diag.cli import main

    code = main(["check", "--kubeconfig", str(lab.kubeconfig), "-n", NS, *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def leftovers(store: Any) -> list[str]:
    pods = [
        p["metadata"]["name"]
        for p in store.list("pods", NS)
        if RUN_LABEL in (p["metadata"].get("labels") or {})
    ]
    return pods + [j["metadata"]["name"] for j in store.list("jobs", NS, "batch")]


def wait_clean(store: Any, seconds: float = 15.0) -> list[str]:
    deadline = time.monotonic() + seconds
    while (left := leftovers(store)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


@pytest.fixture(scope="module")
def workload(lab: Any) -> dict[str, Any]:
    """The Deployment's one pod, running and Ready (its sidecar too), listed Ready in the slice."""
    store = lab.control_plane.store
    rs = eventually(lambda: store.list("replicasets", NS, "apps"), what="the Deployment's ReplicaSet")[0]
    pod = eventually(
        lambda: next((p for p in store.list("pods", NS) if is_ready(p)), None), what="the workload pod Ready"
    )
    eventually(
        lambda: any(
            e["targetRef"]["uid"] == pod["metadata"]["uid"] and e["conditions"]["ready"]
            for s in store.list("endpointslices", NS, "discovery.k8s.io")
            for e in s.get("endpoints") or []
        ),
        what="the workload pod a Ready endpoint",
    )
    return {"rs": rs, "pod": pod}


def test_like_deploy_neither_adopted_nor_an_endpoint(
    lab: Any, workload: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESHPROBE_POD_START_TIMEOUT", "30")
    store = lab.control_plane.store
    rs, original = workload["rs"], workload["pod"]
    rs_uid, original_uid = rs["metadata"]["uid"], original["metadata"]["uid"]
    history: list[tuple[str, dict[str, Any]]] = []
    stop = store.subscribe(
        lambda kind, obj: (
            history.append((kind, obj))
            if obj["metadata"].get("namespace") == NS
            and obj.get("kind") in ("Pod", "ReplicaSet", "EndpointSlice")
            else None
        )
    )
    try:
        code, out, err = check(lab, "--like", "deploy/api", "-o", "json", "pkg.lab.example", capsys=capsys)
        left = wait_clean(store)
        lab.control_plane.api.wait_idle()
    finally:
        stop()

    probes = [
        o for k, o in history if o["kind"] == "Pod" and RUN_LABEL in (o["metadata"].get("labels") or {})
    ]
    assert probes, "no probe pod was seen"
    probe_uids = {p["metadata"]["uid"] for p in probes}

    # The ReplicaSet never owned anything but its own pod, and never deleted it.
    for kind, obj in history:
        if obj["kind"] == "Pod":
            ref = controller(obj)
            if ref is not None and ref["uid"] == rs_uid:
                assert obj["metadata"]["uid"] == original_uid, (
                    f"the ReplicaSet adopted {obj['metadata']['name']}"
                )
            if obj["metadata"]["uid"] == original_uid:
                assert kind != "DELETED" and not obj["metadata"].get("deletionTimestamp"), (
                    "the workload pod was deleted"
                )
        if obj["kind"] == "ReplicaSet" and obj["metadata"]["uid"] == rs_uid:
            assert (obj.get("status") or {}).get("replicas", 0) <= 1, obj.get("status")
    for probe in probes:
        ref = controller(probe)
        assert ref is not None and ref["kind"] == "Job", (
            f"the probe pod's controller is not its Job: {probe['metadata'].get('ownerReferences')}"
        )

    # The probe pod was listed behind the Service (its labels match) but never as ready.
    listed = [
        e
        for kind, s in history
        if s["kind"] == "EndpointSlice" and kind != "DELETED"
        for e in s.get("endpoints") or []
        if e["targetRef"]["uid"] in probe_uids
    ]
    assert listed, "the probe pod never appeared in the Service's EndpointSlice (the check would be vacuous)"
    assert not [e for e in listed if e["conditions"]["ready"]], (
        "the probe pod was a ready endpoint of Service api"
    )
    assert not [p for p in probes if is_ready(p)], "the probe pod became Ready"

    assert len(probe_uids) == 1, f"{len(probe_uids)} probe pods for one run"

    # The probe pod looked like the workload: its labels (less the hash), service account, annotations.
    first = probes[0]
    labels = first["metadata"]["labels"]
    assert labels["app"] == "api" and labels["tier"] == "backend" and "pod-template-hash" not in labels
    assert first["spec"]["serviceAccountName"] == "api"
    assert first["metadata"]["annotations"]["traffic.sidecar.istio.io/excludeOutboundPorts"] == "9999"

    assert code == 0, err
    assert json.loads(out)["source"]["kind"] == "like"
    assert left == [], "the probe pod or Job was left behind"

    # And afterwards: the ReplicaSet owns exactly its one pod, which is still a ready endpoint.
    owned = [p for p in store.list("pods", NS) if (controller(p) or {}).get("uid") == rs_uid]
    assert [p["metadata"]["uid"] for p in owned] == [original_uid]
    assert store.get("replicasets", NS, rs["metadata"]["name"], "apps")["status"]["replicas"] == 1
    endpoints = [
        e for s in store.list("endpointslices", NS, "discovery.k8s.io") for e in s.get("endpoints") or []
    ]
    assert [(e["targetRef"]["uid"], e["conditions"]["ready"]) for e in endpoints] == [(original_uid, True)]
    assert lab.ready(NS, original["metadata"]["name"])


def test_like_a_missing_deployment_is_a_usage_error(lab: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = check(lab, "--like", "deploy/missing", "pkg.lab.example", capsys=capsys)
    assert code == 2
    assert "deploy/missing not found in namespace shop" in err
    assert "Traceback" not in err
    assert not leftovers(lab.control_plane.store)
