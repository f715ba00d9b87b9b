"""Unit tests of the lab runtime's pure parts: names/addresses, object loading, origin answers,
DNS responses, xDS files and counters (no root needed)."""

from __future__ import annotations

import json
from pathlib import Path

import dns.message
import dns.rcode
import pytest

from lab.bootstrap import CLUSTER_TYPE, istio_status_resources, xds_file
from lab.dnswire import make_response
from lab.names import RunNames
from lab.objects import ObjectsError, load_objects, namespaces_of
from lab.origin import Origin, _answer, files_host
from lab.xds import PushResult, parse_counters


def test_run_names_are_per_run_and_fit_kernel_limits() -> None:
    a, b = RunNames("0a0b0c"), RunNames("ffffff")
    assert a.pod_netns(3) == "mplab-0a0b0c-p3" and a.internet_netns == "mplab-0a0b0c-inet"
    assert len(a.veth_pod_side(62)) <= 15 and len(a.veth_internet_side(62)) <= 15  # IFNAMSIZ
    assert a.link_addresses(0) == (f"10.{a.second_octet}.0.1", f"10.{a.second_octet}.0.2")
    assert a.link_addresses(1)[0].endswith(".0.5")
    assert (
        64 <= b.second_octet < 128 and a.owns_netns("mplab-0a0b0c-p1") and not b.owns_netns("mplab-0a0b0c-p1")
    )
    with pytest.raises(ValueError):
        RunNames("../etc")
    with pytest.raises(ValueError):
        a.link_addresses(63)


def test_load_objects_flattens_lists_and_names_bad_files(tmp_path: Path) -> None:
    good = tmp_path / "a.yaml"
    good.write_text(
        "kind: List\nitems:\n- {kind: Namespace, metadata: {name: team}}\n---\n"
        "kind: ServiceEntry\nmetadata: {name: x}\n"
    )
    objects = load_objects([tmp_path])
    assert [o["kind"] for o in objects] == ["Namespace", "ServiceEntry"]
    assert namespaces_of(objects) == ["team"]
    bad = tmp_path / "b.yaml"
    bad.write_text("kind: [unclosed\n")
    with pytest.raises(ObjectsError, match=r"b\.yaml"):
        load_objects([bad])
    (tmp_path / "c.yml").write_text("- just a list\n")
    with pytest.raises(ObjectsError, match="not a Kubernetes object"):
        load_objects([tmp_path / "c.yml"])
    with pytest.raises(ObjectsError, match="no such file"):
        load_objects([tmp_path / "missing.yaml"])


@pytest.mark.parametrize(
    ("path", "status", "check"),
    [
        ("/redirect?to=https://files.lab.example/x&code=301", 301, "location"),
        ("/status/503", 503, None),
        ("/simple/", 200, "html"),
        ("/anything", 200, "json"),
    ],
)
def test_origin_answers(path: str, status: int, check: str | None) -> None:
    origin = Origin(("pkg.lab.example",), "10.70.2.1", 443, "https")
    code, headers, body = _answer(
        origin, "GET", path, {"host": "pkg.lab.example"}, "pkg.lab.example", "https"
    )
    assert code == status
    if check == "location":
        assert headers["location"] == "https://files.lab.example/x"
    elif check == "html":
        assert b"https://files.lab.example/packages/" in body
    else:
        info = json.loads(body)
        assert (info["address"], info["port"], info["sni"]) == ("10.70.2.1", 443, "pkg.lab.example")


def test_files_host() -> None:
    assert files_host("pkg.lab.example") == "files.lab.example"
    assert files_host("localhost") == "files.localhost"


def test_dns_responses() -> None:
    query = dns.message.make_query("pkg.lab.example", "A")
    assert make_response(query, None).rcode() == dns.rcode.NXDOMAIN
    answer = make_response(query, ("10.1.2.3", "fd00::1"), authoritative=True)
    assert [r.address for rr in answer.answer for r in rr] == ["10.1.2.3"]
    aaaa = make_response(dns.message.make_query("pkg.lab.example", "AAAA"), ("10.1.2.3",))
    assert aaaa.rcode() == dns.rcode.NOERROR and aaaa.answer == []


def test_xds_file_and_counters() -> None:
    doc = xds_file(CLUSTER_TYPE, [{"name": "BlackHoleCluster", "type": "STATIC"}], "7")
    assert doc["version_info"] == "7" and doc["resources"][0]["@type"] == CLUSTER_TYPE
    assert parse_counters("a.b: 3\nc: No recorded values\nd: 0\n") == {"a.b": 3, "d": 0}
    assert PushResult("1", "accepted", "accepted").accepted
    assert not PushResult("1", "accepted", "rejected").accepted


def test_status_listeners_route_readiness_to_the_agent() -> None:
    listeners, clusters = istio_status_resources()
    ports = [ln["address"]["socket_address"]["port_value"] for ln in listeners]
    assert ports == [15090, 15021]
    agent = next(c for c in clusters if c["name"] == "agent")
    endpoint = agent["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert endpoint["address"]["socket_address"]["port_value"] == 15020


def test_pod_spec_reads_injector_annotations() -> None:
    from lab.pod import PodSpec

    spec = PodSpec(
        proxy_config={"proxyStatsMatcher": {"inclusionPrefixes": ["tcp."]}},
        annotations={
            "proxy.istio.io/config": "proxyMetadata: {ISTIO_META_DNS_CAPTURE: 'true'}",
            "sidecar.istio.io/statsInclusionSuffixes": "upstream_rq_503",
            "sidecar.istio.io/interceptionMode": "NONE",
        },
    )
    assert spec.captures_dns and not spec.intercepts
    assert spec.stats_matcher is not None and spec.stats_matcher.inclusion_prefixes == ("tcp.",)
    assert spec.stats_annotations.suffixes == "upstream_rq_503"
    assert not PodSpec().captures_dns and PodSpec().intercepts
    assert not PodSpec(annotations={"proxy.istio.io/config": ": bad: yaml: ["}).captures_dns


MESH_CM = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "istio", "namespace": "istio-system"},
    "data": {"mesh": "outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n"},
}


def test_mesh_config_comes_from_the_istio_configmap() -> None:
    from lab.objects import mesh_config_of

    assert mesh_config_of([MESH_CM]) == {"outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}}
    other = {**MESH_CM, "metadata": {"name": "unrelated", "namespace": "x"}}
    assert mesh_config_of([other]) is None


def test_a_broken_mesh_configmap_is_an_objects_error() -> None:
    from lab.objects import ObjectsError, mesh_config_of

    broken = {**MESH_CM, "data": {"mesh": "outboundTrafficPolicy: [unclosed"}}
    with pytest.raises(ObjectsError, match="ConfigMap istio"):
        mesh_config_of([broken])


def test_lab_takes_its_mesh_from_the_objects_unless_given() -> None:
    from lab.runtime import Lab

    assert Lab([MESH_CM]).mesh == {"outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}}
    assert Lab([MESH_CM], mesh={"outboundTrafficPolicy": {"mode": "ALLOW_ANY"}}).mesh == {
        "outboundTrafficPolicy": {"mode": "ALLOW_ANY"}
    }
    assert Lab([]).mesh == {}
