"""The egress gateway in ``Lab(api=True)``: ``kubectl`` sees its Pod (Running, Ready, at the gateway's
address, not injected), its Service (the chart's ports and selector, an allocated ClusterIP), its
ServiceAccount, and the EndpointSlice the controller built from the Pod; the sidecars route
through it from those API objects, and ``lab apply`` does not delete them."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import require_lab
from tests.lab.testdata import egress_gateway as eg
from tests.lab.testdata.gateway_calls import Logs, call_http

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def lab() -> Iterator[Any]:
    require_lab()
    from lab.runtime import Lab

    with Lab(eg.plain_http(), egress_gateway=True, access_log=True, internet=[eg.HOST], api=True) as lab:
        yield lab


def kubectl(lab: Any, *args: str) -> Any:
    env = {**os.environ, "KUBECONFIG": str(lab.kubeconfig)}
    argv = ["kubectl", *args, "-o", "json"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_kubectl_sees_the_gateway_pod_service_and_slice(lab: Any) -> None:
    pod = kubectl(lab, "-n", "istio-system", "get", "pod", "istio-egressgateway-lab")
    assert pod["status"]["phase"] == "Running" and pod["status"]["podIP"] == lab.gateway.address
    labels = pod["metadata"]["labels"]
    assert {"app": "istio-egressgateway", "istio": "egressgateway"}.items() <= labels.items()
    assert "security.istio.io/tlsMode" not in pod["metadata"]["labels"]
    assert pod["spec"]["serviceAccountName"] == "istio-egressgateway-service-account"
    assert [c["name"] for c in pod["spec"]["containers"]] == ["istio-proxy"]  # the gateway, not injected
    svc = kubectl(lab, "-n", "istio-system", "get", "service", "istio-egressgateway")
    assert [(p["name"], p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [
        ("http2", 80, 8080), ("https", 443, 8443)]  # fmt: skip
    assert svc["spec"]["selector"] == {"app": "istio-egressgateway", "istio": "egressgateway"}
    assert svc["spec"]["clusterIP"].startswith("10.96.")
    kubectl(lab, "-n", "istio-system", "get", "serviceaccount", "istio-egressgateway-service-account")
    slices = kubectl(lab, "-n", "istio-system", "get", "endpointslices",
                     "-l", "kubernetes.io/service-name=istio-egressgateway")["items"]  # fmt: skip
    assert [ep["addresses"] for s in slices for ep in s.get("endpoints") or []] == [[lab.gateway.address]]


def test_sidecars_route_through_the_gateway_from_the_api_objects(lab: Any) -> None:
    pod = lab.pod("default")
    logs = Logs(pod, lab.gateway)
    assert call_http(pod, "/from-api").status == 200
    [side] = logs.sidecar()
    assert side["upstream_cluster"] == f"outbound|80|{eg.SUBSET}|{eg.GATEWAY_HOST}"
    [gw] = logs.gateway_lines()
    assert gw["path"] == "/from-api"


def test_lab_apply_keeps_the_gateway_objects(lab: Any) -> None:
    lab.control_plane.replace_objects(eg.host_not_on_gateway())
    svc = kubectl(lab, "-n", "istio-system", "get", "service", "istio-egressgateway")
    assert svc["metadata"]["name"] == "istio-egressgateway"
    pod = lab.pod("default")
    # The new objects reach both proxies: the gateway has no route now. The mesh sync pushes API
    # changes in the background too (istiod's debounce), so the last push wins after a moment.
    assert _settles(pod, "/after-apply", 404)
    lab.control_plane.replace_objects(eg.plain_http())
    assert _settles(pod, "/restored", 200)


def _settles(pod: Any, path: str, status: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while call_http(pod, path).status != status:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True
