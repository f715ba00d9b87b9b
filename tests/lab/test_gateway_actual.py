"""``meshprobe check`` reads the egress gateway's own config (``Lab(api=True, egress_gateway=True)``):
with ``pods/portforward`` in ``istio-system`` the report's ``actual.gateway`` is the path the real
gateway Envoy's config_dump gives for the call (fetched through the lab API's port-forward to the
gateway pod's admin port); without it the hop stays predicted and a note says why; the check never
fails because of it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import require_lab
from tests.diag.test_report import SCHEMA, validate
from tests.lab.checkrun import codes, wait_clean
from tests.lab.testdata import egress_gateway as eg
from tests.lab.testdata.gateway_calls import replace_and_settle

pytestmark = pytest.mark.lab

NAMESPACE = {"apiVersion": "v1", "kind": "Namespace",
             "metadata": {"name": "shop", "labels": {"istio-injection": "enabled"}}}  # fmt: skip
TARGET = f"http://{eg.HOST}/"
RBAC = "rbac.authorization.k8s.io"
GATEWAY_POD = "istio-system/istio-egressgateway-lab"
NO_PERMISSION = "gateway hop inferred: no pods/portforward permission in istio-system"
Capture = pytest.CaptureFixture[str]


@pytest.fixture(scope="module")
def lab() -> Iterator[Any]:
    require_lab()
    from lab.runtime import Lab

    objects = [NAMESPACE, *eg.in_namespace(eg.plain_http(), "shop")]
    with Lab(objects, egress_gateway=True, internet=[eg.HOST], api=True, pods=[], drain_seconds=0.1) as lab:
        yield lab


def _kubeconfig(lab: Any, user: str, portforward: bool) -> str:
    """A user bound by meshprobe's own RBAC manifest, plus (optionally) the port-forward Role."""
    from diag.manifests import Subjects, rbac
    from diag.manifests.rbac import gateway_portforward

    store = lab.control_plane.store
    for obj in rbac(["shop"], Subjects(users=(user,))):
        meta = obj["metadata"]
        plural = obj["kind"].lower() + "s"
        if store.get(plural, meta.get("namespace", ""), meta["name"], group=RBAC) is None:
            store.create(obj)
        elif obj["kind"].endswith("Binding"):
            current = store.get(plural, meta.get("namespace", ""), meta["name"], group=RBAC)
            subjects = current.get("subjects") or []
            if not any(s.get("name") == user for s in subjects):
                store.update({**current, "subjects": [*subjects, *obj["subjects"]]})
    if portforward:  # the optional Role and binding manifests/rbac.yaml carries commented out
        for obj in gateway_portforward(Subjects(users=(user,))):
            store.create(obj)
    api = lab.control_plane.api
    api.add_user(user)
    return str(api.kubeconfig(user=user))


def _check(lab: Any, capsys: Capture, kubeconfig: str | None = None) -> tuple[int, dict[str, Any]]:
    from diag.cli import main

    config = kubeconfig or str(lab.kubeconfig)
    code = main(["check", "--kubeconfig", config, "-o", "json", "-n", "shop", TARGET])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    report = json.loads(captured.out)
    assert validate(report, SCHEMA) == []
    return code, report


def test_admin_gets_the_gateways_actual_hop(lab: Any, capsys: Capture) -> None:
    replace_and_settle(lab, [NAMESPACE, *eg.in_namespace(eg.plain_http(), "shop")])
    code, report = _check(lab, capsys)
    target = report["targets"][0]
    assert code == 0, json.dumps(target)[:2000]
    assert target["via"]["kind"] == "gateway"
    hop = target["actual"]["gateway"]
    # Istio names a gateway's HTTP listener on target port 8080 0.0.0.0_8080 and its route config
    # http.8080 (pilot/pkg/networking/core/gateway.go); the gateway's upstream is the host's cluster.
    assert hop["gateway"] == "istio-egressgateway.istio-system"
    assert hop["pod"] == GATEWAY_POD
    assert hop["outcome"] == "cluster"
    assert hop["listener"] == "0.0.0.0_8080"
    assert hop["route"] == "http.8080"
    assert hop["cluster"] == f"outbound|80||{eg.HOST}"
    predicted = target["predicted"]["gateway"]["path"]
    assert (hop["listener"], hop["cluster"]) == (predicted["listener"], predicted["cluster"])
    assert not [n for n in report.get("notes", []) if n.startswith("gateway hop")], report.get("notes")
    assert wait_clean(lab) == []


def test_the_gateways_own_config_shows_a_host_it_does_not_route(lab: Any, capsys: Capture) -> None:
    replace_and_settle(lab, [NAMESPACE, *eg.in_namespace(eg.host_not_on_gateway(), "shop")])
    try:
        code, report = _check(lab, capsys)
    finally:
        replace_and_settle(lab, [NAMESPACE, *eg.in_namespace(eg.plain_http(), "shop")])
    target = report["targets"][0]
    assert "MP0112" in codes(report)[TARGET], json.dumps(target["diagnoses"])[:2000]
    hop = target["actual"]["gateway"]
    assert hop["listener"] == "0.0.0.0_8080", hop
    assert hop["outcome"] in ("no_vhost", "no_route"), hop  # the gateway answers 404 itself
    assert hop["cluster"] is None
    assert code == 1
    assert wait_clean(lab) == []


HTTPS = f"https://{eg.HOST}/"
CLUSTER_443 = f"outbound|443||{eg.HOST}"
SNI_CHAIN = f"{{server_names={eg.HOST}}}"


