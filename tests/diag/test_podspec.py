"""The probe Job and pod `meshprobe check` creates: the safety rules of docs/probe-pod.md, as data."""

from __future__ import annotations

import json

import yaml

from diag.pod.image import PROBE_GID, PROBE_UID
from diag.pod.spec import READINESS_GATE, RUN_LABEL, ProbeRun, Workload, ephemeral_patch, probe_job

PLAN = {"schema": "meshprobe.plan/v1", "targets": ["pkg.example.com"]}
TEMPLATE = {
    "metadata": {
        "labels": {"app": "api", "version": "v2", "pod-template-hash": "7d4b9",
                   "controller-revision-hash": "x", "istio.io/rev": "canary"},
        "annotations": {"proxy.istio.io/config": "proxyMetadata: {ISTIO_META_DNS_CAPTURE: 'true'}\n",
                        "traffic.sidecar.istio.io/excludeOutboundPorts": "9999",
                        "sidecar.istio.io/statsInclusionPrefixes": "cluster.outbound",
                        "prometheus.io/scrape": "true"},
    },
    "spec": {
        "serviceAccountName": "api", "dnsPolicy": "None", "dnsConfig": {"nameservers": ["10.0.0.10"]},
        "hostAliases": [{"ip": "10.1.1.1", "hostnames": ["legacy.internal"]}],
        "containers": [{"name": "app", "env": [{"name": "HTTPS_PROXY", "value": "http://proxy:3128"},
                                               {"name": "PIP_INDEX_URL", "value": "https://mirror.example/simple"}]}],
    },
}  # fmt: skip


def _run(**kw: object) -> ProbeRun:
    fields: dict[str, object] = {"native_sidecar": True, **kw}
    return ProbeRun("abcd1234", "shop", "example.com/meshprobe-probe:1", PLAN, **fields)  # type: ignore[arg-type]


def test_job_is_the_owner_and_back_stop() -> None:
    job = probe_job(_run(), ["pkg.example.com"])
    spec = job["spec"]
    assert job["metadata"]["name"] == "meshprobe-abcd1234"
    assert job["metadata"]["labels"][RUN_LABEL] == "abcd1234"
    assert spec["backoffLimit"] == 0 and spec["ttlSecondsAfterFinished"] > 0
    assert spec["activeDeadlineSeconds"] > spec["template"]["spec"]["activeDeadlineSeconds"]


def test_probe_pod_is_locked_down() -> None:
    pod = probe_job(_run(), ["pkg.example.com"])["spec"]["template"]
    spec = pod["spec"]
    (container,) = spec["containers"]
    ctx = container["securityContext"]
    assert ctx["runAsUser"] == PROBE_UID != 1337 and ctx["runAsGroup"] == PROBE_GID != 1337
    assert ctx["runAsNonRoot"] and ctx["readOnlyRootFilesystem"] and not ctx["allowPrivilegeEscalation"]
    assert ctx["capabilities"] == {"drop": ["ALL"]} and ctx["seccompProfile"]["type"] == "RuntimeDefault"
    assert spec["automountServiceAccountToken"] is False and spec["restartPolicy"] == "Never"
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert container["resources"]["limits"]["memory"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["PYTHONDONTWRITEBYTECODE"] == "1" and env["PYTHONUNBUFFERED"] == "1"
    assert json.loads(env["MESHPROBE_PLAN"]) == PLAN
    assert spec["readinessGates"] == [{"conditionType": READINESS_GATE}]


def test_injection_annotations() -> None:
    pod = probe_job(_run(), ["pkg.example.com"])["spec"]["template"]
    meta = pod["metadata"]
    assert meta["labels"]["sidecar.istio.io/inject"] == "true"
    assert meta["annotations"]["sidecar.istio.io/nativeSidecar"] == "true"
    config = json.loads(meta["annotations"]["proxy.istio.io/config"])
    assert config["holdApplicationUntilProxyStarts"] is True
    assert "cluster.BlackHoleCluster" in config["proxyStatsMatcher"]["inclusionPrefixes"]
    assert any("pkg\\.example\\.com" in r for r in config["proxyStatsMatcher"]["inclusionRegexps"])
    regular = probe_job(_run(native_sidecar=False), [])["spec"]["template"]["metadata"]["annotations"]
    assert regular["sidecar.istio.io/nativeSidecar"] == "false"


def test_like_copies_what_istio_reads_and_nothing_that_makes_it_an_endpoint_or_adoptable() -> None:
    like = Workload.from_template("deployment", "api", "shop", TEMPLATE)
    pod = probe_job(_run(like=like), [])["spec"]["template"]
    labels, annotations, spec = pod["metadata"]["labels"], pod["metadata"]["annotations"], pod["spec"]
    assert labels["app"] == "api" and labels["version"] == "v2" and labels["istio.io/rev"] == "canary"
    assert "pod-template-hash" not in labels and "controller-revision-hash" not in labels
    assert annotations["traffic.sidecar.istio.io/excludeOutboundPorts"] == "9999"
    assert annotations["sidecar.istio.io/statsInclusionPrefixes"] == "cluster.outbound"
    assert "prometheus.io/scrape" not in annotations
    merged = json.loads(annotations["proxy.istio.io/config"])
    assert merged["proxyMetadata"] == {"ISTIO_META_DNS_CAPTURE": "true"}
    assert merged["holdApplicationUntilProxyStarts"] is True
    assert spec["serviceAccountName"] == "api" and spec["dnsPolicy"] == "None"
    assert spec["dnsConfig"] == {"nameservers": ["10.0.0.10"]} and spec["hostAliases"][0]["ip"] == "10.1.1.1"
    assert spec["readinessGates"] == [{"conditionType": READINESS_GATE}]
    assert like.proxy_env == {"HTTPS_PROXY": "http://proxy:3128"}
    assert like.env["PIP_INDEX_URL"] == "https://mirror.example/simple"


def test_ambient_workload_gets_no_injection_label() -> None:
    ambient = Workload("pod", "w", "shop", labels={"istio.io/dataplane-mode": "ambient"})
    labels = probe_job(_run(like=ambient), [])["spec"]["template"]["metadata"]["labels"]
    assert "sidecar.istio.io/inject" not in labels
    labels = probe_job(_run(inject=False), [])["spec"]["template"]["metadata"]["labels"]
    assert "sidecar.istio.io/inject" not in labels


def test_ephemeral_container_is_a_strategic_merge_patch_of_one_container() -> None:
    patch = ephemeral_patch(_run(), "meshprobe-abcd1234")
    (container,) = patch["spec"]["ephemeralContainers"]
    assert container["name"] == "meshprobe-abcd1234"
    assert "resources" not in container and "volumeMounts" not in container  # not allowed there
    assert container["securityContext"]["runAsUser"] == PROBE_UID
    yaml.safe_dump(patch)  # plain data
