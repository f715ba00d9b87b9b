"""`meshprobe watch` in the lab: the watch loop reads the lab's API with the real `kubernetes`
client (list + watch), probes from a lab pod behind its real Envoy sidecar, and serves /metrics,
which each case scrapes over HTTP and parses with the Prometheus client's own parser.

The loop runs in the test process; each cycle's probe runs inside the pod (``python -m probes
--plan -`` behind the sidecar, as the watch's in-process prober does in its own pod), because the
test process is not in the pod's network namespace. The watch authenticates as the ServiceAccount
of ``meshprobe manifests watch``, bound only by that command's RBAC objects; mesh changes go
through the API as the admin.
"""

from __future__ import annotations

import io
import json
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import require_lab

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
INTERVAL = 4.0
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


class Running:
    """A watch loop in a thread, its /metrics URL and its log."""

    def __init__(self, lab: Any, kubeconfig: str) -> None:
        from diag.cluster import Cluster
        from diag.watch.loop import Watcher, WatchOptions
        from diag.watch.server import serve

        self.lab = lab
        self.pod = lab.pod("shop", "watch")
        self.cluster = Cluster.connect(str(lab.kubeconfig), None, "shop")  # the admin, to change things
        self.watch_cluster = Cluster.connect(kubeconfig, None, "shop")
        self.out = io.StringIO()
        options = WatchOptions(targets=(PKG, OPEN), interval=INTERVAL, jitter=0.1, timeout=3.0)
        self.watcher = Watcher(
            self.watch_cluster, options, prober=self.probe, pod=("shop", "watch"), out=self.out
        )
        self.watcher.start()
        self.server = serve(("127.0.0.1", 0), self.watcher, self.watcher.metrics)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.watcher.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def probe(self, plan: dict[str, Any]) -> Any:
        from diag.image import PROBE_GID, PROBE_UID
        from probes.model import ProbeReport, from_json

        proc = self.pod.exec(
            [sys.executable, "-m", "probes", "--plan", "-", "--compact"],
            uid=PROBE_UID, gid=PROBE_GID, env={"PYTHONPATH": str(ROOT)}, input=json.dumps(plan), timeout=60,
        )  # fmt: skip
        assert proc.returncode in (0, 1), proc.stderr
        return from_json(ProbeReport, json.loads(proc.stdout))

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)
        self.watcher.mesh.stop()
        self.server.shutdown()
        self.server.server_close()
        self.cluster.close()
        self.watch_cluster.close()

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def verdict(self, target: str) -> tuple[float, str, str] | None:
        """(probe_success, signature, code) of ``target`` in a fresh scrape."""
        status, text = self.get("/metrics")
        assert status == 200
        success, labels = None, None
        for family in text_string_to_metric_families(text):
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
        pytest.fail(f"{target}: {seen} after {within:.0f} s, wanted {wanted}\nlog:\n{self.out.getvalue()}")

    def set_mode(self, mode: str) -> None:
        cm = self.cluster.get(MESH_PATH)
        cm["data"]["mesh"] = yaml.safe_dump({"outboundTrafficPolicy": {"mode": mode}})
        self.cluster.request("PUT", MESH_PATH, body=cm)


@pytest.fixture(scope="module")
def running() -> Iterator[Running]:
    require_lab()
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
        watch = Running(lab, _service_account(lab))
        try:
            yield watch
        finally:
            watch.close()


def _service_account(lab: Any) -> str:
    """A kubeconfig for the manifest's ServiceAccount, bound by the manifest's RBAC objects only."""
    from diag.manifests.watch import WATCH, watch_manifests

    rbac_kinds = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
    for obj in watch_manifests("shop", targets=[PKG, OPEN]):
        if obj["kind"] in rbac_kinds:
            lab.control_plane.store.create(obj)
    user = f"system:serviceaccount:shop:{WATCH}"
    api = lab.control_plane.api
    api.add_user(user, groups=["system:serviceaccounts", "system:serviceaccounts:shop"])
    return str(api.kubeconfig(user=user))


