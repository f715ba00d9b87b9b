"""`meshprobe manifests watch`: the objects match the Kubernetes API's types field by field, the
RBAC grants exactly what the watch calls, the Deployment is meshed and locked down, and every
alert is keyed on a diagnosis code or on the watch itself (docs/watch.md)."""

from __future__ import annotations

import re

import pytest

from diag import cli
from diag.manifests.watch import ALERTS, TARGETS_CONFIGMAP, watch_manifests
from diag.model import kubeyaml
from diag.watch.metrics import known_codes
from tests.meta.test_manifests import schema_errors

CORE = {"ServiceAccount": "V1ServiceAccount", "ClusterRole": "V1ClusterRole", "Role": "V1Role",
        "ClusterRoleBinding": "V1ClusterRoleBinding", "RoleBinding": "V1RoleBinding",
        "ConfigMap": "V1ConfigMap", "Deployment": "V1Deployment", "Service": "V1Service"}  # fmt: skip


def test_the_command_prints_the_objects(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["manifests", "watch", "-n", "shop", "--targets", "api.example.com,files.example.com"]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    docs = [doc for doc, _ in kubeyaml.documents(printed)]
    assert docs == watch_manifests("shop", targets=["api.example.com", "files.example.com"])
    assert "# an Event per verdict change" in printed


def test_core_objects_match_the_api_types() -> None:
    docs = watch_manifests()
    kinds = [d["kind"] for d in docs]
    assert {"Deployment", "Service", "ServiceMonitor", "PrometheusRule"} <= set(kinds)
    for doc in docs:
        if doc["kind"] in CORE:
            assert schema_errors(doc, CORE[doc["kind"]], doc["kind"]) == []


def test_rbac_is_least_privilege() -> None:
    docs = watch_manifests("shop")
    rules = [r for d in docs if d["kind"] in ("Role", "ClusterRole") for r in d["rules"]]
    verbs = {v for r in rules for v in r["verbs"]}
    assert verbs <= {"get", "list", "watch", "create"}
    assert [r for r in rules if "create" in r["verbs"]] == [
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]}
    ]
    configmaps = [r for r in rules if "configmaps" in r["resources"]]
    assert sorted(r["resourceNames"][0] for r in configmaps) == sorted(["istio", TARGETS_CONFIGMAP])
    assert not [r for r in rules if {"secrets", "pods", "jobs"} & set(r["resources"]) or "*" in str(r)]


def test_the_deployment_is_meshed_and_locked_down() -> None:
    deployment = next(d for d in watch_manifests() if d["kind"] == "Deployment")
    template = deployment["spec"]["template"]
    assert template["metadata"]["labels"]["sidecar.istio.io/inject"] == "true"
    (container,) = template["spec"]["containers"]
    assert container["args"][:3] == ["watch", "--targets-configmap", TARGETS_CONFIGMAP]
    security = container["securityContext"]
    assert security["runAsNonRoot"] and security["readOnlyRootFilesystem"]
    assert security["capabilities"] == {"drop": ["ALL"]} and not security["allowPrivilegeEscalation"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {e["name"] for e in container["env"]} >= {"POD_NAME", "POD_NAMESPACE"}


def test_alerts_are_keyed_on_codes_that_exist() -> None:
    rule = next(d for d in watch_manifests() if d["kind"] == "PrometheusRule")
    alerts = rule["spec"]["groups"][0]["rules"]
    assert [a["alert"] for a in alerts] == [a[0] for a in ALERTS]
    codes = known_codes()
    for alert in alerts:
        for pattern in re.findall(r'code=~"([^"]+)"', alert["expr"]):
            assert any(re.fullmatch(pattern, c) for c in codes), (alert["alert"], pattern)
        if "code" in alert["expr"]:
            assert "$labels.code" in alert["annotations"]["summary"]
            assert alert["annotations"]["runbook_url"].endswith("{{ $labels.code }}.md")


def test_the_shipped_file_is_what_the_command_prints(capsys: pytest.CaptureFixture[str]) -> None:
    """manifests/watch.yaml is ``meshprobe manifests watch`` with its defaults, byte for byte."""
    from pathlib import Path

    from diag.manifests import RENDERERS

    assert cli.main(["manifests", "watch"]) == 0
    printed = capsys.readouterr().out
    shipped = (Path(__file__).resolve().parents[2] / "manifests" / "watch.yaml").read_text()
    assert shipped == printed == RENDERERS["watch"](), (
        "re-render: meshprobe manifests watch > manifests/watch.yaml"
    )
    kinds = [doc["kind"] for doc, _ in kubeyaml.documents(shipped)]
    assert kinds.count("Deployment") == 1 and "PrometheusRule" in kinds and "ServiceMonitor" in kinds
