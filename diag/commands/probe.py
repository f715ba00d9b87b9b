"""The `meshprobe probe` command: run the data-plane probe here (same options as ``python -m probes``)
and print the result as a Rich table (``-o text``) or the ProbeReport JSON (``-o json``).

Exit codes: 0 every target met its expectation, 1 at least one did not (the probe does not
diagnose: `check`/`explain` tell mesh failures (1) from others (3)), 2 a bad target, flag or plan.
Only typer and the standard library are imported at module level.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

OUTPUTS = ("text", "json")


def register(app: typer.Typer) -> None:
    """Add `meshprobe probe` to the app."""
    app.command("probe")(probe)


def _plan_text(plan: str | None) -> str | None:
    from diag.errors import UsageError

    if plan is None:
        return None
    try:
        return sys.stdin.read() if plan == "-" else Path(plan).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read plan {plan}: {exc.strerror}") from None


def _check_ca_file(ca_file: str | None) -> None:
    """A CA bundle that cannot be used is bad input: say so before probing, not as a TLS failure
    of every target."""
    import ssl

    from diag.errors import UsageError

    if ca_file is None:
        return
    path = Path(ca_file)
    if not path.is_file():
        reason = "no such file" if not path.exists() else "not a file"
        raise UsageError(f"--ca-file {ca_file}: {reason}", hint="give a PEM bundle of CA certificates")
    try:
        ssl.create_default_context(cafile=ca_file)
    except ssl.SSLError:  # before OSError: an SSLError is one
        raise UsageError(f"--ca-file {ca_file}: no PEM certificates in it",
                         hint="give a PEM bundle of CA certificates") from None  # fmt: skip
    except OSError as exc:
        reason = (exc.strerror or "unreadable").lower()
        raise UsageError(f"--ca-file {ca_file}: cannot read it: {reason}") from None


def probe(
    targets: Annotated[
        list[str] | None,
        typer.Argument(help="HOST, HOST:PORT, http(s)://..., tls://HOST:PORT, tcp://HOST:PORT"),
    ] = None,
    plan: Annotated[
        str | None, typer.Option("--plan", help="A JSON plan (docs/probe.md); '-' reads stdin.")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Per-phase timeout in seconds (5).")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", help="Targets probed at once (32).")
    ] = None,
    ca_file: Annotated[
        str | None, typer.Option("--ca-file", help="Verify TLS against this PEM bundle.")
    ] = None,
    resolver: Annotated[
        str | None, typer.Option("--resolver", help="Ask this DNS server: IP[:PORT].")
    ] = None,
    resolve: Annotated[
        list[str] | None, typer.Option("--resolve", help="HOST:ADDR, skip DNS for HOST (repeatable).")
    ] = None,
    port_protocol: Annotated[
        list[str] | None, typer.Option("--port-protocol", help="PORT=PROTOCOL for HOST:PORT targets.")
    ] = None,
    expect: Annotated[str | None, typer.Option("--expect", help="allowed, blocked or via-gateway.")] = None,
    sidecar: Annotated[str | None, typer.Option("--sidecar", help="auto (default) or off.")] = None,
    admin: Annotated[str | None, typer.Option("--admin", help="Envoy admin HOST:PORT.")] = None,
    quit_sidecar: Annotated[
        bool, typer.Option("--quit-sidecar", help="POST /quitquitquit when done.")
    ] = False,
    sidecar_native: Annotated[
        str | None, typer.Option("--sidecar-native", help="yes or no: is the sidecar a native one?")
    ] = None,
    output: Annotated[str, typer.Option("-o", "--output", help="text or json.")] = "text",
) -> None:
    """Probe targets from here: DNS, TCP, TLS, HTTP, with the sidecar's evidence when there is one.

    Examples:

    \b
      meshprobe probe pkg.example.com tcp://db.example.com:5432
      meshprobe probe https://api.example.com/health --expect blocked
      meshprobe probe --plan plan.json -o json > probe.json
    """
    from diag.errors import UsageError
    from probes.cli import ProbeFlags, UsageProblem, build_plan
    from probes.model import to_json
    from probes.runner import exit_code, run_plan

    if output not in OUTPUTS:
        raise UsageError(f"invalid --output {output!r}: use text or json")
    if sidecar is not None and sidecar not in ("auto", "off"):
        raise UsageError(f"invalid --sidecar {sidecar!r}: use auto or off")
    if sidecar_native is not None and sidecar_native not in ("yes", "no"):
        raise UsageError(f"invalid --sidecar-native {sidecar_native!r}: use yes or no")
    if expect is not None and expect not in ("allowed", "blocked", "via-gateway"):
        raise UsageError(f"invalid --expect {expect!r}: use allowed, blocked or via-gateway")
    _check_ca_file(ca_file)
    flags = ProbeFlags(
        targets=tuple(targets or ()),
        plan_text=_plan_text(plan),
        timeout=timeout,
        concurrency=concurrency,
        ca_file=ca_file,
        resolver=resolver,
        resolve=tuple(resolve or ()),
        port_protocols=tuple(port_protocol or ()),
        expect=expect,
        sidecar=sidecar,
        admin=admin,
        quit_sidecar=quit_sidecar,
        sidecar_native=None if sidecar_native is None else sidecar_native == "yes",
    )
    try:
        probe_plan, specs = build_plan(flags)
    except UsageProblem as exc:
        raise UsageError(str(exc)) from None
    report = run_plan(probe_plan, specs)
    if output == "json":
        typer.echo(json.dumps(to_json(report), indent=2))
    else:
        from diag.render.probe import print_probe_report

        print_probe_report(report)
    raise SystemExit(exit_code(report))
