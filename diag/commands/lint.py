"""The `meshprobe lint` command: static findings (MP04xx) over mesh config files, as text, JSON
(the `meshprobe.report/v1` document with findings only) or SARIF 2.1.0. `--mode` and
`--mesh-config` are explain's: the mesh-wide mode (lint has no source workload, so no Sidecar
applies and the report shows the mesh-wide mode).

Without `--config` it reads the live cluster, read-only (`diag.live.meshread`). Exit 0 when no finding
is an error or warning, 1 otherwise, 2 for bad usage or files, 4 when the cluster cannot be read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add `meshprobe lint` to the app."""
    app.command("lint")(lint)


def lint(
    config: Annotated[
        list[Path] | None, typer.Option("--config", help="YAML file or directory (repeatable).")
    ] = None,
    mesh_config: Annotated[
        Path | None, typer.Option("--mesh-config", help="MeshConfig YAML (the istio ConfigMap's `mesh`).")
    ] = None,
    mode: Annotated[
        str | None,
        typer.Option("--mode", help="Mesh-wide mode: REGISTRY_ONLY or ALLOW_ANY (a Sidecar overrides it)."),
    ] = None,
    output: Annotated[str, typer.Option("-o", "--output", help="text, json or sarif.")] = "text",
    kubeconfig: Annotated[
        str | None, typer.Option("--kubeconfig", help="Without --config: the cluster's kubeconfig.")
    ] = None,
    context: Annotated[str | None, typer.Option("--context", help="Without --config: the context.")] = None,
) -> None:
    """Find static egress smells in mesh config (what istioctl analyze misses, and some it has).

    Examples:

    \b
      meshprobe lint --config mesh/ --mode REGISTRY_ONLY
      meshprobe lint --config mesh.yaml -o sarif > lint.sarif
      meshprobe lint --context prod                       # the live cluster, read-only
    """
    import sys
    from dataclasses import replace

    from diag.errors import UsageError
    from diag.lint.run import lint_loaded, sarif
    from diag.model.loader import load_mesh_config, load_paths, require_loadable
    from diag.predict.visibility import mesh_wide_mode
    from diag.report import MeshInfo, Report, SourceInfo, mesh_attributable
    from probes import __version__

    if output not in ("text", "json", "sarif"):
        raise UsageError(f"-o must be text, json or sarif, not {output!r}")
    if mesh_config is not None and mode is not None:
        raise UsageError("--mesh-config and --mode are mutually exclusive")
    if mode is not None and mode.upper() not in ("REGISTRY_ONLY", "ALLOW_ANY"):
        raise UsageError(f"--mode must be REGISTRY_ONLY or ALLOW_ANY, not {mode!r}")
    notes: tuple[str, ...] = ()
    if config:
        loaded = load_paths(config)
    else:
        from diag.live.meshread import load_live

        live = load_live(kubeconfig, context, None)
        loaded, notes = live.loaded, live.notes
    mesh = load_mesh_config(mesh_config) if mesh_config is not None else None
    # An object that cannot be read is a finding (IST0106 where istioctl says so) and the rest is
    # linted; only what is not an object at all (an unreadable file, not YAML) stops the run.
    snapshot, findings, fatal = lint_loaded(loaded, mesh)
    if fatal:
        require_loadable(replace(loaded, problems=tuple(fatal)), sys.stderr.write)
    for problem in loaded.problems:
        if problem.level != "error":
            sys.stderr.write(f"warning: {problem}\n")
    origins = {o.ref: o.origin for o in loaded.objects}
    if output == "sarif":
        typer.echo(json.dumps(sarif(findings, origins, __version__), indent=2))
    else:
        decided = mesh_wide_mode(snapshot, mode)
        report = Report(
            SourceInfo(kind="offline", namespace="*"),
            MeshInfo(decided.mode, decided.decided_by, snapshot.istio_version),
            (),
            tuple(findings),
            notes,
        )
        if output == "json":
            typer.echo(json.dumps(report.to_json(), indent=2))
        else:
            from diag.render.report import print_report

            print_report(report, title="meshprobe lint")
    raise SystemExit(1 if any(mesh_attributable(f) for f in findings) else 0)
