"""`meshprobe watch` in the lab, as it runs in a cluster: the output of ``meshprobe manifests
watch`` is applied with ``kubectl`` through the lab's API, the lab's kubelet runs the Deployment's
pod (the CLI image runs this checkout's ``meshprobe watch``) with an injected sidecar, and the
watch in that pod reads the API in-cluster (``KUBERNETES_SERVICE_HOST`` and the ServiceAccount
token the kubelet mounts; the ``kubernetes`` Service's ClusterIP is reached through the watch's own
sidecar, ``lab.kubeapi``), bound only by the manifest's RBAC, and probes through that same
sidecar: the pod's sidecar is the source under test.

The test changes the mesh through the API as the admin, reads the watch's log through the API
(``pods/log``) and scrapes ``/metrics`` at the pod's address from inside its network namespace,
as Prometheus would, parsing it with the Prometheus client's own parser.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import require_lab

pytestmark = pytest.mark.lab

INTERVAL = 4
PKG = "https://pkg.lab.example/"
OPEN = "https://open.lab.example/"
SERVICE_ENTRY = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "ServiceEntry",
    "metadata": {"name": "pkg", "namespace": "shop"},
    "spec": {
        "hosts": ["pkg.lab.example"], "location": "MESH_EXTERNAL", "resolution": "DNS",
        "ports": [{"number": 443, "name": "tls", "protocol": "TLS"}],
    },
}  # fmt: skip
SE_PATH = "/apis/networking.istio.io/v1/namespaces/shop/serviceentries"
MESH_PATH = "/api/v1/namespaces/istio-system/configmaps/istio"
PODS_PATH = "/api/v1/namespaces/shop/pods"
PASS = (1.0, "OK", "none")
BLACKHOLE = (0.0, "RESET_BEFORE_RESPONSE", "MP0101")


class Running:
    """The watch Deployment's pod in the lab: its scrape, its log, and mesh changes as the admin."""

    def __init__(self, lab: Any) -> None:
        from diag.cluster import Cluster

        self.lab = lab
        self.cluster = Cluster.connect(str(lab.kubeconfig), None, "shop")
        self.name = self._wait_running(90)
        self.pod = lab.pods[("shop", self.name)]
        deadline = time.monotonic() + 60
        while self.get("/readyz")[0] != 200:
            assert time.monotonic() < deadline, f"the watch never got ready\nlog:\n{self.log()}"
            time.sleep(0.5)

    def _wait_running(self, within: float) -> str:
        deadline = time.monotonic() + within
        pods: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            pods = self.cluster.list(PODS_PATH, label_selector="app.kubernetes.io/name=meshprobe-watch")
            for pod in pods:
                statuses = pod["status"].get("containerStatuses") or []
                states = {c["name"]: c.get("state") or {} for c in statuses}
                if "running" in states.get("watch", {}) and "running" in states.get("istio-proxy", {}):
                    return str(pod["metadata"]["name"])
            time.sleep(0.5)
        pytest.fail(f"the watch pod is not running: {[p.get('status') for p in pods]}")

    def get(self, path: str) -> tuple[int, str]:
        """GET ``path`` on the pod's metrics port, from inside the pod's netns (as a scrape)."""
        from lab import admin

        try:
            return admin.request(self.pod.thread, self.pod.address, 9146, path, timeout=5)
        except OSError as exc:
            return 0, str(exc)

    def log(self) -> str:
        data = self.cluster.request(
            "GET", f"{PODS_PATH}/{self.name}/log", query={"container": "watch"}, raw=True
        )
        return bytes(data).decode()

    def families(self) -> dict[str, Any]:
        status, text = self.get("/metrics")
        assert status == 200, text
        return {f.name: f for f in text_string_to_metric_families(text)}

    def verdict(self, target: str) -> tuple[float, str, str] | None:
        """(probe_success, signature, code) of ``target`` in a fresh scrape."""
        success, labels = None, None
        for family in self.families().values():
            for s in family.samples:
                if s.labels.get("target") != target:
                    continue
                if s.name == "probe_success":
                    success = s.value
                elif s.name == "meshprobe_probe_verdict":
                    assert labels is None, "one verdict series per target"
                    labels = (s.labels["signature"], s.labels["code"])
        return None if success is None or labels is None else (success, *labels)

    def wait_for(self, target: str, wanted: tuple[float, str, str], within: float) -> float:
        """Seconds until the scrape shows ``wanted`` for ``target``; fails after ``within``."""
        start = time.monotonic()
        seen = None
        while time.monotonic() - start < within:
            seen = self.verdict(target)
            if seen == wanted:
                return time.monotonic() - start
            time.sleep(0.2)
        pytest.fail(f"{target}: {seen} after {within:.0f} s, wanted {wanted}\nlog:\n{self.log()}")

    def counter(self, name: str) -> float:
        (sample,) = [s for s in self.families()[name].samples if s.name == f"{name}_total"]
        return float(sample.value)

    def set_mode(self, mode: str) -> None:
        cm = self.cluster.get(MESH_PATH)
        cm["data"]["mesh"] = yaml.safe_dump({"outboundTrafficPolicy": {"mode": mode}})
        self.cluster.request("PUT", MESH_PATH, body=cm)


