"""Every file under manifests/ loads and is checked.

- ServiceEntry samples (``manifests/samples/``) document their expected results with lines
  ``# expect: TARGET VERDICT [CODE...]``; the test runs ``meshprobe explain TARGET... --config FILE
  -n NS --mode REGISTRY_ONLY -o json`` (the namespace is the first Namespace object in the file,
  else ``default``) and compares.
- ``rbac.yaml``, ``probe-pod.yaml`` and ``cronjob.yaml`` are exactly what ``meshprobe manifests``
  prints with its defaults (so they never drift from the code), every object matches the
  Kubernetes API's types field by field (the ``kubernetes`` client's models), and each keeps its
  promises: least privilege, the probe pod's safety rules, a CronJob that cleanup never touches
  and whose log ends with the exit status.
- ``kubectl apply --dry-run=server`` accepts them against the lab's API server.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from diag import cli
from diag import manifests as rendered
from diag.model import kubeyaml
from diag.model.loader import load_paths

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = sorted((ROOT / "manifests").rglob("*.yaml"))
SAMPLES = sorted((ROOT / "manifests" / "samples").rglob("*.yaml"))
EXPECT = re.compile(r"^#\s*expect:\s*(\S+)\s+(allowed|blocked|passthrough)((?:\s+MP\d{4})*)\s*$", re.M)
KUBECTL = shutil.which("kubectl")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def objects(name: str) -> list[dict[str, Any]]:
    return [doc for doc, _ in kubeyaml.documents((ROOT / "manifests" / name).read_text())]


def by_kind(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name))


def test_there_are_manifests() -> None:
    names = {p.relative_to(ROOT / "manifests").as_posix() for p in MANIFESTS}
    assert {"rbac.yaml", "probe-pod.yaml", "cronjob.yaml"} <= names
    assert len(SAMPLES) >= 3


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_manifest_loads_cleanly(path: Path) -> None:
    result = load_paths([path])
    assert list(result.problems) == []
    assert result.documents
    if path in SAMPLES:
        assert result.objects


def _namespace(path: Path) -> str:
    match = re.search(r"kind:\s*Namespace\s*\nmetadata:\s*\n\s+name:\s*(\S+)", path.read_text())
    return match.group(1) if match else "default"


@pytest.mark.parametrize("path", [p for p in MANIFESTS if EXPECT.search(p.read_text())], ids=lambda p: p.name)
def test_sample_gives_its_documented_result(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    expected = {m[0]: (m[1], sorted(m[2].split())) for m in EXPECT.findall(path.read_text())}
    argv = ["explain", *expected, "--config", str(path), "-n", _namespace(path)]
    code = cli.main([*argv, "--mode", "REGISTRY_ONLY", "-o", "json"])
    report = json.loads(capsys.readouterr().out)
    got = {}
    for target in report["targets"]:
        codes = {d["code"] for d in target["diagnoses"]} & set(expected[target["target"]][1])
        got[target["target"]] = (target["predicted"]["verdict"], sorted(codes))
    assert got == expected
    assert code == (1 if any(v == "blocked" for v, _ in expected.values()) else 0)


def test_every_sample_documents_results() -> None:
    assert [p.name for p in SAMPLES if not EXPECT.search(p.read_text())] == []


# ---- the files are the code's output -----------------------------------------------------------


@pytest.mark.parametrize("kind", rendered.RENDERERS)
def test_file_is_what_meshprobe_manifests_prints(kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["manifests", kind]) == 0
    printed = capsys.readouterr().out
    assert (ROOT / "manifests" / f"{kind}.yaml").read_text() == printed, (
        f"manifests/{kind}.yaml is stale: `meshprobe manifests {kind} > manifests/{kind}.yaml`"
    )
    assert [doc for doc, _ in kubeyaml.documents(printed)] == _built(kind)


def _built(kind: str) -> list[dict[str, Any]]:
    if kind == "rbac":
        return rendered.rbac()
    if kind == "probe-pod":
        return [rendered.probe_pod()]
    if kind == "watch":
        from diag.manifests.watch import watch_manifests

        return watch_manifests()
    return rendered.cronjob()


# ---- field by field against the Kubernetes API's types ------------------------------------------


def schema_errors(data: Any, type_name: str, where: str = "") -> list[str]:
    """Unknown fields and wrong types, per the ``kubernetes`` client's models (its OpenAPI types)."""
    import kubernetes.client as models

    generic = re.fullmatch(r"(?:list\[|List\[)(.+)\]", type_name)
    if generic:
        if not isinstance(data, list):
            return [f"{where}: expected a list"]
        return [e for i, item in enumerate(data) for e in schema_errors(item, generic[1], f"{where}[{i}]")]
    mapping = re.fullmatch(r"(?:dict\(str, (.+)\)|Dict\[str, (.+)\])", type_name)
    if mapping:
        if not isinstance(data, dict):
            return [f"{where}: expected a map"]
        value_type = mapping[1] or mapping[2]
        return [e for k, v in data.items() for e in schema_errors(v, value_type, f"{where}.{k}")]
    simple = {"str": str, "int": int, "bool": bool, "float": (int, float), "object": object, "datetime": str}
    if type_name in simple:
        ok = isinstance(data, simple[type_name]) and not (type_name == "int" and isinstance(data, bool))
        return [] if ok else [f"{where}: expected {type_name}, got {type(data).__name__}"]
    model = getattr(models, type_name)
    if not isinstance(data, dict):
        return [f"{where}: expected an object ({type_name})"]
    fields = {json_name: attr for attr, json_name in model.attribute_map.items()}
    errors = []
    for key, value in data.items():
        if key not in fields:
            errors.append(f"{where}.{key}: unknown field of {type_name}")
        elif value is not None:
            errors += schema_errors(value, model.openapi_types[fields[key]], f"{where}.{key}")
    return errors


