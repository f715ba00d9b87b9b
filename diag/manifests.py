"""The manifests meshprobe ships under ``manifests/`` and prints with ``meshprobe manifests``,
rendered from code so that they never drift from what meshprobe does (``docs/rbac.md``).

- ``rbac``: least privilege for ``check``, ``explain``/``lint`` reading a live cluster, and
  ``cleanup``. The cluster-wide reads come from the kinds ``diag.meshread`` lists; the probe
  namespace's rights from what ``diag.launcher`` and ``diag.cleanup`` call. Three objects carry
  them: the ClusterRole ``meshprobe-mesh-reader`` (bound cluster-wide), the Role
  ``meshprobe-istio-config`` in Istio's root namespace (the mesh ConfigMap, istiod's
  Deployment), and the ClusterRole ``meshprobe-prober``, bound per probe namespace with a
  RoleBinding (or cluster-wide with ``all_namespaces``).
- ``probe_pod``: the probe pod ``diag.podspec`` builds for a run, as a standalone Pod.
- ``cronjob``: a scheduled smoke test running ``meshprobe check`` in the cluster, with its
  ServiceAccount (bound by ``rbac``'s default subjects).

Objects are plain dicts; ``to_yaml`` prints them as a YAML stream kubectl reads exactly as
written (strings go-yaml would take for booleans or numbers are quoted), with a comment before
each RBAC rule saying which command needs it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from diag import errors
from diag.image import PROBE_GID, PROBE_IMAGE, PROBE_UID
from diag.meshread import CORE_KINDS, ISTIO_KINDS, ROOT_NAMESPACE
from diag.podspec import ProbeRun, pod_template

RBAC_GROUP = "rbac.authorization.k8s.io"
PART_OF = {"app.kubernetes.io/part-of": "meshprobe"}
DEFAULT_NAMESPACE = "meshprobe"
DEFAULT_SERVICE_ACCOUNT = "meshprobe"
DEFAULT_GROUP = "meshprobe-users"
DEFAULT_TARGETS = ("example.com",)
DEFAULT_SCHEDULE = "*/30 * * * *"
CLI_REPOSITORY = "ghcr.io/meshprobe/meshprobe-cli"
MESH_READER = "meshprobe-mesh-reader"
ISTIO_CONFIG = "meshprobe-istio-config"
PROBER = "meshprobe-prober"
SMOKE = "meshprobe-smoke"
EXIT_LINE = "meshprobe exit status:"
# The CronJob's container: run meshprobe with the arguments, forward SIGTERM/SIGINT to it (so
# that it deletes its probe Job when the Job's deadline stops the pod), and end the log with the
# exit status. ``wait`` returns early when a trapped signal arrives: wait again while it runs.
WRAPPER = (
    'meshprobe "$@" & child=$!\n'
    "trap 'kill -TERM \"$child\" 2>/dev/null' TERM INT\n"
    'while :; do wait "$child"; status=$?; kill -0 "$child" 2>/dev/null || break; done\n'
    f'echo "{EXIT_LINE} $status" >&2\n'
    'exit "$status"\n'
)
_SCHEDULE_FIELD = re.compile(r"^[0-9A-Za-z*/,?-]+$")
_SCHEDULE_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


@dataclass(frozen=True)
class Rule:
    """One RBAC rule and what needs it (printed as a comment above the rule)."""

    group: str
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    why: str
    names: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "apiGroups": [self.group],
            "resources": list(self.resources),
            "verbs": list(self.verbs),
        }
        if self.names:
            out["resourceNames"] = list(self.names)
        return out


def _istio_rules() -> list[Rule]:
    by_group: dict[str, list[tuple[str, str]]] = {}
    for group, resource, kind in ISTIO_KINDS:
        by_group.setdefault(group, []).append((resource, kind))
    return [
        Rule(
            group,
            tuple(r for r, _ in kinds),
            ("list",),
            f"check, explain, lint: {', '.join(k for _, k in kinds)} (the mesh config predictions use)",
        )
        for group, kinds in sorted(by_group.items())
    ]


def mesh_reader_rules() -> list[Rule]:
    """Cluster-wide reads: the mesh config (``diag.meshread``), listed in every namespace because
    entries exported from other namespaces apply to the source's."""
    core = [
        Rule(group, (resource,), ("list",), f"check, explain, lint: {kind}s (hosts, ports, addresses)")
        for group, _, resource, kind in CORE_KINDS
    ]
    return [
        *_istio_rules(),
        *core,
        Rule("", ("namespaces",), ("list",), "check, explain, lint: namespace labels (injection, ambient)"),
        Rule(
            "authorization.k8s.io",
            ("selfsubjectaccessreviews",),
            ("create",),
            "cleanup --dry-run: may the removal happen? (kubectl auth can-i asks the same)",
        ),
    ]