def _host_connections(clusters: str, cluster: str) -> int:
    """``cx_total`` of ``cluster``'s hosts in Envoy's ``/clusters`` text."""
    return sum(int(line.rsplit("::", 1)[1]) for line in clusters.splitlines()
               if line.startswith(f"{cluster}::") and "::cx_total::" in line)  # fmt: skip


def _apply_manifests(kubeconfig: str) -> None:
    """``meshprobe manifests watch ... | kubectl apply -f -``, less the Prometheus Operator's kinds
    (the lab serves no such CRDs; the manifest's header says to drop them then)."""
    from diag.manifests.watch import render_watch

    rendered = render_watch(namespace="shop", targets=[PKG, OPEN], interval=INTERVAL)
    docs = [d for d in yaml.safe_load_all(rendered)
            if d and not str(d["apiVersion"]).startswith("monitoring.coreos.com/")]  # fmt: skip
    assert {d["kind"] for d in docs} >= {"Deployment", "ServiceAccount", "ClusterRole", "Role", "ConfigMap"}
    done = subprocess.run(
        ["kubectl", "--kubeconfig", kubeconfig, "apply", "-f", "-"],
        input=yaml.safe_dump_all(docs), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def running() -> Iterator[Running]:
    require_lab()
    from lab.kubeapi import serve_to_pods
    from lab.runtime import Lab

    objects = [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": "shop", "labels": {"istio-injection": "enabled"}}},
        SERVICE_ENTRY,
    ]  # fmt: skip
    # Both hosts resolve in public DNS, so a missing ServiceEntry shows as the sidecar's
    # BlackHoleCluster rather than as a name that does not resolve.
    with Lab(objects, mode="ALLOW_ANY", internet=["pkg.lab.example", "open.lab.example"], api=True, pods=[],
             drain_seconds=0.1) as lab:  # fmt: skip
        serve_to_pods(lab)
        _apply_manifests(str(lab.kubeconfig))
        watch = Running(lab)
        try:
            yield watch
        finally:
            watch.cluster.close()


def test_the_watch_runs_in_its_meshed_pod_and_reads_the_api_in_cluster(running: Running) -> None:
    pod = running.cluster.get(f"{PODS_PATH}/{running.name}")
    assert sorted(c["name"] for c in pod["spec"]["containers"]) == ["istio-proxy", "watch"]  # injected
    assert pod["spec"]["serviceAccountName"] == "meshprobe-watch"
    # Both the probes and the API calls leave through the pod's own sidecar: its upstream hosts
    # counted the connections (the API's ClusterIP has no other way out: the lab has no kube-proxy).
    clusters = running.pod.admin_get("/clusters")
    assert _host_connections(clusters, "outbound|443||pkg.lab.example") > 0, clusters
    assert _host_connections(clusters, "outbound|443||kubernetes.default.svc.cluster.local") > 0, clusters
    log = running.log()
    assert "verdict changed" in log
    assert "Forbidden" not in log and "cannot " not in log, log  # the manifest's RBAC was enough


def test_registry_only_fails_the_unregistered_target_with_mp0101(running: Running) -> None:
    running.set_mode("ALLOW_ANY")
    running.wait_for(PKG, PASS, 3 * INTERVAL)
    running.wait_for(OPEN, PASS, 3 * INTERVAL)
    running.set_mode("REGISTRY_ONLY")
    took = running.wait_for(OPEN, BLACKHOLE, 2 * INTERVAL)
    assert running.verdict(PKG) == PASS  # registered: still allowed
    running.set_mode("ALLOW_ANY")
    running.wait_for(OPEN, PASS, 2 * INTERVAL)
    assert took <= 2 * INTERVAL


def test_a_deleted_service_entry_flips_to_mp0101_and_recovers(running: Running) -> None:
    running.set_mode("REGISTRY_ONLY")
    running.wait_for(PKG, PASS, 3 * INTERVAL)
    changed_at = time.time()
    running.cluster.request("DELETE", f"{SE_PATH}/pkg")
    running.wait_for(PKG, BLACKHOLE, 2 * INTERVAL)
    stamps = {
        s.labels["target"]: s.value
        for s in running.families()["meshprobe_probe_verdict_change_timestamp_seconds"].samples
    }  # fmt: skip
    assert stamps[PKG] >= changed_at - 1
    running.cluster.request("POST", SE_PATH, body=SERVICE_ENTRY)
    running.wait_for(PKG, PASS, 2 * INTERVAL)
    lines = [json.loads(x) for x in running.log().splitlines() if x.startswith("{")]
    flips = [x for x in lines if x.get("target") == PKG and x.get("code") == "MP0101"]
    assert flips and flips[-1]["signature"] == "RESET_BEFORE_RESPONSE"
    assert "pkg.lab.example" in flips[-1]["fix_yaml"]
    events = running.cluster.list("/api/v1/namespaces/shop/events")
    reasons = {e["reason"] for e in events if e["involvedObject"]["name"] == running.name}
    assert {"EgressFailedMP0101", "EgressRecovered"} <= reasons


def test_the_scrape_parses_and_carries_versions_and_health(running: Running) -> None:
    assert running.get("/readyz")[0] == 200 and running.get("/healthz")[0] == 200
    families = running.families()
    assert {"probe_success", "probe_duration_seconds", "meshprobe_probe_phase_duration_seconds",
            "meshprobe_probe_verdict", "meshprobe_build_info", "meshprobe_watch_cycles",
            "meshprobe_mesh_reads"} <= set(families)  # fmt: skip
    (info,) = families["meshprobe_build_info"].samples
    assert info.labels["version"]
    phases = {s.labels["phase"] for s in families["meshprobe_probe_phase_duration_seconds"].samples}
    assert {"resolve", "connect", "tls", "first_byte"} <= phases
    # The mesh is re-read after watch events only, not once per cycle (no polling).
    reads, cycles = running.counter("meshprobe_mesh_reads"), running.counter("meshprobe_watch_cycles")
    deadline = time.monotonic() + 4 * INTERVAL
    while running.counter("meshprobe_watch_cycles") < cycles + 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert running.counter("meshprobe_watch_cycles") >= cycles + 2
    assert running.counter("meshprobe_mesh_reads") == reads
    assert running.counter("meshprobe_watch_cycle_errors") == 0, running.log()


def test_targets_from_the_configmap_follow_its_edits(running: Running) -> None:
    """The Deployment reads its targets from the manifest's ConfigMap: an edit is seen through the
    watch (by name), the next cycles probe the new list, and a removed target's series go."""
    from diag.manifests.watch import TARGETS_CONFIGMAP

    path = f"/api/v1/namespaces/shop/configmaps/{TARGETS_CONFIGMAP}"
    cm = running.cluster.get(path)
    original = dict(cm["data"])
    cm["data"]["targets"] = f"# egress we depend on\n{PKG}\n"
    running.cluster.request("PUT", path, body=cm)
    try:
        deadline = time.monotonic() + 3 * INTERVAL
        while time.monotonic() < deadline:
            targets = {s.labels.get("target") for f in running.families().values() for s in f.samples}
            if OPEN not in targets:
                break
            time.sleep(0.2)
        assert OPEN not in targets and PKG in targets
    finally:
        cm = running.cluster.get(path)
        cm["data"] = original
        running.cluster.request("PUT", path, body=cm)


def test_a_pod_that_opts_out_of_the_token_gets_none(running: Running) -> None:
    """``automountServiceAccountToken: false``: the kubelet mounts nothing, the master service's
    variables are still set (as the kubelet always sets them)."""
    script = (
        "import os; p = '/var/run/secrets/kubernetes.io/serviceaccount/token';"
        " print(os.path.exists(p), os.environ.get('KUBERNETES_SERVICE_HOST'))"
    )
    pod = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "no-token", "namespace": "shop"},
        "spec": {"automountServiceAccountToken": False, "restartPolicy": "Never",
                 "containers": [{"name": "app", "image": "lab.example/app",
                                 "command": ["python", "-c", script]}]},
    }  # fmt: skip
    running.cluster.request("POST", PODS_PATH, body=pod)
    deadline = time.monotonic() + 60
    while not _terminated(running.cluster.get(f"{PODS_PATH}/no-token"), "app"):
        assert time.monotonic() < deadline, "the app container never finished"
        time.sleep(0.5)
    log = running.cluster.request("GET", f"{PODS_PATH}/no-token/log", query={"container": "app"}, raw=True)
    assert bytes(log).decode().split() == ["False", "10.96.0.1"]
    # The watch pod (automount on) got its token: it has been reading the API all along.
    assert running.get("/readyz")[0] == 200


