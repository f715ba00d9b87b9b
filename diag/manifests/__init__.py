"""The manifests meshprobe ships under ``manifests/`` and prints with ``meshprobe manifests``,
rendered from code so that they never drift from what meshprobe does:

- ``rbac`` (``diag.manifests.rbac``): least privilege for ``check``, ``explain``/``lint`` on a
  live cluster, and ``cleanup`` (``docs/rbac.md``);
- ``probe_pod`` and ``cronjob`` (``diag.manifests.workloads``): the probe pod ``diag.pod.spec``
  builds, as a standalone Pod, and a scheduled ``meshprobe check`` smoke test;
- ``watch`` (``diag.manifests.watch``): ``meshprobe watch`` as a meshed Deployment with its RBAC,
  Service, ServiceMonitor and PrometheusRule (``docs/watch.md``);
- ``diag.manifests.yamlout``: YAML kubectl reads exactly as written, with a comment per rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from diag.manifests.common import DEFAULT_NAMESPACE, DEFAULT_SERVICE_ACCOUNT, DEFAULT_TARGETS
from diag.manifests.rbac import Rule, Subjects, rbac, rule_comments
from diag.manifests.workloads import EXIT_LINE, check_schedule, cronjob, example_plan, probe_pod
from diag.manifests.yamlout import to_yaml

__all__ = [
    "DEFAULT_NAMESPACE",
    "DEFAULT_SERVICE_ACCOUNT",
    "DEFAULT_TARGETS",
    "EXIT_LINE",
    "HEADERS",
    "RENDERERS",
    "Rule",
    "Subjects",
    "check_schedule",
    "cronjob",
    "example_plan",
    "probe_pod",
    "rbac",
    "render_cronjob",
    "render_probe_pod",
    "render_rbac",
    "render_watch",
]

HEADERS = {
    "rbac": """\
meshprobe's permissions, least privilege (docs/rbac.md says what each rule is for).
Rendered by `meshprobe manifests rbac`; re-render with your subjects and probe namespaces:
  meshprobe manifests rbac -n shop --group sre --service-account meshprobe/meshprobe
""",
    "probe-pod": """\
The pod `meshprobe check` runs (diag/pod/spec.py), as a standalone example: apply it, read the
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
    return to_yaml(objects, HEADERS["rbac"], rule_comments(revisions)) + _optional_portforward(objects)


def _optional_portforward(objects: Sequence[Mapping[str, Any]]) -> str:
    """The optional gateway port-forward Role and its binding, commented out (docs/rbac.md)."""
    from diag.manifests.rbac import gateway_portforward

    binding = next(o for o in objects if o.get("kind") == "ClusterRoleBinding")
    optional = gateway_portforward(Subjects())
    optional[1]["subjects"] = binding["subjects"]  # the same subjects as every other binding
    intro = [
        "OPTIONAL, not granted by default: lets `check` read the egress gateway's own config",
        "(targets[].actual.gateway) through pods/portforward to its admin port. It can open any port",
        "of any pod in istio-system; without it the gateway hop is predicted only and the report",
        "says so. To grant it, uncomment:",
    ]
    why = "check: the egress gateway's config_dump (admin port 15000); a websocket GET also needs create"
    body = "---\n" + to_yaml(optional, "", {f"Role/{optional[0]['metadata']['name']}": [why]})
    lines = [f"# {line}" for line in intro] + [f"# {line}".rstrip() for line in body.splitlines()]
    return "\n".join(lines) + "\n"


def render_probe_pod(**options: Any) -> str:
    """``meshprobe manifests probe-pod`` (the options of ``probe_pod``)."""
    return to_yaml([probe_pod(**options)], HEADERS["probe-pod"])


def render_cronjob(**options: Any) -> str:
    """``meshprobe manifests cronjob`` (the options of ``cronjob``)."""
    return to_yaml(cronjob(**options), HEADERS["cronjob"])


def render_watch(**options: Any) -> str:
    """``meshprobe manifests watch`` (the options of ``diag.manifests.watch.watch_manifests``)."""
    from diag.manifests.watch import render_watch as render

    return render(**options)


RENDERERS = {
    "rbac": render_rbac,
    "probe-pod": render_probe_pod,
    "cronjob": render_cronjob,
    "watch": render_watch,
}
