"""Failures on demand: injected Status errors, watches dropped mid-stream, a paused server
(connection refused, then back on the same port), and a close that frees everything."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from lab.apiserver import ApiServer
from lab.certs import LabCA


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    workdir = tmp_path_factory.mktemp("apiserver")
    with ApiServer(workdir, LabCA(workdir)) as server:
        yield server


@pytest.fixture(scope="module")
def core(api: ApiServer) -> client.CoreV1Api:
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(api.kubeconfig()), client_configuration=cfg)
    cfg.retries = False
    return client.CoreV1Api(client.ApiClient(cfg))


def cm(name: str) -> dict[str, object]:
    return {"metadata": {"name": name}}


def test_injected_faults_fail_the_next_matching_requests_only(api: ApiServer, core: client.CoreV1Api) -> None:
    api.inject_fault("create", "configmaps", status=500, message="etcdserver: request timed out", times=2)
    api.inject_fault("list", "pods", status=409, message="busy", namespace="kube-system")
    for _ in range(2):
        with pytest.raises(ApiException) as caught:
            core.create_namespaced_config_map("default", cm("f"))
        body = json.loads(caught.value.body)
        assert (caught.value.status, body["reason"], body["message"]) == (
            500,
            "InternalError",
            "etcdserver: request timed out",
        )
    assert core.create_namespaced_config_map("default", cm("f")).metadata.name == "f"
    core.list_namespaced_pod("default")  # another namespace: not matched
    with pytest.raises(ApiException) as caught:
        core.list_namespaced_pod("kube-system")
    assert caught.value.status == 409 and json.loads(caught.value.body)["reason"] == "Conflict"
    core.list_namespaced_pod("kube-system")


def test_drop_watches_ends_every_open_stream(api: ApiServer, core: client.CoreV1Api) -> None:
    events: list[str] = []
    ended = threading.Event()

    def run() -> None:
        for event in watch.Watch().stream(
            core.list_namespaced_config_map, "default", timeout_seconds=30, _request_timeout=30
        ):
            events.append(event["type"])
        ended.set()

    watcher = threading.Thread(target=run, daemon=True)
    watcher.start()
    while not events:  # the initial ADDED for what exists
        ended.wait(0.02)
    assert api.drop_watches() == 1
    assert ended.wait(5)


def test_pause_refuses_connections_then_resume_serves_on_the_same_port(
    api: ApiServer, core: client.CoreV1Api
) -> None:
    port = api.port
    api.pause()
    with pytest.raises(urllib3.exceptions.HTTPError):
        core.list_namespace(_request_timeout=2)
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    api.resume()
    assert api.port == port and core.list_namespace().items


def test_close_is_idempotent_and_frees_the_port(tmp_path: Path) -> None:
    api = ApiServer(tmp_path, LabCA(tmp_path)).start()
    port = api.port
    kube = config.new_client_from_config(config_file=str(api.kubeconfig()))
    outcome: list[str] = []
    watching = threading.Event()

    def run() -> None:
        try:
            for _ in watch.Watch().stream(client.CoreV1Api(kube).list_namespace):
                watching.set()
            outcome.append("ended")
        except (ApiException, urllib3.exceptions.HTTPError) as exc:
            outcome.append(type(exc).__name__)

    stream = threading.Thread(target=run, daemon=True)
    stream.start()
    assert watching.wait(10)
    api.close()
    api.close()
    stream.join(5)
    assert not stream.is_alive() and outcome
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))
