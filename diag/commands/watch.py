"""`meshprobe watch`: probe a target list from this pod every interval, diagnose each failure with
check's engine, and export the verdicts as Prometheus metrics (docs/watch.md; the work lives in
``diag.watch``). Only typer and the standard library are imported at module level.
"""

from __future__ import annotations

from typing import Annotated

import typer

DEFAULT_LISTEN = "0.0.0.0:9146"


def register(app: typer.Typer) -> None:
    """Add `meshprobe watch` to the app."""
    app.command(
        "watch",
        help="Probe targets from this pod on a schedule, diagnose failures, and serve Prometheus metrics."
        + (
            "\n\nRun it in a meshed Deployment (`meshprobe manifests watch`): its own sidecar is the source"
            " under test. Metrics on /metrics, health on /healthz and /readyz; a JSON line on stdout"
            " and a Kubernetes Event on every verdict change.\n\nExamples:\n\n\b\n"
            "  meshprobe watch api.example.com files.example.com --interval 30\n"
            "  meshprobe watch --preset git --targets-configmap egress-targets\n"
            "  meshprobe watch api.example.com --once   # one cycle, verdicts as JSON"
        ),
    )(watch)


def watch(
    targets: Annotated[list[str] | None, typer.Argument(help="Targets (docs/targets.md).")] = None,
    preset: Annotated[
        list[str] | None, typer.Option("--preset", help="Add a preset's targets (repeatable).")
    ] = None,
    targets_configmap: Annotated[
        str | None,
        typer.Option("--targets-configmap", help="A ConfigMap in the namespace whose `targets` key lists "
                     "targets, one per line; edits apply at the next cycle."),
    ] = None,
    namespace: Annotated[
        str | None, typer.Option("-n", "--namespace", help="This pod's namespace (default: its own).")
    ] = None,
    kubeconfig: Annotated[
        str | None, typer.Option("--kubeconfig", help="Kubeconfig (default: in-cluster).")
    ] = None,
    context: Annotated[str | None, typer.Option("--context", help="Kubeconfig context.")] = None,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between cycles.", min=1.0)] = 30.0,
    jitter: Annotated[
        float, typer.Option("--jitter", help="Each wait is the interval ± this fraction.", min=0.0, max=0.5)
    ] = 0.1,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Per-target probe timeout, seconds.", min=0.1)
    ] = 5.0,
    expect: Annotated[str, typer.Option("--expect", help="allowed | blocked | via-gateway.")] = "allowed",
    listen: Annotated[str, typer.Option("--listen", help="HOST:PORT for /metrics, /healthz, /readyz.")] = (
        DEFAULT_LISTEN
    ),
    events: Annotated[
        bool, typer.Option("--events/--no-events", help="Post a Kubernetes Event on each verdict change.")
    ] = True,
    once: Annotated[
        bool, typer.Option("--once", help="Run one cycle, print its verdicts as JSON, exit.")
    ] = False,
) -> None:
    """Probe targets from this pod on a schedule and serve the verdicts as Prometheus metrics."""
    from diag.watch.run import run_watch

    code = run_watch(
        targets=list(targets or []), presets=list(preset or []), targets_configmap=targets_configmap,
        namespace=namespace, kubeconfig=kubeconfig, context=context, interval=interval,
        jitter=jitter, timeout=timeout, expect=expect, listen=listen, events=events, once=once,
    )  # fmt: skip
    raise typer.Exit(code)