def _kubernetes_objects() -> Iterator[tuple[str, dict[str, Any]]]:
    for name in ("rbac.yaml", "probe-pod.yaml", "cronjob.yaml"):
        for doc in objects(name):
            yield f"{name}:{doc['kind']}/{doc['metadata']['name']}", doc


@pytest.mark.parametrize(
    ("label", "doc"), list(_kubernetes_objects()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_objects_match_the_kubernetes_types(label: str, doc: dict[str, Any]) -> None:
    version = doc["apiVersion"].split("/")[-1].capitalize()
    assert schema_errors(doc, f"{version}{doc['kind']}") == []


def test_the_type_check_can_fail() -> None:
    pod = json.loads(json.dumps(rendered.probe_pod()))
    pod["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesytem"] = True
    pod["spec"]["activeDeadlineSeconds"] = "300"
    assert schema_errors(pod, "V1Pod") == [
        ".spec.activeDeadlineSeconds: expected int, got str",
        ".spec.containers[0].securityContext.readOnlyRootFilesytem: unknown field of V1SecurityContext",
    ]


# ---- rbac.yaml -----------------------------------------------------------------------------------


def _rules(docs: list[dict[str, Any]]) -> dict[str, set[tuple[str, str, str]]]:
    out: dict[str, set[tuple[str, str, str]]] = {}
    for doc in docs:
        if doc["kind"] in ("Role", "ClusterRole"):
            out[doc["metadata"]["name"]] = {
                (g, r, v)
                for rule in doc["rules"]
                for g in rule["apiGroups"]
                for r in rule["resources"]
                for v in rule["verbs"]
            }
    return out


def test_rbac_grants_exactly_what_meshprobe_calls() -> None:
    from diag.live.meshread import CORE_KINDS, ISTIO_KINDS

    rules = _rules(objects("rbac.yaml"))
    reader = {(g, r, "list") for g, r, _ in ISTIO_KINDS} | {(g, r, "list") for g, _, r, _ in CORE_KINDS}
    reader |= {("", "namespaces", "list"), ("authorization.k8s.io", "selfsubjectaccessreviews", "create")}
    assert rules["meshprobe-mesh-reader"] == reader
    assert rules["meshprobe-istio-config"] == {("", "configmaps", "get"), ("apps", "deployments", "list")}
    assert rules["meshprobe-prober"] == {
        ("batch", "jobs", "create"),
        ("batch", "jobs", "list"),
        ("batch", "jobs", "delete"),
        ("", "pods", "get"),
        ("", "pods", "list"),
        ("", "pods", "watch"),
        ("", "pods", "delete"),
        ("", "pods/log", "get"),
        ("", "pods/ephemeralcontainers", "patch"),
        ("", "events", "list"),
        ("apps", "deployments", "get"),
        ("apps", "statefulsets", "get"),
        ("apps", "daemonsets", "get"),
    }


def test_rbac_is_least_privilege() -> None:
    docs = objects("rbac.yaml")
    text = (ROOT / "manifests" / "rbac.yaml").read_text()
    assert "'*'" not in text and '"*"' not in text and "- '*'" not in text
    flat = {x for rules in _rules(docs).values() for x in rules}
    assert not {r for _, r, _ in flat} & {"secrets", "serviceaccounts/token", "pods/exec", "pods/attach"}
    writes = {v for _, _, v in flat} - {"get", "list", "watch"}
    assert writes == {"create", "delete", "patch"}
    assert {v for g, r, v in _rules(docs)["meshprobe-mesh-reader"]} <= {"list", "create"}
    config = by_kind(docs, "Role", "meshprobe-istio-config")
    assert config["metadata"]["namespace"] == "istio-system"
    assert next(r for r in config["rules"] if r["resources"] == ["configmaps"])["resourceNames"] == ["istio"]
    # The probe rights are bound per namespace, never cluster-wide by default.
    assert [d["kind"] for d in docs if d["metadata"]["name"] == "meshprobe-prober"] == [
        "ClusterRole",
        "RoleBinding",
    ]


def test_rbac_bindings_name_their_roles_and_the_cronjobs_service_account() -> None:
    docs = objects("rbac.yaml")
    roles = {(d["kind"], d["metadata"]["name"]) for d in docs if d["kind"] in ("Role", "ClusterRole")}
    account = by_kind(objects("cronjob.yaml"), "ServiceAccount")
    for binding in (d for d in docs if d["kind"].endswith("Binding")):
        assert (binding["roleRef"]["kind"], binding["roleRef"]["name"]) in roles
        assert {
            "kind": "ServiceAccount",
            "name": account["metadata"]["name"],
            "namespace": account["metadata"]["namespace"],
        } in binding["subjects"]


def test_rbac_rendering_with_parameters(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["manifests", "rbac", "-n", "shop", "-n", "pay", "--user", "alice", "--group", "sre"]
    assert cli.main([*argv, "--service-account", "ci/runner", "--revision", "canary"]) == 0
    docs = [d for d, _ in kubeyaml.documents(capsys.readouterr().out)]
    prober = [d for d in docs if d["kind"] == "RoleBinding" and d["metadata"]["name"] == "meshprobe-prober"]
    assert [d["metadata"]["namespace"] for d in prober] == ["shop", "pay"]
    assert prober[0]["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"},
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "sre"},
        {"kind": "ServiceAccount", "name": "runner", "namespace": "ci"},
    ]
    config = by_kind(docs, "Role", "meshprobe-istio-config")
    assert config["rules"][0]["resourceNames"] == ["istio", "istio-canary"]
    assert cli.main(["manifests", "rbac", "--all-namespaces", "--group", "sre"]) == 0
    docs = [d for d, _ in kubeyaml.documents(capsys.readouterr().out)]
    assert by_kind(docs, "ClusterRoleBinding", "meshprobe-prober")["subjects"][0]["name"] == "sre"
    assert not [d for d in docs if d["kind"] == "RoleBinding" and d["metadata"]["name"] == "meshprobe-prober"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["rbac", "--service-account", "runner"], "expected NAMESPACE/NAME"),
        (["rbac", "-n", "Shop"], "expected a DNS label"),
        (["probe-pod", "--targets", "http://"], "http://"),
        (["probe-pod", "--sidecar", "sometimes"], "--sidecar must be native or regular"),
        (["cronjob", "--schedule", "every day"], "--schedule 'every day': expected five cron fields"),
        (["cronjob", "--service-account", "Bad_Name"], "service account 'Bad_Name'"),
    ],
)
def test_bad_parameters_are_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["manifests", *argv]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""


