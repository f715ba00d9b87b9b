"""The `meshprobe explain` command: the predicted path and diagnoses for targets, from config
files or, without `--config`, from the live cluster (read-only, `diag.live.meshread`), optionally
correlated with a saved probe result (`--results`, the JSON `python -m probes` prints).

Only typer and the standard library are imported at module level.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from diag.model.resources import MeshConfig, Resource
    from diag.report import Report
    from probes.model import ProbeReport

MODES = ("REGISTRY_ONLY", "ALLOW_ANY")


def register(app: typer.Typer) -> None:
    """Add `meshprobe explain` to the app."""
    app.command("explain")(explain)


def explain(
    targets: Annotated[
        list[str], typer.Argument(help="HOST, HOST:PORT, http(s)://..., tls://..., tcp://...")
    ],
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
    namespace: Annotated[
        str, typer.Option("-n", "--namespace", help="Namespace of the calling workload.")
    ] = "default",
    labels: Annotated[str, typer.Option("--labels", help="Labels of the calling workload: k=v,k2=v2.")] = "",
    dns_capture: Annotated[
        bool, typer.Option("--dns-capture", help="The workload's proxy captures DNS.")
    ] = False,
    results: Annotated[
        Path | None, typer.Option("--results", help="A saved `python -m probes` JSON result.")
    ] = None,
    expect: Annotated[str, typer.Option("--expect", help="allowed, blocked or via-gateway.")] = "allowed",
    output: Annotated[str, typer.Option("-o", "--output", help="text, json or junit.")] = "text",
    write_fixes: Annotated[
        Path | None,
        typer.Option("--write-fixes", metavar="DIR", help="Also write each fix to its own YAML file in DIR."),
    ] = None,
    fixes_only: Annotated[
        bool, typer.Option("--fixes-only", help="Print only the fixes, one YAML stream (kubectl apply -f -).")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Each target's phase waterfall and the sidecar evidence.")
    ] = False,
    kubeconfig: Annotated[
        str | None, typer.Option("--kubeconfig", help="Without --config: the cluster's kubeconfig.")
    ] = None,
    context: Annotated[str | None, typer.Option("--context", help="Without --config: the context.")] = None,
) -> None:
    """Explain what the sidecar does with each target and why, from config files or (without
    --config) from the live cluster, read-only.

    Examples:

    \b
      meshprobe explain api.example.com --config mesh/ -n shop --mode REGISTRY_ONLY
      meshprobe explain api.example.com --config mesh.yaml --results probe.json -o json
      meshprobe explain api.example.com -n shop          # the live cluster, read-only
    """
    report = run(
        targets,
        config or [],
        mesh_config=mesh_config,
        mode=mode,
        namespace=namespace,
        labels=labels,
        dns_capture=dns_capture,
        results=results,
        expect=expect,
        output=output,
        kubeconfig=kubeconfig,
        context=context,
    )
    emit(report, output, title="meshprobe explain", write_fixes=write_fixes, fixes_only=fixes_only,
         verbose=verbose)  # fmt: skip
    # SystemExit, not typer.Exit: diag.cli.main runs the app with standalone_mode=False, where click
    # turns typer.Exit into a return value that main() does not propagate.
    raise SystemExit(report.exit_code)


def emit(
    report: Report, output: str, *, title: str, write_fixes: Path | None = None, fixes_only: bool = False,
    verbose: bool = False,
) -> None:  # fmt: skip
    """Print ``report`` as asked (text, json, junit, or only its fixes) and write its fixes."""
    import sys

    from diag.errors import UsageError
    from diag.render.fixes import fixes_stream
    from diag.render.fixes import write_fixes as write_fix_files

    if fixes_only and output != "text":
        raise UsageError(f"--fixes-only prints YAML: it cannot be combined with -o {output}")
    if write_fixes is not None:
        written = write_fix_files(report, write_fixes)
        sys.stderr.write(f"wrote {len(written)} fix file(s) to {write_fixes}\n")
    if fixes_only:
        sys.stdout.write(fixes_stream(report))
    elif output == "json":
        typer.echo(json.dumps(report.to_json(), indent=2))
    elif output == "junit":
        from diag.render.junit import report_junit

        sys.stdout.write(report_junit(report))
    else:
        from diag.render.report import print_report

        print_report(report, title=title, verbose=verbose)


def run(
    raw_targets: list[str],
    config: list[Path],
    *,
    mesh_config: Path | None = None,
    mode: str | None = None,
    namespace: str = "default",
    labels: str = "",
    dns_capture: bool = False,
    results: Path | None = None,
    expect: str = "allowed",
    output: str = "text",
    kubeconfig: str | None = None,
    context: str | None = None,
) -> Report:
    """The whole explain pipeline (no printing): validate flags, load (files, or the live cluster
    without ``config``), predict, diagnose."""
    from diag import assess
    from diag.model.dnsnames import namespace as dns_namespace
    from diag.model.snapshot import Snapshot
    from diag.predict.sidecar import Source
    from diag.report import Report, SourceInfo

    _check_flags(config, mesh_config, mode, output, expect)
    namespace = dns_namespace(namespace)
    notes: tuple[str, ...] = ()
    cluster_context = None
    if config:
        objects, mesh = _load(config, mesh_config)
    else:
        objects, mesh, notes, cluster_context = _load_live(kubeconfig, context, namespace, mesh_config)
    snapshot = Snapshot.build(objects, mesh)
    probe = _read_results(results) if results else None
    live = probe.sidecar if probe is not None else None
    source = Source(
        namespace=namespace,
        labels=_labels(labels),
        dns_capture=True if dns_capture else assess.live_dns(live),
        mesh_mode=mode.upper() if mode else None,
        istio_version=live.istio_version if live is not None else None,
    )
    dataplane = "none" if live is not None and not live.present else "sidecar"
    rows = assess.assess_targets(raw_targets, snapshot, source, objects, probe, results, expect, dataplane)
    return Report(
        source=SourceInfo(
            "offline", namespace, context=cluster_context, dataplane=dataplane,
            sidecar=assess.sidecar_json(probe),
        ),
        mesh=assess.mesh_info(snapshot, source, live),
        targets=tuple(rows),
        findings=tuple(assess.findings(snapshot, objects)),
        notes=notes,
    )


def _check_flags(
    config: list[Path], mesh_config: Path | None, mode: str | None, output: str, expect: str
) -> None:
    from diag.errors import UsageError

    if mesh_config is not None and mode is not None:
        raise UsageError("--mesh-config and --mode are mutually exclusive")
    if mode is not None and mode.upper() not in MODES:
        raise UsageError(f"--mode must be REGISTRY_ONLY or ALLOW_ANY, not {mode!r}")
    if output not in ("text", "json", "junit"):
        raise UsageError(f"-o must be text, json or junit, not {output!r}")
    if expect not in ("allowed", "blocked", "via-gateway"):
        raise UsageError(f"--expect must be allowed, blocked or via-gateway, not {expect!r}")


def _load(config: list[Path], mesh_config: Path | None) -> tuple[list[Resource], MeshConfig | None]:
    import sys

    from diag.model.loader import load_mesh_config, load_paths, require_loadable

    loaded = require_loadable(load_paths(config), sys.stderr.write)
    mesh = load_mesh_config(mesh_config) if mesh_config is not None else loaded.mesh
    return list(loaded.objects), mesh


def _load_live(
    kubeconfig: str | None, context: str | None, namespace: str, mesh_config: Path | None
) -> tuple[list[Resource], MeshConfig | None, tuple[str, ...], str]:
    """No ``--config``: the live cluster's mesh config, read-only (``diag.live.meshread``)."""
    from diag.live.meshread import load_live
    from diag.model.loader import load_mesh_config

    live = load_live(kubeconfig, context, namespace)
    mesh = load_mesh_config(mesh_config) if mesh_config is not None else live.mesh
    return live.objects, mesh, live.notes, live.context


def _labels(text: str) -> dict[str, str]:
    from diag.errors import UsageError

    out: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--labels: expected k=v, got {part!r}")
        out[key.strip()] = value.strip()
    return out


def _read_results(path: Path) -> ProbeReport:
    from diag.errors import InputError
    from probes.model import ProbeReport, from_json

    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text: a probe result is JSON") from None
    except OSError as exc:
        raise InputError(f"--results {path}: cannot read: {(exc.strerror or 'unreadable').lower()}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise InputError(f"{path}: not a `python -m probes` JSON result (no `results` list)")
    try:
        return from_json(ProbeReport, data)
    except (KeyError, TypeError, ValueError):
        problem = "a field is missing or has the wrong type"
        raise InputError(f"{path}: not a `python -m probes` JSON result: {problem}") from None