PASS = (1.0, "OK", "none")
BLACKHOLE = (0.0, "RESET_BEFORE_RESPONSE", "MP0101")


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
    _, text = running.get("/metrics")
    stamps = {
        s.labels["target"]: s.value
        for f in text_string_to_metric_families(text) for s in f.samples
        if s.name == "meshprobe_probe_verdict_change_timestamp_seconds"
    }  # fmt: skip
    assert stamps[PKG] >= changed_at - 1
    running.cluster.request("POST", SE_PATH, body=SERVICE_ENTRY)
    running.wait_for(PKG, PASS, 2 * INTERVAL)
    lines = [json.loads(x) for x in running.out.getvalue().splitlines()]
    flips = [x for x in lines if x.get("target") == PKG and x.get("code") == "MP0101"]
    assert flips and flips[-1]["signature"] == "RESET_BEFORE_RESPONSE"
    assert "pkg.lab.example" in flips[-1]["fix_yaml"]
    events = running.cluster.list("/api/v1/namespaces/shop/events")
    reasons = {e["reason"] for e in events if e["involvedObject"]["name"] == "watch"}
    assert {"EgressFailedMP0101", "EgressRecovered"} <= reasons


def test_the_scrape_parses_and_carries_versions_and_health(running: Running) -> None:
    assert running.get("/readyz")[0] == 200 and running.get("/healthz")[0] == 200
    _, text = running.get("/metrics")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert {"probe_success", "probe_duration_seconds", "meshprobe_probe_phase_duration_seconds",
            "meshprobe_probe_verdict", "meshprobe_build_info", "meshprobe_watch_cycles",
            "meshprobe_mesh_reads"} <= set(families)  # fmt: skip
    (info,) = families["meshprobe_build_info"].samples
    assert info.labels["version"]
    phases = {s.labels["phase"] for s in families["meshprobe_probe_phase_duration_seconds"].samples}
    assert {"resolve", "connect", "tls", "first_byte"} <= phases
    assert "serviceentries" in running.watcher.mesh.watching
    assert not running.watcher.mesh.warnings, running.watcher.mesh.warnings  # every watch was allowed
    assert running.watcher.mesh.current().notes == []  # and every read
    # The mesh is re-read after watch events only, not once per cycle (no polling).
    reads, cycles = running.watcher.mesh.reads, running.watcher.cycles
    deadline = time.monotonic() + 4 * INTERVAL
    while running.watcher.cycles < cycles + 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert running.watcher.cycles >= cycles + 2 and running.watcher.mesh.reads == reads


def test_targets_from_a_configmap_follow_its_edits(running: Running) -> None:
    """A second watch reading its targets from a ConfigMap: an edit is seen through the watch
    (by name), the next cycle probes the new list, and a removed target's series are dropped."""
    from diag.manifests.watch import TARGETS_CONFIGMAP
    from diag.watch.loop import Watcher, WatchOptions

    path = "/api/v1/namespaces/shop/configmaps"
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": TARGETS_CONFIGMAP, "namespace": "shop"},
          "data": {"targets": f"# egress we depend on\n{PKG}\n{OPEN}\n"}}  # fmt: skip
    running.cluster.request("POST", path, body=cm)
    options = WatchOptions(targets_configmap=TARGETS_CONFIGMAP, interval=INTERVAL, timeout=3.0)
    watcher = Watcher(running.watch_cluster, options, prober=running.probe, out=io.StringIO(), events=False)
    watcher.start()
    try:
        assert f"configmap shop/{TARGETS_CONFIGMAP}" in watcher.mesh.watching
        assert [v.target for v in watcher.cycle()] == [PKG, OPEN]
        cm["data"]["targets"] = f"{PKG}\n"
        running.cluster.request("PUT", f"{path}/{TARGETS_CONFIGMAP}", body=cm)
        assert watcher.mesh.wait_changed(10)
        assert [v.target for v in watcher.cycle()] == [PKG]
        text = watcher.metrics.scrape().decode()
        targets = {s.labels.get("target") for f in text_string_to_metric_families(text) for s in f.samples}
        assert OPEN not in targets and PKG in targets
    finally:
        watcher.mesh.stop()
        running.cluster.request("DELETE", f"{path}/{TARGETS_CONFIGMAP}")
