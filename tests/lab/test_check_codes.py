"""More diagnosis codes end to end through `meshprobe check` and the lab's API: redirects to a
blocked host (MP0106), a TCP entry that owns a whole port (MP0107), double TLS (MP0108), an entry
Envoy cannot resolve (MP0110), a server-first protocol on a sniffed port
(MP0117), an upstream that drops SYNs (MP0203) and a workload whose sidecar is down (MP0305).
The mesh's ``connectTimeout`` is 0.5 s so the SYN-drop case answers in about 1.5 s (3 attempts).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.conftest import require_lab
from tests.lab.checkrun import codes, leftovers, run_check

pytestmark = pytest.mark.lab

CONFIG = """
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio-injection: enabled}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: pkg, namespace: shop}
spec:
  hosts: [pkg.lab.example]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 443, name: https, protocol: HTTPS}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: git-ssh, namespace: shop}
spec:
  hosts: [git.lab.example]
  location: MESH_EXTERNAL
  resolution: NONE
  ports: [{number: 22, name: tcp-ssh, protocol: TCP}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: dbl, namespace: shop}
spec:
  hosts: [dbl.lab.example]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 443, name: https, protocol: HTTPS}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: dbl, namespace: shop}
spec:
  host: dbl.lab.example
  trafficPolicy: {tls: {mode: SIMPLE}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ghost, namespace: shop}
spec:
  hosts: [ghost.lab.example]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: ghost-backend.lab.example}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: sniffed, namespace: shop}
spec:
  hosts: [db.lab.example]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 3306, name: http-db, protocol: HTTP}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: drop, namespace: shop}
spec:
  hosts: [drop.lab.example]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 80, name: http, protocol: HTTP}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: moved, namespace: shop}
spec:
  hosts: [moved.lab.example]
  addresses: [240.240.7.0/31]
  location: MESH_EXTERNAL
  resolution: NONE
  ports: [{number: 5432, name: tcp-pg, protocol: TCP}]
"""
INTERNET = ["files.lab.example", "elsewhere.lab.example"]


@pytest.fixture(scope="module")
def lab() -> Iterator[Any]:
    require_lab()
    from lab.runtime import Lab

    objects = list(yaml.safe_load_all(CONFIG))
    with Lab(
        objects, mode="REGISTRY_ONLY", mesh={"connectTimeout": "0.5s"}, internet=INTERNET, api=True, pods=[],
        drain_seconds=0.1,
    ) as running:  # fmt: skip
        yield running


def check(lab: Any, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    return run_check(lab, capsys, "-n", "shop", *args)


def no_leftovers(lab: Any) -> bool:
    return not leftovers(lab)


def test_redirect_to_a_blocked_host_is_mp0106(lab: Any, capsys: pytest.CaptureFixture[str]) -> None:
    target = "https://pkg.lab.example/redirect?to=https://files.lab.example/"
    code, report = check(lab, capsys, target)
    assert "MP0106" in codes(report)[target], json.dumps(report["targets"][0]["diagnoses"])[:1500]
    assert code == 1 and no_leftovers(lab)


def test_tcp_entry_without_addresses_owns_the_port_mp0107(
    lab: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """A NONE entry on :22 with no addresses passes every :22 destination, even REGISTRY_ONLY."""
    target = "tcp://elsewhere.lab.example:22"
    code, report = check(lab, capsys, "--expect", "blocked", target)
    assert report["targets"][0]["observed"]["tcp"]["banner"], "the banner of elsewhere came through"
    assert {"MP0107", "MP0304"} <= set(codes(report)[target])
    assert code == 1


def test_double_tls_is_mp0108(lab: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = check(lab, capsys, "--timeout", "2", "dbl.lab.example")
    assert "MP0108" in codes(report)["dbl.lab.example"]
    assert code == 1


def test_entry_envoy_cannot_resolve_is_mp0110(lab: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """The app resolves ghost.lab.example, but the entry's endpoint is a name that does not resolve:
    Envoy's STRICT_DNS cluster has no hosts and answers 503 UH."""
    code, report = check(lab, capsys, "http://ghost.lab.example/")
    target = report["targets"][0]
    assert target["observed"]["signature"] == "ENVOY_503_UPSTREAM", target["observed"]
    assert "MP0110" in codes(report)["http://ghost.lab.example/"]
    assert code == 1


def test_server_first_on_a_sniffed_port_is_mp0117(lab: Any, capsys: pytest.CaptureFixture[str]) -> None:
    target = "tcp://server-first.lab.example:3306"
    code, report = check(lab, capsys, "--timeout", "2", target)
    assert "MP0117" in codes(report)[target]
    assert code == 1


def test_upstream_dropping_syns_is_mp0203(lab: Any, capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    code, report = check(lab, capsys, "http://drop.lab.example/")
    target = report["targets"][0]
    assert target["observed"]["signature"] == "ENVOY_503_UPSTREAM"
    assert "MP0203" in codes(report)["http://drop.lab.example/"]
    assert code == 3, "an upstream that does not answer is not the mesh's fault"
    assert time.monotonic() - started < 20, "classified from Envoy's reply, not by waiting for a timeout"


def test_from_a_pod_whose_sidecar_is_down_is_mp0305(
    lab: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESHPROBE_POD_START_TIMEOUT", "3")
    store = lab.control_plane.store
    faults = lab.control_plane.kubelet.faults
    faults.proxy_never_starts = True
    try:
        store.create({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "broken", "namespace": "shop",
                         "annotations": {"sidecar.istio.io/nativeSidecar": "false"}},
            "spec": {"containers": [{"name": "app", "image": "lab.example/app:1",
                                     "command": ["sleep", "600"]}]},
        }, admission=True)  # fmt: skip
        deadline = time.monotonic() + 15
        while (store.get("pods", "shop", "broken") or {}).get("status", {}).get("phase") != "Running":
            assert time.monotonic() < deadline, "workload pod never ran"
            time.sleep(0.1)
    finally:
        faults.proxy_never_starts = False
    try:
        code, report = check(lab, capsys, "--from", "pod/broken", "pkg.lab.example")
    finally:
        store.delete("pods", "shop", "broken")
    assert report["targets"][0]["observed"]["signature"] == "TCP_REFUSED"
    assert "MP0305" in codes(report)["pkg.lab.example"]
    assert code == 1


def test_envoyfilter_selecting_the_source_is_mp0121(lab: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """EnvoyFilter is served only at v1alpha3: the live read must find it there."""
    store = lab.control_plane.store
    store.create({
        "apiVersion": "networking.istio.io/v1alpha3", "kind": "EnvoyFilter",
        "metadata": {"name": "tweak", "namespace": "shop"},
        "spec": {"configPatches": []},
    })  # fmt: skip
    try:
        _, report = check(lab, capsys, "pkg.lab.example")
    finally:
        store.delete("envoyfilters", "shop", "tweak", group="networking.istio.io")
    assert "MP0121" in codes(report)["pkg.lab.example"]


def test_entry_bound_to_an_address_the_client_did_not_dial_is_mp0114(
    lab: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """The entry pins 240.240.7.0/31 (the destination's old addresses); DNS now gives another one, so
    the sidecar's listener for the range never sees the call."""
    target = "tcp://moved.lab.example:5432"
    code, report = check(lab, capsys, target)
    assert report["targets"][0]["predicted"]["verdict"] == "blocked"
    assert "MP0114" in codes(report)[target], json.dumps(report["targets"][0]["diagnoses"])[:1500]
    assert code == 1
