"""The `meshprobe lint` command: static findings (MP04xx) over mesh config files, as text, JSON
(the `meshprobe.report/v1` document with findings only) or SARIF 2.1.0. `--mode` and
`--mesh-config` are explain's: the mesh-wide mode (lint has no source workload, so no Sidecar
applies and the report shows the mesh-wide mode).

Reading the live cluster (lint without `--config`) arrives with the `check` issue. Exit 0 when no
finding is an error or warning, 1 otherwise, 2 for bad usage or files.
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
) -> None:
    """Find static egress smells in mesh config (what istioctl analyze misses, and some it has).

    Examples:

    \b
      meshprobe lint --config mesh/ --mode REGISTRY_ONLY
      meshprobe lint --config mesh.yaml -o sarif > lint.sarif
    """
    from diag.errors import InputError, UsageError
    from diag.lint import sarif, static_findings
    from diag.loader import load_mesh_config, load_paths
    from diag.report import MeshInfo, Report, SourceInfo, mesh_attributable
    from diag.snapshot import Snapshot
    from diag.visibility import mesh_wide_mode
    from probes import __version__

    if output not in ("text", "json", "sarif"):
        raise UsageError(f"-o must be text, json or sarif, not {output!r}")
    if mesh_config is not None and mode is not None:
        raise UsageError("--mesh-config and --mode are mutually exclusive")
    if mode is not None and mode.upper() not in ("REGISTRY_ONLY", "ALLOW_ANY"):
        raise UsageError(f"--mode must be REGISTRY_ONLY or ALLOW_ANY, not {mode!r}")
    if not config:
        raise UsageError(
            "lint needs --config PATH (files or directories of mesh YAML); "
            "reading the live cluster is not available yet"
        )
    loaded = load_paths(config)
    errors = [p for p in loaded.problems if p.level == "error"]
    if errors:
        raise InputError(
            f"{errors[0]}" + (f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else "")
        )
    mesh = load_mesh_config(mesh_config) if mesh_config is not None else loaded.mesh
    snapshot = Snapshot.build(loaded.objects, mesh)
    findings = static_findings(snapshot, loaded.objects)
    if output == "sarif":
        origins = {o.ref: o.origin for o in loaded.objects}
        typer.echo(json.dumps(sarif(findings, origins, __version__), indent=2))
    else:
        decided = mesh_wide_mode(snapshot, mode)
        report = Report(
            SourceInfo(kind="offline", namespace="*"),
            MeshInfo(decided.mode, decided.decided_by, snapshot.istio_version),
            (),
            tuple(findings),
        )
        if output == "json":
            typer.echo(json.dumps(report.to_json(), indent=2))
        else:
            from diag.render.report import print_report

            print_report(report, title="meshprobe lint")
    raise SystemExit(1 if any(mesh_attributable(f) for f in findings) else 0)
