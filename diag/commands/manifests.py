"""`meshprobe manifests rbac|probe-pod|cronjob`: print the manifests meshprobe ships, rendered
with your namespaces, subjects, images, schedule and targets (``diag.manifests``; the files under
``manifests/`` are these commands' output with the defaults). Only typer and the standard library
are imported at module level.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

manifests_app = typer.Typer(
    name="manifests",
    help="Print meshprobe's Kubernetes manifests (RBAC, the probe pod, a CronJob smoke test) as YAML."
    + (
        "\n\nExamples:\n\n\b\n"
        "  meshprobe manifests rbac -n shop --group sre | kubectl apply -f -\n"
        "  meshprobe manifests probe-pod -n shop --targets api.example.com\n"
        "  meshprobe manifests cronjob -n shop --schedule '*/15 * * * *' --targets api.example.com"
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)

Namespaces = Annotated[
    list[str] | None,
    typer.Option("-n", "--namespace", help="Namespace the probes run in (repeatable; default meshprobe)."),
]
Namespace = Annotated[
    str, typer.Option("-n", "--namespace", help="Namespace of the objects and of the probes.")
]
Targets = Annotated[
    list[str] | None,
    typer.Option("--targets", help="Targets to probe (repeatable, or comma-separated; default example.com)."),
]
ProbeImage = Annotated[
    str | None, typer.Option("--image", help="The probe image (as `meshprobe check --image`).")
]


def register(app: typer.Typer) -> None:
    """Add `meshprobe manifests` to the app."""
    app.add_typer(manifests_app)


@manifests_app.command("rbac")
def rbac(
    namespace: Namespaces = None,
    all_namespaces: Annotated[
        bool,
        typer.Option(
            "-A", "--all-namespaces", help="Bind the probe rights in every namespace (ClusterRoleBinding)."
        ),
    ] = False,
    user: Annotated[list[str] | None, typer.Option("--user", help="A user to bind (repeatable).")] = None,
    group: Annotated[list[str] | None, typer.Option("--group", help="A group to bind (repeatable).")] = None,
    service_account: Annotated[
        list[str] | None,
        typer.Option("--service-account", help="NAMESPACE/NAME of a ServiceAccount to bind (repeatable)."),
    ] = None,
    revision: Annotated[
        list[str] | None,
        typer.Option("--revision", help="An Istio revision: also read its istio-REV ConfigMap (repeatable)."),
    ] = None,
) -> None:
    """Least-privilege RBAC for check, explain/lint on a live cluster, and cleanup.

    Without --user/--group/--service-account the bindings name the group meshprobe-users and the
    CronJob's ServiceAccount NAMESPACE/meshprobe. docs/rbac.md says what each rule is for.

    Examples:

    \b
      meshprobe manifests rbac -n shop -n payments --group sre
      meshprobe manifests rbac -n shop --user alice@example.com --revision canary
      meshprobe manifests rbac --all-namespaces --service-account meshprobe/meshprobe
    """
    from diag import manifests
    from diag.errors import UsageError

    accounts = []
    for item in service_account or []:
        ns, sep, name = item.partition("/")
        if not sep or not ns or not name:
            raise UsageError(f"--service-account {item!r}: expected NAMESPACE/NAME")
        accounts.append((ns, name))
    subjects = None
    if user or group or accounts:
        subjects = manifests.Subjects(tuple(user or ()), tuple(group or ()), tuple(accounts))
    namespaces = _split(namespace) or ([] if all_namespaces else [manifests.DEFAULT_NAMESPACE])
    sys.stdout.write(
        manifests.render_rbac(
            namespaces, subjects, revisions=tuple(revision or ()), all_namespaces=all_namespaces
        )
    )


@manifests_app.command("probe-pod")
def probe_pod(
    namespace: Namespace = "meshprobe",
    image: ProbeImage = None,
    targets: Targets = None,
    sidecar: Annotated[
        str, typer.Option("--sidecar", help="native (Kubernetes >= 1.29) or regular.")
    ] = "native",
) -> None:
    """The probe pod `meshprobe check` creates, as a standalone Pod.

    Apply it, read the probe's JSON with `kubectl logs meshprobe-example -c probe`, then
    `meshprobe cleanup` removes it. docs/probe-pod.md explains every field.

    Examples:

    \b
      meshprobe manifests probe-pod -n shop --targets api.example.com,tcp://db.example.com:5432
      meshprobe manifests probe-pod --sidecar regular --image registry.example.com/meshprobe-probe:0.1.0
    """
    from diag import manifests
    from diag.errors import UsageError
    from diag.pod.image import PROBE_IMAGE

    if sidecar not in ("native", "regular"):
        raise UsageError(f"--sidecar must be native or regular, not {sidecar!r}")
    sys.stdout.write(
        manifests.render_probe_pod(
            namespace=namespace,
            image=image or PROBE_IMAGE,
            targets=_split(targets) or list(manifests.DEFAULT_TARGETS),
            native=sidecar == "native",
        )
    )


@manifests_app.command("cronjob")
def cronjob(
    namespace: Namespace = "meshprobe",
    image: ProbeImage = None,
    cli_image: Annotated[
        str | None,
        typer.Option("--cli-image", help="An image with meshprobe-cli installed (runs `meshprobe check`)."),
    ] = None,
    schedule: Annotated[str, typer.Option("--schedule", help="Cron schedule.")] = "*/30 * * * *",
    targets: Targets = None,
    service_account: Annotated[
        str, typer.Option("--service-account", help="The ServiceAccount the Job runs as.")
    ] = "meshprobe",
) -> None:
    """A CronJob that runs `meshprobe check` in the cluster on a schedule (an egress smoke test).

    Its Job's log holds the JSON report and a last line `meshprobe exit status: N`; the Job fails
    when the check does. Bind its ServiceAccount with `meshprobe manifests rbac`.

    Examples:

    \b
      meshprobe manifests cronjob -n shop --targets api.example.com --schedule '*/15 * * * *'
      meshprobe manifests cronjob --cli-image registry.example.com/meshprobe-cli:0.1.0
    """
    from diag import manifests
    from diag.pod.image import PROBE_IMAGE

    sys.stdout.write(
        manifests.render_cronjob(
            namespace=namespace,
            cli_image=cli_image,
            probe_image=image or PROBE_IMAGE,
            schedule=schedule,
            targets=_split(targets) or list(manifests.DEFAULT_TARGETS),
            service_account=service_account,
        )
    )


@manifests_app.command("watch")
def watch(
    namespace: Namespace = "meshprobe",
    targets: Targets = None,
    cli_image: Annotated[
        str | None, typer.Option("--cli-image", help="An image with meshprobe-cli[watch] installed.")
    ] = None,
    interval: Annotated[int, typer.Option("--interval", help="Seconds between probe cycles.", min=5)] = 30,
) -> None:
    """`meshprobe watch` as a meshed Deployment: least-privilege RBAC, the targets ConfigMap, a
    Service, a ServiceMonitor and PrometheusRule alerts keyed on the diagnosis code (docs/watch.md).

    Examples:

    \b
      meshprobe manifests watch -n shop --targets api.example.com,files.example.com | kubectl apply -f -
    """
    from diag import manifests
    from diag.manifests.watch import render_watch

    sys.stdout.write(
        render_watch(
            namespace=namespace,
            targets=_split(targets) or list(manifests.DEFAULT_TARGETS),
            cli_image=cli_image,
            interval=interval,
        )
    )


def _split(values: list[str] | None) -> list[str]:
    """Repeated and comma-separated values, in order, without duplicates."""
    out = [part.strip() for value in values or [] for part in value.split(",") if part.strip()]
    return list(dict.fromkeys(out))