@pytest.mark.parametrize(
    ("setup", "target", "expected"),
    [
        # the sidecar's mTLS (DR sni = the host) terminated by the ISTIO_MUTUAL server on 8080; the
        # gateway originates TLS to 443
        ("tls_origination", TARGET, ("cluster", "0.0.0.0_8080", SNI_CHAIN, CLUSTER_443)),
        # the app's TLS picked by its SNI on the TLS server's 8443 chain, plain or inside mTLS
        ("https_passthrough", HTTPS, ("cluster", "0.0.0.0_8443", SNI_CHAIN, CLUSTER_443)),
        ("mtls_passthrough", HTTPS, ("cluster", "0.0.0.0_8443", SNI_CHAIN, CLUSTER_443)),
        # plaintext into an mTLS-only listener: no chain matches, Envoy closes (the 503 the app sees)
        ("mtls_server_plain_client", TARGET, ("no_filter_chain", "0.0.0.0_8080", None, None)),
        # mTLS bytes into a plaintext HTTP server: not HTTP
        ("plain_server_mtls_client", TARGET, ("protocol_error", "0.0.0.0_8080", "{}", None)),
    ],
)
def test_the_gateways_actual_hop_per_setup(
    lab: Any, capsys: Capture, setup: str, target: str, expected: tuple[str, str, str | None, str | None]
) -> None:
    from diag.cli import main

    replace_and_settle(lab, [NAMESPACE, *eg.in_namespace(getattr(eg, setup)(), "shop")])
    try:
        code = main(["check", "--kubeconfig", str(lab.kubeconfig), "-o", "json", "-n", "shop", target])
        report = json.loads(capsys.readouterr().out)
    finally:
        replace_and_settle(lab, [NAMESPACE, *eg.in_namespace(eg.plain_http(), "shop")])
    assert validate(report, SCHEMA) == []
    hop = report["targets"][0]["actual"]["gateway"]
    assert (hop["outcome"], hop["listener"], hop["filter_chain"], hop["cluster"]) == expected, hop
    assert code == (0 if expected[0] == "cluster" else 1)
    assert wait_clean(lab) == []


def test_without_portforward_the_hop_is_inferred_and_said_so(lab: Any, capsys: Capture) -> None:
    replace_and_settle(lab, [NAMESPACE, *eg.in_namespace(eg.plain_http(), "shop")])
    code, report = _check(lab, capsys, _kubeconfig(lab, "carol", portforward=False))
    target = report["targets"][0]
    assert code == 0, json.dumps(target)[:2000]
    assert target["via"]["kind"] == "gateway"
    assert target["predicted"]["gateway"]["path"]["listener"] == "0.0.0.0_8080"
    assert "gateway" not in (target["actual"] or {})
    assert NO_PERMISSION in report["notes"]
    assert wait_clean(lab) == []


def test_the_optional_role_is_enough(lab: Any, capsys: Capture) -> None:
    replace_and_settle(lab, [NAMESPACE, *eg.in_namespace(eg.plain_http(), "shop")])
    code, report = _check(lab, capsys, _kubeconfig(lab, "dave", portforward=True))
    target = report["targets"][0]
    assert code == 0, json.dumps(target)[:2000]
    assert "gateway" in target["actual"], report["notes"]
    assert target["actual"]["gateway"]["pod"] == GATEWAY_POD
    assert target["actual"]["gateway"]["listener"] == "0.0.0.0_8080"
    assert NO_PERMISSION not in report["notes"]
    assert wait_clean(lab) == []


def test_a_failing_fetch_never_fails_the_check(lab: Any, capsys: Capture) -> None:
    api = lab.control_plane.api
    dial = api.port_dialer

    def refuse(namespace: str, pod: str, port: int, timeout: float) -> Any:
        raise OSError(f"failed to connect to localhost:{port}: connection refused")

    api.set_port_dialer(refuse)
    try:
        code, report = _check(lab, capsys)
    finally:
        api.set_port_dialer(dial)
    target = report["targets"][0]
    assert code == 0, json.dumps(target)[:2000]
    assert "gateway" not in (target["actual"] or {})
    notes = [n for n in report["notes"] if n.startswith("gateway hop inferred: could not read")]
    assert notes and "error forwarding port 15000" in notes[0], report["notes"]
    assert wait_clean(lab) == []


def test_kubectl_port_forward_reaches_the_gateways_admin(lab: Any) -> None:
    """What a user would run by hand: kubectl port-forward to the gateway pod, then its admin."""
    import re
    import subprocess
    import urllib.request

    proc = subprocess.Popen(
        ["kubectl", "--kubeconfig", str(lab.kubeconfig), "-n", "istio-system", "port-forward",
         "--address", "127.0.0.1", "pod/istio-egressgateway-lab", ":15000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = re.match(r"Forwarding from 127\.0\.0\.1:(\d+) -> 15000", line)
        assert found is not None, line
        url = f"http://127.0.0.1:{found.group(1)}"
        with urllib.request.urlopen(f"{url}/config_dump", timeout=10) as reply:
            dump = json.loads(reply.read())
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
    bootstrap = next(c for c in dump["configs"] if c["@type"].endswith("BootstrapConfigDump"))
    assert bootstrap["bootstrap"]["node"]["id"].startswith("router~")  # the gateway's Envoy, not a sidecar
    listeners = [
        entry.get("active_state", {}).get("listener", {}).get("name")
        for config in dump["configs"]
        if config["@type"].endswith("ListenersConfigDump")
        for entry in config.get("dynamic_listeners", [])
    ]
    assert "0.0.0.0_8080" in listeners, listeners
