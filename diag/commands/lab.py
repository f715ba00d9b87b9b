"""`meshprobe lab up|apply|exec|status|down`: drive the lab (docs/lab.md) from the shell.

`up` starts a detached supervisor that owns the lab (see `lab/supervisor.py`); the other
subcommands talk to it through its state directory, and `down` stops it by PID. `exec` runs the
command behind the sidecar of the namespace's pod and exits with its status. Every failure is a
`LabError` (exit 4) or a `UsageError` (exit 2): one line, never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

import typer

from diag import errors
from diag.model.dnsnames import host_names
from diag.model.dnsnames import namespace as namespace_name

MODES = ("REGISTRY_ONLY", "ALLOW_ANY")
T = TypeVar("T")

lab_app = typer.Typer(
    name="lab",
    help="An Istio-like mesh on this host, for tests and demos (needs root)." + (
        "\n\nExamples:\n\n\b\n"
        "  meshprobe lab up --mode REGISTRY_ONLY --internet pkg.lab.example\n"
        "  meshprobe lab exec -- curl -sS https://pkg.lab.example/\n"
        "  meshprobe lab down"
    ),
    no_args_is_help=True, add_completion=False, rich_markup_mode=None,
)  # fmt: skip


def _control_error(exc: Exception) -> errors.LabError:
    from lab.control import state_dir

    return errors.LabError(str(exc), hint=f"lab state: {state_dir()}")


def _load(paths: list[str]) -> list[dict[str, object]]:
    """The objects in ``paths``, refused as the API server would refuse them (exit 2): unreadable
    files, unknown kinds, objects Istio's validation rejects (a port outside 1..65535)."""
    import sys

    from diag.model.loader import load_paths, require_loadable
    from lab.objects import ObjectsError, mesh_config_of

    if not paths:
        return []
    loaded = require_loadable(load_paths(paths, admission=True), sys.stderr.write)
    objects = [dict(doc) for doc in loaded.documents]
    try:
        mesh_config_of(objects)  # a broken istio ConfigMap is bad input, not a lab failure
    except ObjectsError as exc:
        raise errors.InputError(str(exc)) from exc
    return objects


def _finish(operation: Callable[[], T], report: Callable[[T], None]) -> None:
    """Run ``operation``, then ``report`` its outcome, unless Ctrl-C came first: then the one line
    ``error: interrupted`` (exit 130) and no success line, even if something below swallowed the
    interrupt. Once the outcome is known, a late Ctrl-C no longer cuts its report in half."""
    import signal

    interrupted = False

    def on_sigint(signum: int, frame: object) -> None:
        nonlocal interrupted
        interrupted = True
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGINT, on_sigint)
    except ValueError:  # not the main thread: no signals here
        report(operation())
        return
    try:
        result = operation()
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if interrupted:
            raise KeyboardInterrupt
        report(result)
    finally:
        signal.signal(signal.SIGINT, previous)


def _check_mode(mode: str | None) -> str | None:
    if mode is not None and mode.upper() not in MODES:
        raise errors.UsageError(f"--mode must be one of {', '.join(MODES)}, not {mode!r}")
    return mode.upper() if mode else None


def _preflight() -> None:
    import os

    if os.geteuid() != 0:
        raise errors.LabError("the lab needs root (network namespaces and iptables)")