def istio_config_rules(revisions: Sequence[str] = ()) -> list[Rule]:
    """In Istio's root namespace: the mesh config and the istiod Deployment (its version)."""
    names = ("istio", *(f"istio-{r}" for r in revisions if r and r != "default"))
    return [
        Rule(
            "",
            ("configmaps",),
            ("get",),
            "check, explain, lint: MeshConfig (outboundTrafficPolicy, ...)",
            names,
        ),
        Rule(
            "apps", ("deployments",), ("list",), "check, explain, lint: istiod's Deployment (Istio version)"
        ),
    ]


def prober_rules() -> list[Rule]:
    """In each probe namespace: the per-run Job and its pod, ``--from``, ``--like``, cleanup."""
    return [
        Rule("batch", ("jobs",), ("create", "list", "delete"), "check: the per-run Job; cleanup: leftovers"),
        Rule(
            "",
            ("pods",),
            ("get", "list", "watch", "delete"),
            "check: follow the probe pod, read --from/--like pods; cleanup: leftovers",
        ),
        Rule("", ("pods/log",), ("get",), "check: the probe's JSON result is its container log"),
        Rule(
            "", ("pods/ephemeralcontainers",), ("patch",), "check --from: the probe as an ephemeral container"
        ),
        Rule("", ("events",), ("list",), "check: quote why the Job could not create its pod (FailedCreate)"),
        Rule(
            "apps",
            ("deployments", "statefulsets", "daemonsets"),
            ("get",),
            "check --like: the workload's template",
        ),
    ]


@dataclass(frozen=True)
class Subjects:
    """Who the bindings grant the roles to."""

    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    service_accounts: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [{"apiGroup": RBAC_GROUP, "kind": "User", "name": u} for u in self.users]
        out += [{"apiGroup": RBAC_GROUP, "kind": "Group", "name": g} for g in self.groups]
        out += [{"kind": "ServiceAccount", "name": n, "namespace": ns} for ns, n in self.service_accounts]
        return out


def default_subjects(namespace: str = DEFAULT_NAMESPACE) -> Subjects:
    """A group for people, and the CronJob's ServiceAccount."""
    return Subjects(groups=(DEFAULT_GROUP,), service_accounts=((namespace, DEFAULT_SERVICE_ACCOUNT),))


def _meta(name: str, namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    meta["labels"] = dict(PART_OF)
    return meta


def _role(kind: str, name: str, rules: list[Rule], namespace: str | None = None) -> dict[str, Any]:
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": kind,
        "metadata": _meta(name, namespace),
        "rules": [r.to_json() for r in rules],
    }


def _binding(
    kind: str, name: str, role_kind: str, subjects: Subjects, namespace: str | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": kind,
        "metadata": _meta(name, namespace),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": role_kind, "name": name},
        "subjects": subjects.to_json(),
    }


def rbac(
    namespaces: Sequence[str] = (DEFAULT_NAMESPACE,),
    subjects: Subjects | None = None,
    *,
    revisions: Sequence[str] = (),
    all_namespaces: bool = False,
) -> list[dict[str, Any]]:
    """The RBAC objects (module docstring); ``namespaces`` are where probes run."""
    for ns in [*namespaces, *revisions]:
        _check_label(ns, "namespace" if ns in namespaces else "revision")
    if not namespaces and not all_namespaces:
        raise errors.UsageError("rbac: give at least one probe namespace (-n NS) or --all-namespaces")
    who = (
        subjects
        if subjects is not None
        else default_subjects(namespaces[0] if namespaces else DEFAULT_NAMESPACE)
    )
    if not who.to_json():
        raise errors.UsageError("rbac: no subjects to bind (--user, --group or --service-account)")
    objects = [
        _role("ClusterRole", MESH_READER, mesh_reader_rules()),
        _binding("ClusterRoleBinding", MESH_READER, "ClusterRole", who),
        _role("Role", ISTIO_CONFIG, istio_config_rules(revisions), ROOT_NAMESPACE),
        _binding("RoleBinding", ISTIO_CONFIG, "Role", who, ROOT_NAMESPACE),
        _role("ClusterRole", PROBER, prober_rules()),
    ]
    if all_namespaces:
        objects.append(_binding("ClusterRoleBinding", PROBER, "ClusterRole", who))
    else:
        objects += [
            _binding("RoleBinding", PROBER, "ClusterRole", who, ns) for ns in dict.fromkeys(namespaces)
        ]
    return objects


