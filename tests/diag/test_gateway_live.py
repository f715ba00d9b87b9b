"""``diag.live.gateway`` without a cluster: which gateway pod is read, every way the read can fail
(each a note, never an error), one read per gateway per run, and the WithGateway wrapper."""

from __future__ import annotations

from typing import Any

import pytest

from diag import errors
from diag.live.call import LivePath
from diag.live.gateway import GatewayConfigs, WithGateway, pick_pod, read_gateway_config
from diag.predict.gateway_model import GatewayWorkload

GATEWAY = GatewayWorkload(
    name="istio-egressgateway.istio-system",
    namespace="istio-system",
    host="istio-egressgateway.istio-system.svc.cluster.local",
    labels={"istio": "egressgateway"},
    ports={80: 8080},
)


def endpoint(
    pod: str, ready: bool | None = True, terminating: bool = False, kind: str = "Pod"
) -> dict[str, Any]:
    conditions: dict[str, Any] = {"terminating": terminating}
    if ready is not None:
        conditions["ready"] = ready
    return {"addresses": ["10.0.0.1"], "targetRef": {"kind": kind, "name": pod}, "conditions": conditions}


class FakeCluster:
    def __init__(
        self, allowed: bool = True, slices: Any = None, reply: Any = (200, b'{"configs": []}')
    ) -> None:
        self.allowed, self.slices, self.reply = allowed, slices, reply
        self.calls: list[tuple[Any, ...]] = []

    def can_i(self, verb: str, resource: str, namespace: str | None, *, subresource: str = "") -> bool:
        self.calls.append(("can_i", verb, resource, subresource, namespace))
        return self.allowed

    def list(self, path: str, *, label_selector: str | None = None, what: str = "") -> Any:
        self.calls.append(("list", path, label_selector))
        if isinstance(self.slices, Exception):
            raise self.slices
        return (
            self.slices if self.slices is not None else [{"endpoints": [endpoint("gw-b"), endpoint("gw-a")]}]
        )

    def port_forward_get(self, namespace: str, pod: str, port: int, path: str, *, timeout: float) -> Any:
        self.calls.append(("forward", namespace, pod, port, path, timeout))
        if isinstance(self.reply, Exception):
            raise self.reply
        return self.reply


def test_pick_pod_takes_the_first_ready_pod_by_name() -> None:
    slices = [
        {"endpoints": [endpoint("gw-c"), endpoint("gw-a", ready=False), endpoint("gw-0", terminating=True)]},
        {"endpoints": [endpoint("gw-b"), endpoint("node-x", kind="Node"), {"addresses": ["10.0.0.9"]}]},
    ]
    assert pick_pod(slices) == "gw-b"
    assert pick_pod([{"endpoints": [endpoint("gw-a", ready=None)]}]) == "gw-a"  # unknown counts as ready
    assert pick_pod([{"endpoints": None}]) is None
    assert pick_pod([]) is None


def test_a_read_asks_lists_then_fetches_the_admin_port() -> None:
    cluster = FakeCluster()
    found, note = read_gateway_config(cluster, GATEWAY, 5.0)  # type: ignore[arg-type]
    assert note is None
    assert found == ("istio-system/gw-a", {"configs": []})
    assert cluster.calls == [
        ("can_i", "create", "pods", "portforward", "istio-system"),
        ("list", "/apis/discovery.k8s.io/v1/namespaces/istio-system/endpointslices",
         "kubernetes.io/service-name=istio-egressgateway"),
        ("forward", "istio-system", "gw-a", 15000, "/config_dump", 5.0),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("cluster", "note"),
    [
        (FakeCluster(allowed=False), "gateway hop inferred: no pods/portforward permission in istio-system"),
        (
            FakeCluster(slices=[]),
            "gateway hop inferred: no running ready pod of istio-egressgateway in istio-system",
        ),
        (
            FakeCluster(slices=errors.PermissionDenied("permission denied: bob cannot list endpointslices")),
            "gateway hop inferred: could not read istio-egressgateway's config "
            "(permission denied: bob cannot list endpointslices)",
        ),
        (
            FakeCluster(reply=errors.ClusterUnreachable("cannot reach the Kubernetes API (x): timeout")),
            "gateway hop inferred: could not read istio-egressgateway's config "
            "(cannot reach the Kubernetes API (x): timeout)",
        ),
        (
            FakeCluster(reply=(503, b"")),
            "gateway hop inferred: istio-system/gw-a admin answered HTTP 503 to /config_dump",
        ),
        (
            FakeCluster(reply=(200, b"<html>")),
            "gateway hop inferred: istio-egressgateway's /config_dump is not JSON",
        ),
    ],
    ids=["no-rbac", "no-pod", "list-forbidden", "unreachable", "http-503", "not-json"],
)
def test_every_failure_is_a_note(cluster: FakeCluster, note: str) -> None:
    found, got = read_gateway_config(cluster, GATEWAY, 5.0)  # type: ignore[arg-type]
    assert (found, got) == (None, note)
    if not cluster.allowed:
        assert [c[0] for c in cluster.calls] == ["can_i"]  # nothing else is tried


def test_one_read_per_gateway_per_run() -> None:
    cluster = FakeCluster(allowed=False)
    configs = GatewayConfigs(cluster)  # type: ignore[arg-type]
    assert configs.config_of(GATEWAY) is None
    assert configs.config_of(GATEWAY) is None
    assert len(cluster.calls) == 1
    assert configs.notes == ["gateway hop inferred: no pods/portforward permission in istio-system"]


def test_with_gateway_adds_the_hop_and_keeps_the_sidecar_path() -> None:
    path = LivePath("cluster", "0.0.0.0_80", None, "80", "edition.example:80", "outbound|80||gw")
    hop = {"gateway": "g", "pod": "ns/p", "outcome": "cluster", "listener": "0.0.0.0_8080",
           "filter_chain": None, "route": "http.8080", "vhost": "edition.example:80",
           "cluster": "outbound|80||e"}  # fmt: skip
    wrapped = WithGateway(path, hop)
    assert wrapped.cluster == "outbound|80||gw" and wrapped.outcome == "cluster"
    assert wrapped.as_dict() == {**path.as_dict(), "gateway": hop}


def test_the_text_report_shows_the_gateways_live_path() -> None:
    from diag.render.waterfall import details
    from diag.report import TargetResult

    path = LivePath("cluster", "0.0.0.0_80", None, "80", "h:80", "outbound|80||gw")
    hop = {"gateway": "g", "pod": "istio-system/gw-a", "outcome": "no_filter_chain",
           "listener": "0.0.0.0_8080", "filter_chain": None, "route": None, "vhost": None,
           "cluster": None}  # fmt: skip
    actual = WithGateway(path, hop)
    target = TargetResult(target="http://h/", host="h", port=80, protocol="http", actual=actual)
    lines = [text for text, _ in details(target, 1.0)]
    assert "live path: listener 0.0.0.0_80 → route 80 → vhost h:80 → cluster outbound|80||gw" in lines
    assert "gateway live path (istio-system/gw-a): listener 0.0.0.0_8080 → no_filter_chain" in lines
