"""`meshprobe cleanup`: remove the Jobs and pods meshprobe runs left behind (``diag.pod.cleanup`` finds
them by meshprobe's label only), wait until they are gone, and say what went; meshprobe's
ephemeral containers are named, since Kubernetes cannot remove them. Only typer and the standard
library are imported at module level.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from diag.pod.cleanup import Found, Leftover

HELP = """Remove what meshprobe runs left behind: their Jobs and pods.

Only objects labelled app.kubernetes.io/managed-by=meshprobe are touched. Without --older-than,
finished runs and runs older than an hour go; a younger run still going (maybe someone's
`meshprobe check`) is left alone and named. Ephemeral containers (`check --from`) cannot be
removed by anyone; they are listed.

Examples:

\b
  meshprobe cleanup -n shop
  meshprobe cleanup --all-namespaces --dry-run
  meshprobe cleanup -n shop --older-than 10m      # also runs still going, if older than 10 minutes
"""


def register(app: typer.Typer) -> None:
    """Add `meshprobe cleanup` to the app."""
    app.command("cleanup", help=HELP)(cleanup)


def cleanup(
    namespace: Annotated[
        str | None, typer.Option("-n", "--namespace", help="Namespace (default: the context's).")
    ] = None,
    all_namespaces: Annotated[bool, typer.Option("-A", "--all-namespaces", help="Every namespace.")] = False,
    older_than: Annotated[
        str | None,
        typer.Option("--older-than", help="Remove runs older than this (30m, 1h, 2d), finished or not."),
    ] = None,
    kubeconfig: Annotated[str | None, typer.Option("--kubeconfig", help="Path to the kubeconfig.")] = None,
    context: Annotated[str | None, typer.Option("--context", help="Kubeconfig context.")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be removed, remove nothing.")
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait until everything is gone.")
    ] = 60.0,
) -> None:
    from diag.cluster import Cluster
    from diag.errors import UsageError
    from diag.pod import cleanup as leftovers

    if namespace is not None and all_namespaces:
        raise UsageError("-n and --all-namespaces are mutually exclusive")
    if namespace is not None:
        import re

        if not re.match(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", namespace):
            raise UsageError(
                f"-n {namespace!r}: a namespace is a DNS label (lower-case letters, digits, '-')"
            )
    age = leftovers.parse_duration(older_than) if older_than is not None else None
    if not 0 < timeout <= 3600:
        raise UsageError("--timeout must be between 0 and 3600 seconds")
    cluster = Cluster.connect(kubeconfig, context, namespace)
    try:
        scope = None if all_namespaces else cluster.namespace
        where = "in all namespaces" if scope is None else f"in namespace {scope}"
        found = leftovers.find(cluster, scope, age)
        if not dry_run and (found.jobs or found.pods):
            leftovers.remove(cluster, found, wait_s=timeout)
        lines = _report(found, where, dry_run=dry_run)
        if dry_run and (found.jobs or found.pods):
            lines += [
                f"warning: you may not {what}: the removal would fail (see `meshprobe manifests rbac`)"
                for what in leftovers.denied(cluster, found)
            ]
    finally:
        cluster.close()
    sys.stdout.write("".join(f"{line}\n" for line in lines))


def _report(found: Found, where: str, *, dry_run: bool) -> list[str]:
    from diag.pod.cleanup import age

    verb = "would remove" if dry_run else "removed"
    lines = []
    for job in found.jobs:
        pods = [p.name for p in found.pods_of(job)]
        with_pods = f" and its pod{'s' if len(pods) > 1 else ''} {', '.join(pods)}" if pods else ""
        lines.append(f"{verb} job {job.ref} ({_state(job)}, {age(job.age_s)} old){with_pods}")
    for pod in found.lone_pods:
        lines.append(f"{verb} pod {pod.ref} (no Job; {_state(pod)}, {age(pod.age_s)} old)")
    for item in found.active:
        lines.append(
            f"left {item.kind.lower()} {item.ref} ({_state(item)}, {age(item.age_s)} old): a run still "
            "going, maybe someone's `meshprobe check`; --older-than 0 removes it"
        )
    for probe in found.ephemeral:
        names = ", ".join(f"{n} ({'running' if n in probe.running else 'stopped'})" for n in probe.containers)
        lines.append(
            f"note: pod {probe.namespace}/{probe.pod} keeps meshprobe ephemeral container(s) {names}: "
            "Kubernetes cannot remove ephemeral containers; they go when the pod is replaced"
        )
    n_jobs, n_pods = len(found.jobs), len(found.pods)
    if n_jobs or n_pods:
        counted = f"{n_jobs} Job{'s' if n_jobs != 1 else ''} and {n_pods} pod{'s' if n_pods != 1 else ''}"
        lines.append(f"{verb} {counted} {where}" + (" (dry run: nothing was deleted)" if dry_run else ""))
    else:
        lines.append(f"nothing to remove {where}")
    return lines


def _state(item: Leftover) -> str:
    run = f"run {item.run_id}, " if item.run_id else ""
    return run + ("finished" if item.finished else "not finished")