def example_plan(targets: Sequence[str], *, native: bool) -> dict[str, Any]:
    """The plan a ``check`` of ``targets`` hands the probe (``docs/probe.md``), for the example pod."""
    return {
        "schema": "meshprobe.plan/v1",
        "targets": [{"target": t, "expect": "allowed"} for t in targets],
        "options": {"timeout": 5.0},
        "sidecar": {"mode": "auto", "quit": not native, "native": native},
    }


def probe_pod(
    namespace: str = DEFAULT_NAMESPACE,
    image: str = PROBE_IMAGE,
    targets: Sequence[str] = DEFAULT_TARGETS,
    *,
    native: bool = True,
) -> dict[str, Any]:
    """The pod ``meshprobe check`` runs (``diag.podspec.pod_template``), as a standalone Pod
    named ``meshprobe-example`` (run id ``example``): ``kubectl apply`` it, read the result with
    ``kubectl logs``, and ``meshprobe cleanup`` removes it once it has finished."""
    _check_label(namespace, "namespace")
    hosts = _target_hosts(targets)
    run = ProbeRun("example", namespace, image, example_plan(targets, native=native), native_sidecar=native)
    template = pod_template(run, hosts)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": run.job_name, "namespace": namespace, **template["metadata"]},
        "spec": template["spec"],
    }


def cronjob(
    namespace: str = DEFAULT_NAMESPACE,
    *,
    cli_image: str | None = None,
    probe_image: str = PROBE_IMAGE,
    schedule: str = DEFAULT_SCHEDULE,
    targets: Sequence[str] = DEFAULT_TARGETS,
    service_account: str = DEFAULT_SERVICE_ACCOUNT,
) -> list[dict[str, Any]]:
    """A ServiceAccount and a CronJob whose Job runs ``meshprobe check TARGETS -o json`` in
    ``namespace``: the report and a last line ``meshprobe exit status: N`` land in the Job's log,
    and the Job fails when the check does (exit status other than 0). Its pod asks for a native
    sidecar, which stops by itself once meshprobe exits, so the Job completes."""
    from probes import __version__

    _check_label(namespace, "namespace")
    _check_label(service_account, "service account")
    check_schedule(schedule)
    _target_hosts(targets)
    image = cli_image or f"{CLI_REPOSITORY}:{__version__}"
    labels = {"app.kubernetes.io/name": SMOKE, **PART_OF}  # never managed-by: cleanup must not touch it
    container: dict[str, Any] = {
        "name": "meshprobe",
        "image": image,
        "command": ["/bin/sh", "-c", WRAPPER, "meshprobe"],
        "args": ["check", *targets, "-n", namespace, "--image", probe_image, "-o", "json"],
        "env": [
            {"name": "HOME", "value": "/tmp"},
            {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
            {"name": "PYTHONUNBUFFERED", "value": "1"},
            {"name": "NO_COLOR", "value": "1"},
        ],
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": PROBE_UID,
            "runAsGroup": PROBE_GID,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "resources": {
            "requests": {"cpu": "50m", "memory": "128Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    pod_spec: dict[str, Any] = {
        "serviceAccountName": service_account,
        "automountServiceAccountToken": True,  # meshprobe talks to the API server
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 30,  # time to delete its probe Job
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": PROBE_UID,
            "runAsGroup": PROBE_GID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}}],
        "enableServiceLinks": False,
    }
    annotations = {
        "sidecar.istio.io/nativeSidecar": "true",
        "proxy.istio.io/config": json.dumps({"holdApplicationUntilProxyStarts": True}),
    }
    job_spec = {
        "backoffLimit": 0,
        "activeDeadlineSeconds": 600,
        "template": {"metadata": {"labels": dict(labels), "annotations": annotations}, "spec": pod_spec},
    }
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(service_account, namespace)}
    job = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": SMOKE, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "schedule": schedule,
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {"metadata": {"labels": dict(labels)}, "spec": job_spec},
        },
    }
    return [account, job]


def check_schedule(schedule: str) -> None:
    """A cron schedule the CronJob controller can parse: five fields, or a macro."""
    text = schedule.strip()
    if text in _SCHEDULE_MACROS or (text.startswith("@every ") and len(text) > 7):
        return
    fields = text.split()
    if len(fields) != 5 or not all(_SCHEDULE_FIELD.match(f) for f in fields):
        raise errors.UsageError(
            f"--schedule {schedule!r}: expected five cron fields (minute hour day month weekday) "
            "or a macro such as @hourly"
        )


