"""The egress gateway's runtime (docs/lab.md, "The egress gateway"): its own netns linked like a pod,
no capture, Envoy as 1337 in router mode, readiness, access log, config pushed with ``apply``, the
Service/EndpointSlice the sidecars see, the mesh CA's SPIFFE certificates, and cleanup.

The gateway's config here is hand-written (one direct-response listener), so these tests do not
depend on the gateway config generator.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_lab

pytestmark = pytest.mark.lab

HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
HCM_NAME = "envoy.filters.network.http_connection_manager"
ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"


def _listener(port: int, body: str) -> dict[str, Any]:
    route = {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": body}}}
    hcm = {
        "@type": HCM,
        "stat_prefix": f"outbound_0.0.0.0_{port}",
        "route_config": {"name": f"http.{port}",
                         "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [route]}]},
        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER}}],
    }
    return {
        "name": f"0.0.0.0_{port}",
        "address": {"socket_address": {"address": "0.0.0.0", "port_value": port}},
        "filter_chains": [{"filters": [{"name": HCM_NAME, "typed_config": hcm}]}],
    }


def hand_source(objects: Sequence[Mapping[str, Any]], mesh: Mapping[str, Any], gw: Any) -> Any:
    """8080 answers with the number of objects the gateway was generated from and its identity."""
    body = f"{len(objects)} {gw.namespace}/{gw.name} {gw.service_account} {gw.cert.spiffe_id}"
    return [_listener(8080, body)], []


@pytest.fixture(scope="module")
def gw_lab() -> Iterator[Any]:
    require_lab()
    from lab.pod import PodSpec
    from lab.runtime import Lab, handwritten_source

    pods = [PodSpec(), PodSpec(namespace="team", service_account="builder")]
    with Lab(config_source=handwritten_source, gateway_source=hand_source, egress_gateway=True,
             access_log=True, pods=pods) as lab:  # fmt: skip
        yield lab


def _nat(netns: str) -> str:
    argv = ["nsenter", f"--net=/run/netns/{netns}", "--", "iptables-save", "-t", "nat"]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def _curl(pod: Any, url: str) -> subprocess.CompletedProcess[str]:
    return pod.exec(["curl", "-sS", "-m", "5", url])


def test_gateway_netns_address_and_no_capture(gw_lab: Any) -> None:
    gw = gw_lab.gateway
    assert gw.net.netns == f"mplab-{gw_lab.run_id}-gw"
    assert gw.address.startswith(f"10.{gw_lab.names.second_octet}.0.")
    assert "ISTIO" not in _nat(gw.net.netns)
    assert "ISTIO_OUTPUT" in _nat(gw_lab.pod("default").net.netns)  # the pods keep theirs


def test_gateway_envoy_runs_as_1337_in_router_mode(gw_lab: Any) -> None:
    gw = gw_lab.gateway
    status = Path(f"/proc/{gw.envoy.pid}/status").read_text()  # nsenter and setpriv exec into envoy
    uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    assert uid_line.split()[1:3] == ["1337", "1337"]
    dump = json.loads(gw.admin_get("/config_dump"))
    boot = next(c for c in dump["configs"] if c["@type"].endswith("BootstrapConfigDump"))
    node_id = boot["bootstrap"]["node"]["id"]
    assert node_id.startswith(f"router~{gw.address}~istio-egressgateway-")
    assert node_id.endswith("~istio-system.svc.cluster.local")


def test_pod_reaches_gateway_and_gateway_logs(gw_lab: Any) -> None:
    gw = gw_lab.gateway
    done = _curl(gw_lab.pod("default"), f"http://{gw.address}:8080/hello")
    assert done.returncode == 0, done.stderr
    count, ident, sa, spiffe = done.stdout.split()
    assert int(count) == 2  # the gateway's own Service + EndpointSlice
    assert ident == "istio-system/istio-egressgateway"
    assert sa == "istio-egressgateway-service-account"
    assert spiffe == "spiffe://cluster.local/ns/istio-system/sa/istio-egressgateway-service-account"
    lines = [x for x in gw.access_log() if x.get("path") == "/hello"]
    assert lines and lines[-1]["response_code"] == 200
    assert lines[-1]["downstream_remote_address"].startswith(gw_lab.pod("default").address + ":")


def test_pods_still_do_not_reach_each_other(gw_lab: Any) -> None:
    a, b = gw_lab.pod("default"), gw_lab.pod("team")
    # 15020 is b's agent (15021 would hit a's own 0.0.0.0:15021 listener through use_original_dst).
    done = a.exec(["curl", "-sS", "-m", "2", f"http://{b.address}:15020/healthz/ready"])
    assert done.returncode == 28, done.stderr  # dropped: forwarding is open to and from the gateway only
    assert b.http(15020, "/healthz/ready")[0] == 200  # while b's agent does answer


def test_readiness_and_status(gw_lab: Any) -> None:
    gw = gw_lab.gateway
    assert gw.http(15021, "/healthz/ready")[0] == 200
    status = gw_lab.status()["egress_gateway"]
    assert status["address"] == gw.address and status["envoy_running"] is True
    assert "istio-egressgateway" not in {p["name"] for p in gw_lab.status()["pods"]}


def test_apply_pushes_the_gateway_without_restart(gw_lab: Any) -> None:
    gw = gw_lab.gateway
    pid, version = gw.envoy.pid, gw.xds.version
    extra = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "extra"}}
    gw_lab.apply([extra])
    try:
        assert gw.envoy.pid == pid and gw.xds.version == version + 1
        assert gw_lab.last_push[("istio-system", "istio-egressgateway")].accepted
        done = _curl(gw_lab.pod("default"), f"http://{gw.address}:8080/")
        assert done.stdout.split()[0] == "3"  # regenerated from the new objects
    finally:
        gw_lab.apply([])


def test_sidecars_see_the_gateway_service_unless_defined(gw_lab: Any) -> None:
    from lab.gateway import service_objects

    objects = gw_lab.mesh_objects()
    svc = next(o for o in objects if o["kind"] == "Service")
    labels = {"app": "istio-egressgateway", "istio": "egressgateway"}
    assert svc["metadata"] == {"namespace": "istio-system", "name": "istio-egressgateway", "labels": labels}
    assert [(p["name"], p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [
        ("http2", 80, 8080), ("https", 443, 8443)]  # fmt: skip
    eps = next(o for o in objects if o["kind"] == "EndpointSlice")
    assert eps["endpoints"][0]["addresses"] == [gw_lab.gateway.address]
    assert "security.istio.io/tlsMode" not in json.dumps(eps)  # the gateway pod has no tlsMode label
    assert [(p["name"], p["port"]) for p in eps["ports"]] == [("http2", 8080), ("https", 8443)]
    own = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"namespace": "istio-system", "name": "istio-egressgateway"},
           "spec": {"ports": [{"name": "tls", "port": 443, "targetPort": 9443}]}}  # fmt: skip
    added = service_objects([own], "10.0.0.9", "10.0.4.1")
    assert [o["kind"] for o in added] == ["EndpointSlice"]
    assert added[0]["ports"] == [{"name": "tls", "port": 9443, "protocol": "TCP"}]


def test_workload_certificates_are_spiffe_and_chain_to_the_mesh_root_only(gw_lab: Any) -> None:
    cert = gw_lab.workload_cert("team", "builder")
    argv = ["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", str(cert.cert_chain_file)]
    text = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    assert "URI:spiffe://cluster.local/ns/team/sa/builder" in text and "DNS:" not in text
    ok = subprocess.run(["openssl", "verify", "-CAfile", str(gw_lab.mesh_ca_file), str(cert.cert_chain_file)],
                        capture_output=True, text=True)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    wrong = subprocess.run(["openssl", "verify", "-CAfile", str(gw_lab.ca_file), str(cert.cert_chain_file)],
                           capture_output=True, text=True)  # fmt: skip
    assert wrong.returncode != 0  # the public lab CA does not vouch for mesh identities


def test_closed_gateway_lab_leaves_nothing() -> None:
    require_lab()
    from lab.leftovers import leftovers
    from lab.runtime import Lab, handwritten_source

    with Lab(config_source=handwritten_source, gateway_source=hand_source, egress_gateway=True) as lab:
        run_id = lab.run_id
        assert any(x == f"netns mplab-{run_id}-gw" for x in leftovers(run_id))
        gw_pid = lab.gateway.envoy.pid
    assert leftovers(run_id) == []
    from lab.envoy import alive

    assert not alive(gw_pid)


def test_failed_gateway_config_fails_the_start_cleanly() -> None:
    require_lab()
    from lab.leftovers import leftovers
    from lab.runtime import Lab, LabStartError, handwritten_source

    def broken(*_: Any) -> Any:
        raise ValueError("no gateway for you")

    lab = Lab(config_source=handwritten_source, gateway_source=broken, egress_gateway=True)
    with pytest.raises(LabStartError, match=r"egress gateway.*no gateway for you"), lab:
        pass
    assert leftovers(lab.run_id) == []