def test_the_watch_outlives_an_unreachable_api(running: Running) -> None:
    """With the API server down, cycles go on (the mesh last read is used) and the pod stays
    healthy; once the API is back (its in-lab listener too), the watches resume and a change is
    seen again."""
    running.set_mode("ALLOW_ANY")
    running.wait_for(OPEN, PASS, 3 * INTERVAL)
    api = running.lab.control_plane.api
    cycles = running.counter("meshprobe_watch_cycles")
    api.pause()
    try:
        deadline = time.monotonic() + 4 * INTERVAL
        while running.counter("meshprobe_watch_cycles") < cycles + 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert running.counter("meshprobe_watch_cycles") >= cycles + 2
        assert running.get("/healthz")[0] == 200 and running.verdict(OPEN) == PASS
    finally:
        api.resume()
    running.set_mode("REGISTRY_ONLY")
    running.wait_for(OPEN, BLACKHOLE, 60)  # the watches retry with a backoff of up to 60 s
    running.set_mode("ALLOW_ANY")
    running.wait_for(OPEN, PASS, 60)


def _terminated(pod: dict[str, Any], container: str) -> bool:
    """The container ran and exited (its injected sidecar keeps the pod itself Running)."""
    statuses = pod["status"].get("containerStatuses") or []
    return any(c["name"] == container and "terminated" in (c.get("state") or {}) for c in statuses)