@lab_app.command("up")
def up(
    config: Annotated[
        list[str] | None, typer.Option("--config", help="YAML/JSON file or dir (repeatable).")
    ] = None,
    mode: Annotated[str | None, typer.Option("--mode", help="REGISTRY_ONLY or ALLOW_ANY.")] = None,
    internet: Annotated[str, typer.Option("--internet", help="Extra internet hosts, comma-separated.")] = "",
    egress_gateway: Annotated[
        bool, typer.Option("--egress-gateway", help="Also run istio-egressgateway in istio-system.")
    ] = False,
) -> None:
    """Build the lab and leave it running (detached).

    Examples:

    \b
      meshprobe lab up --config mesh/ --mode REGISTRY_ONLY --internet pkg.lab.example
    """
    objects = _load(config or [])
    checked = _check_mode(mode)
    hosts = host_names([h for h in internet.split(",") if h.strip()], "--internet")
    _preflight()
    from lab import control
    from lab.objects import namespaces_of

    namespaces = ["default", *(n for n in namespaces_of(objects) if n != "default")]
    try:
        state = control.up(objects, mode=checked, internet=hosts, namespaces=namespaces,
                           egress_gateway=egress_gateway)  # fmt: skip
    except control.ControlError as exc:
        raise _control_error(exc) from exc
    typer.echo(
        f"lab {state['run_id']} up in {state.get('up_seconds') or 0:.2f}s "
        f"(pods: {', '.join(p['namespace'] for p in state['pods'])})"
    )
    typer.echo(f"kubeconfig: {state.get('kubeconfig')}")
    typer.echo(f"try: meshprobe check --kubeconfig {state.get('kubeconfig')} -n default HOST")


@lab_app.command("apply")
def apply(
    file: Annotated[list[str], typer.Argument(help="YAML/JSON files or directories with the new config.")],
) -> None:
    """Replace the lab's config and restart the sidecars with it.

    Examples:

    \b
      meshprobe lab apply fixed.yaml
    """
    objects = _load(file)
    from lab import control

    def applied() -> dict[str, object]:
        try:
            return control.request("apply", objects=objects)
        except control.ControlError as exc:
            raise _control_error(exc) from exc

    _finish(applied, lambda reply: typer.echo(
        f"applied {len(objects)} object(s); sidecars live again after {float(str(reply['seconds'])):.2f}s"
    ))  # fmt: skip


@lab_app.command("exec", context_settings={"allow_interspersed_args": False})
def exec_(
    command: Annotated[list[str], typer.Argument(help="The command (after --).")],
    namespace: Annotated[
        str, typer.Option("-n", "--namespace", help="Run in this namespace's pod.")
    ] = "default",
) -> None:
    """Run CMD in a pod behind its sidecar (non-1337 uid/gid, lab CA trusted); exit with its status.

    Examples:

    \b
      meshprobe lab exec -- curl -sS https://pkg.lab.example/
      meshprobe lab exec -n shop -- python -m probes pkg.lab.example
    """
    import subprocess

    from lab import control
    from lab.pod import app_env, app_exec_argv

    try:
        info = control.request("pod", namespace=namespace_name(namespace))["pod"]
    except control.ControlError as exc:
        raise _control_error(exc) from exc
    from pathlib import Path

    argv = app_exec_argv(info["netns"], Path(info["resolv_conf"]), command)
    env = app_env(Path(info["ca_file"]), f"{info['namespace']}/{info['name']}")
    try:
        code = subprocess.call(argv, env=env)
    except OSError as exc:
        raise errors.LabError(f"cannot run {command[0]!r}: {exc}") from exc
    # SystemExit, not typer.Exit: `diag.cli.main` runs the app with standalone_mode=False, where
    # click returns Exit's code instead of raising it.
    raise SystemExit(code)


@lab_app.command("status")
def status(output: Annotated[str, typer.Option("-o", "--output", help="text or json.")] = "text") -> None:
    """Show the running lab: pods, sidecars, internet hosts.

    Examples:

    \b
      meshprobe lab status -o json
    """
    import json

    from lab import control

    try:
        info = control.request("status")["status"]
    except control.ControlError as exc:
        raise _control_error(exc) from exc
    if output == "json":
        typer.echo(json.dumps(info, indent=2, sort_keys=True))
        return
    from diag.render.lab import render_status

    render_status(info)


@lab_app.command("down")
def down() -> None:
    """Stop the lab and remove everything it created.

    Examples:

    \b
      meshprobe lab down
    """
    from lab import control

    _finish(control.down, lambda run_id: typer.echo(f"lab {run_id} down" if run_id else "no lab was up"))


def register(app: typer.Typer) -> None:
    """Add `meshprobe lab` to the app."""
    app.add_typer(lab_app, name="lab")