def _target_hosts(targets: Sequence[str]) -> list[str]:
    from probes.targets import TargetError, parse_target

    if not targets:
        raise errors.UsageError("give at least one target (--targets HOST)")
    hosts = []
    for target in targets:
        try:
            hosts.append(parse_target(target).host)
        except TargetError as exc:
            raise errors.UsageError(str(exc)) from None
    return sorted(set(hosts))


def _check_label(value: str, what: str) -> None:
    pattern = _DNS_SUBDOMAIN if what == "service account" else _DNS_LABEL
    if not pattern.match(value):
        raise errors.UsageError(f"{what} {value!r}: expected a DNS label (lower-case letters, digits, '-')")


# ---- YAML ----------------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Block style; a string kubectl's YAML reader (go-yaml) would take for something else
    (``y``, ``on``, ``0x1F``, ``1e3``) is quoted; multi-line strings are literal blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    from diag.kubeyaml import STR, resolve_plain

    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    style = "'" if value and resolve_plain(value) != STR else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _dump(data: Any, flow: bool | None = False) -> str:
    # No folding: a long value (a plan, a proxy config) stays on one line, as written.
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=flow, width=1 << 20)


def object_yaml(obj: Mapping[str, Any], why: Mapping[int, str] | None = None) -> str:
    """One object as YAML; ``why[i]`` is printed as a comment above rule ``i``."""
    rules = obj.get("rules")
    if rules is None:
        return _dump(dict(obj))
    head = _dump({k: v for k, v in obj.items() if k != "rules"})
    lines = ["rules:"]
    for i, rule in enumerate(rules):
        if why and i in why:
            lines.append(f"# {why[i]}")
        lines.append(_dump([rule], flow=None).rstrip("\n"))
    return head + "\n".join(lines) + "\n"


def to_yaml(
    objects: Sequence[Mapping[str, Any]], header: str, comments: Mapping[str, list[Rule]] | None = None
) -> str:
    """A YAML stream: ``header`` as comment lines, then each object (``---`` between them)."""
    parts = []
    for obj in objects:
        rules = (comments or {}).get(f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}")
        parts.append(object_yaml(obj, {i: r.why for i, r in enumerate(rules)} if rules else None))
    top = "".join(f"# {line}".rstrip() + "\n" for line in header.strip("\n").splitlines())
    return top + "---\n".join(parts)


def rule_comments(revisions: Sequence[str] = ()) -> dict[str, list[Rule]]:
    """Which rule list each role of ``rbac`` was built from (for the comments)."""
    return {
        f"ClusterRole/{MESH_READER}": mesh_reader_rules(),
        f"Role/{ISTIO_CONFIG}": istio_config_rules(revisions),
        f"ClusterRole/{PROBER}": prober_rules(),
    }


HEADERS = {
    "rbac": """\
meshprobe's permissions, least privilege (docs/rbac.md says what each rule is for).
Rendered by `meshprobe manifests rbac`; re-render with your subjects and probe namespaces:
  meshprobe manifests rbac -n shop --group sre --service-account meshprobe/meshprobe
""",
    "probe-pod": """\
The pod `meshprobe check` runs (diag/podspec.py), as a standalone example: apply it, read the
probe's JSON with `kubectl logs meshprobe-example -c probe`; `meshprobe cleanup` removes it.
Rendered by `meshprobe manifests probe-pod` (docs/probe-pod.md).
""",
    "cronjob": """\
A scheduled egress smoke test: `meshprobe check` in the cluster, as the ServiceAccount that
manifests/rbac.yaml binds. The JSON report and a last line `meshprobe exit status: N` land in the
Job's log; the Job fails when the check does. The image must contain meshprobe-cli.
Rendered by `meshprobe manifests cronjob` (docs/rbac.md).
""",
}


def render_rbac(
    namespaces: Sequence[str] = (DEFAULT_NAMESPACE,),
    subjects: Subjects | None = None,
    *,
    revisions: Sequence[str] = (),
    all_namespaces: bool = False,
) -> str:
    """``meshprobe manifests rbac``."""
    objects = rbac(namespaces, subjects, revisions=revisions, all_namespaces=all_namespaces)
    return to_yaml(objects, HEADERS["rbac"], rule_comments(revisions))


def render_probe_pod(**options: Any) -> str:
    """``meshprobe manifests probe-pod`` (the options of ``probe_pod``)."""
    return to_yaml([probe_pod(**options)], HEADERS["probe-pod"])


def render_cronjob(**options: Any) -> str:
    """``meshprobe manifests cronjob`` (the options of ``cronjob``)."""
    return to_yaml(cronjob(**options), HEADERS["cronjob"])


RENDERERS = {"rbac": render_rbac, "probe-pod": render_probe_pod, "cronjob": render_cronjob}