def test_strings_kubectl_would_misread_are_quoted() -> None:
    """go-yaml (kubectl) reads a plain ``y`` as true: a namespace named ``y`` must be quoted."""
    import yaml

    text = rendered.render_rbac(["y"])
    docs = [d for d, _ in kubeyaml.documents(text)]
    assert by_kind(docs, "RoleBinding", "meshprobe-prober")["metadata"]["namespace"] == "y"
    plain = yaml.safe_dump(rendered.rbac(["y"])[-1])  # what a plain dump would write
    assert kubeyaml.load(plain)["metadata"]["namespace"] is True


# ---- probe-pod.yaml ------------------------------------------------------------------------------


def test_probe_pod_is_the_pod_template_check_creates() -> None:
    from diag.pod.spec import ProbeRun, pod_template
    from probes.plan import load_plan

    pod = by_kind(objects("probe-pod.yaml"), "Pod")
    plan = json.loads(
        next(e["value"] for e in pod["spec"]["containers"][0]["env"] if e["name"] == "MESHPROBE_PLAN")
    )
    template = pod_template(
        ProbeRun("example", "meshprobe", pod["spec"]["containers"][0]["image"], plan, True), ["example.com"]
    )
    assert pod["spec"] == template["spec"]
    assert {k: v for k, v in pod["metadata"].items() if k not in ("name", "namespace")} == template[
        "metadata"
    ]
    parsed = load_plan(json.dumps(plan))
    assert [t.raw for t in parsed.targets] == ["example.com"]
    assert parsed.sidecar.native is True and parsed.sidecar.quit is False


def test_probe_pod_keeps_the_safety_rules() -> None:
    from diag.pod.image import PROBE_UID

    pod = by_kind(objects("probe-pod.yaml"), "Pod")
    spec, container = pod["spec"], pod["spec"]["containers"][0]
    context = container["securityContext"]
    assert context["runAsUser"] == PROBE_UID != 1337 and context["runAsGroup"] != 1337
    assert (
        context["runAsNonRoot"]
        and context["readOnlyRootFilesystem"]
        and not context["allowPrivilegeEscalation"]
    )
    assert (
        context["capabilities"] == {"drop": ["ALL"]} and context["seccompProfile"]["type"] == "RuntimeDefault"
    )
    assert spec["automountServiceAccountToken"] is False and spec["restartPolicy"] == "Never"
    assert spec["activeDeadlineSeconds"] > 0 and container["resources"]["limits"]
    assert pod["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "meshprobe"
    assert pod["metadata"]["labels"]["sidecar.istio.io/inject"] == "true"
    assert pod["metadata"]["annotations"]["sidecar.istio.io/nativeSidecar"] == "true"
    proxy = json.loads(pod["metadata"]["annotations"]["proxy.istio.io/config"])
    assert proxy["holdApplicationUntilProxyStarts"] is True
    assert "cluster.BlackHoleCluster" in proxy["proxyStatsMatcher"]["inclusionPrefixes"]


def test_probe_pod_rendering_with_parameters(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["manifests", "probe-pod", "-n", "shop", "--targets", "api.example.com,tcp://db.example.com:5432"]
    assert cli.main([*argv, "--sidecar", "regular", "--image", "mirror.example.com/probe:1"]) == 0
    pod = kubeyaml.load(capsys.readouterr().out)
    assert pod["metadata"]["namespace"] == "shop"
    assert pod["spec"]["containers"][0]["image"] == "mirror.example.com/probe:1"
    plan = json.loads(pod["spec"]["containers"][0]["env"][0]["value"])
    assert [t["target"] for t in plan["targets"]] == ["api.example.com", "tcp://db.example.com:5432"]
    assert plan["sidecar"] == {"mode": "auto", "quit": True, "native": False}
    assert pod["metadata"]["annotations"]["sidecar.istio.io/nativeSidecar"] == "false"
    proxy = json.loads(pod["metadata"]["annotations"]["proxy.istio.io/config"])
    assert "|db\\.example\\.com)" in proxy["proxyStatsMatcher"]["inclusionRegexps"][0]


# ---- cronjob.yaml --------------------------------------------------------------------------------


def test_cronjob_runs_check_and_is_never_cleaned_up() -> None:
    import typer

    docs = objects("cronjob.yaml")
    cron = by_kind(docs, "CronJob")
    job = cron["spec"]["jobTemplate"]
    pod = job["spec"]["template"]
    container = pod["spec"]["containers"][0]
    # cleanup selects app.kubernetes.io/managed-by=meshprobe: the CronJob, its Jobs and pods never carry it.
    for meta in (cron["metadata"], job["metadata"], pod["metadata"]):
        assert "app.kubernetes.io/managed-by" not in (meta.get("labels") or {})
    assert pod["metadata"]["annotations"]["sidecar.istio.io/nativeSidecar"] == "true"
    assert pod["spec"]["serviceAccountName"] == by_kind(docs, "ServiceAccount")["metadata"]["name"]
    assert pod["spec"]["restartPolicy"] == "Never" and job["spec"]["backoffLimit"] == 0
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert container["command"][:2] == ["/bin/sh", "-c"] and container["command"][3] == "meshprobe"
    args = container["args"]
    assert args[0] == "check" and args[-2:] == ["-o", "json"]
    command = typer.main.get_command(cli.app)
    check = command.get_command(command.make_context("meshprobe", ["check"]), "check")  # type: ignore[attr-defined]
    parsed = check.make_context("meshprobe check", list(args[1:])).params
    assert parsed["targets"] == ["example.com"] and parsed["namespace"] == [cron["metadata"]["namespace"]]
    assert parsed["output"] == "json" and parsed["image"].endswith("meshprobe-probe:0.1.0")


def test_cronjob_rendering_with_parameters(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["manifests", "cronjob", "-n", "shop", "--schedule", "@hourly", "--targets", "a.example.com"]
    assert cli.main([*argv, "--targets", "b.example.com", "--cli-image", "mirror.example.com/cli:1"]) == 0
    account, cron = [d for d, _ in kubeyaml.documents(capsys.readouterr().out)]
    container = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert cron["spec"]["schedule"] == "@hourly" and account["metadata"]["namespace"] == "shop"
    assert container["image"] == "mirror.example.com/cli:1"
    assert container["args"][:5] == ["check", "a.example.com", "b.example.com", "-n", "shop"]


@pytest.fixture
def fake_meshprobe(tmp_path: Path) -> Path:
    """A ``meshprobe`` on PATH that prints a JSON line and exits 3, or, with SLOW set, waits for
    SIGTERM, "cleans up" and exits 143 — to run the CronJob's container command as written."""
    script = tmp_path / "bin" / "meshprobe"
    script.parent.mkdir()
    script.write_text(
        "#!/bin/sh\n"
        'if [ -n "$SLOW" ]; then\n'
        "  trap 'echo cleaned-up-probe-job; exit 143' TERM\n"
        "  echo started; while :; do sleep 0.05; done\n"
        "fi\n"
        'echo "{\\"args\\": \\"$*\\"}"\n'
        "exit 3\n"
    )
    script.chmod(0o755)
    return script.parent


def _container_argv() -> list[str]:
    container = by_kind(objects("cronjob.yaml"), "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    c = container["containers"][0]
    return [*c["command"], *c["args"]]


def test_cronjob_log_ends_with_the_exit_status(fake_meshprobe: Path) -> None:
    env = {**os.environ, "PATH": f"{fake_meshprobe}:{os.environ['PATH']}"}
    done = subprocess.run(_container_argv(), env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 3
    assert json.loads(done.stdout)["args"].startswith("check example.com -n meshprobe --image ")
    assert done.stderr.strip().splitlines()[-1] == "meshprobe exit status: 3"


def test_cronjob_forwards_sigterm_so_meshprobe_can_clean_up(fake_meshprobe: Path) -> None:
    env = {**os.environ, "PATH": f"{fake_meshprobe}:{os.environ['PATH']}", "SLOW": "1"}
    proc = subprocess.Popen(
        _container_argv(), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=15)
    assert "cleaned-up-probe-job" in out
    assert err.strip().splitlines()[-1] == "meshprobe exit status: 143" and proc.returncode == 143


# ---- kubectl apply --dry-run=server against the lab's API server ---------------------------------


@pytest.fixture(scope="module")
def kubectl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if KUBECTL is None:
        if IN_CI:
            pytest.fail("CI=true but kubectl is not installed", pytrace=False)
        pytest.skip("kubectl is not installed")
    from lab.apiserver import ApiServer
    from lab.certs import LabCA

    workdir = tmp_path_factory.mktemp("manifests-api")
    with ApiServer(workdir, LabCA(workdir)) as api:
        for ns in ["meshprobe", "istio-system", *(_namespace(p) for p in SAMPLES)]:
            if api.store.get("namespaces", None, ns) is None:
                api.store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        base = [str(KUBECTL), f"--kubeconfig={api.kubeconfig()}", f"--cache-dir={workdir / 'cache'}"]

        def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*base, "--request-timeout=20s", *args],
                capture_output=True,
                text=True,
                timeout=60,
                input=stdin,
            )

        run.api = api  # type: ignore[attr-defined]
        yield run


# watch.yaml carries Prometheus Operator kinds the lab does not serve; tests/lab/test_watch_lab.py
# applies the rest of it with kubectl and runs it.
@pytest.mark.parametrize("path", [p for p in MANIFESTS if p.name not in ("cronjob.yaml", "watch.yaml")],
                         ids=lambda p: p.name)  # fmt: skip
def test_kubectl_server_dry_run_accepts(kubectl: Any, path: Path) -> None:
    done = kubectl("apply", "--dry-run=server", "-f", str(path))
    assert done.returncode == 0, done.stderr
    kinds = [d["kind"] for d in (doc for doc, _ in kubeyaml.documents(path.read_text()))]
    assert len([line for line in done.stdout.splitlines() if "(server dry run)" in line]) == len(kinds)
    assert kubectl.api.store.list("pods", "meshprobe") == []  # a dry run creates nothing


def test_kubectl_server_dry_run_accepts_the_cronjobs_objects(kubectl: Any) -> None:
    """The lab serves no CronJobs: its ServiceAccount goes as written, and its Job template as the
    Job the CronJob controller would create from it."""
    import yaml

    account, cron = objects("cronjob.yaml")
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "meshprobe-smoke-1",
            "namespace": cron["metadata"]["namespace"],
            **cron["spec"]["jobTemplate"]["metadata"],
        },
        "spec": cron["spec"]["jobTemplate"]["spec"],
    }
    done = kubectl("apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump_all([account, job]))
    assert done.returncode == 0, done.stderr
    assert "serviceaccount/meshprobe created (server dry run)" in done.stdout
    assert "job.batch/meshprobe-smoke-1 created (server dry run)" in done.stdout


def test_kubectl_server_dry_run_can_fail(kubectl: Any) -> None:
    bad = (
        (ROOT / "manifests" / "probe-pod.yaml")
        .read_text()
        .replace("namespace: meshprobe", "namespace: nosuch")
    )
    done = kubectl("apply", "--dry-run=server", "-f", "-", stdin=bad)
    assert done.returncode != 0 and "not found" in done.stderr


def test_docs_rbac_describes_every_rule() -> None:
    """docs/rbac.md has one table row per rule, with the rule's group, resources and verbs."""
    from diag.manifests.rbac import (
        gateway_portforward_rules,
        istio_config_rules,
        mesh_reader_rules,
        prober_rules,
    )

    doc = (ROOT / "docs" / "rbac.md").read_text()
    rows = re.findall(r"^\| `[^`]*` \| `.*$", doc, re.M)
    rules = [*mesh_reader_rules(), *istio_config_rules(), *prober_rules(), *gateway_portforward_rules()]
    assert len(rows) == len(rules)
    for rule in rules:
        resources = ", ".join(f"`{r}`" for r in rule.resources)
        if rule.names:
            resources += f" (`resourceNames: [{', '.join(rule.names)}]`)"
        verbs = ", ".join(f"`{v}`" for v in rule.verbs)
        row = f"| `{rule.group or chr(34) * 2}` | {resources} | {verbs} | "
        assert any(r.startswith(row) for r in rows), f"docs/rbac.md has no row {row}"
