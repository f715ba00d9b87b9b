"""``python -m probes``: probe targets and print the `ProbeReport` JSON (stdlib argparse only).

    python -m probes TARGET... [--plan FILE|-] [--timeout S] [--concurrency N] [--ca-file PEM]
                     [--resolver IP[:PORT]] [--resolve HOST:ADDR]... [--sidecar auto|off]
                     [--admin HOST:PORT] [--quit-sidecar] [--sidecar-native yes|no] ...

Exit codes: 0 every target met its expectation (default: signature OK), 1 at least one did
not, 2 bad usage (a bad target, flag or plan: one ``error:`` line naming it), 4 the probe
itself failed. `ProbeFlags` + `build_plan` are shared with ``meshprobe probe`` (diag/commands/probe.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from probes.model import TargetSpec, to_json
from probes.options import parse_host_port
from probes.plan import EXPECTATIONS, Plan, PlanError, PlannedTarget, load_plan
from probes.runner import exit_code, run_plan
from probes.targets import TargetError, parse_target

EXIT_USAGE = 2
EXIT_INFRA = 4


class UsageProblem(ValueError):
    """Bad flags, targets or plan: a one-line message for exit code 2."""


@dataclasses.dataclass(frozen=True)
class ProbeFlags:
    """Command-line values; ``None`` means "not given" (the plan's value, else the default, applies)."""

    targets: tuple[str, ...] = ()
    plan_text: str | None = None
    timeout: float | None = None
    concurrency: int | None = None
    ca_file: str | None = None
    resolver: str | None = None
    resolve: tuple[str, ...] = ()  # "HOST:ADDR"
    resolv_conf: str | None = None
    read_window: float | None = None
    port_protocols: tuple[str, ...] = ()  # "PORT=PROTOCOL"
    expect: str | None = None
    sidecar: str | None = None  # auto | off
    admin: str | None = None
    quit_sidecar: bool = False
    sidecar_native: bool | None = None


def _resolve_entries(entries: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for entry in entries:
        host, sep, address = entry.partition(":")
        try:
            if not sep or not host:
                raise ValueError
            ipaddress.ip_address(address.strip("[]"))
        except ValueError:
            raise UsageProblem(
                f"invalid --resolve {entry!r}: expected HOST:ADDR with an IP address"
            ) from None
        out[host.lower()] = address.strip("[]")
    return out


def _port_protocols(entries: Sequence[str]) -> dict[int, str]:
    out: dict[int, str] = {}
    for entry in entries:
        port, sep, protocol = entry.partition("=")
        if not sep or not port.isdigit() or not 1 <= int(port) <= 65535 or not protocol:
            raise UsageProblem(f"invalid --port-protocol {entry!r}: expected PORT=PROTOCOL (e.g. 8080=HTTP)")
        out[int(port)] = protocol
    return out


def _options_from_flags(plan: Plan, flags: ProbeFlags) -> Plan:
    changes: dict[str, object] = {}
    for name in ("timeout", "concurrency", "ca_file", "resolver", "resolv_conf", "read_window"):
        value = getattr(flags, name)
        if value is not None:
            changes[name] = value
    if flags.timeout is not None and flags.timeout <= 0:
        raise UsageProblem("--timeout must be > 0")
    if flags.concurrency is not None and flags.concurrency < 1:
        raise UsageProblem("--concurrency must be >= 1")
    if flags.resolver is not None:
        try:
            parse_host_port(flags.resolver, 53)
        except ValueError:
            raise UsageProblem(f"invalid --resolver {flags.resolver!r}: expected IP[:PORT]") from None
    if flags.resolve:
        changes["resolve"] = {**plan.options.resolve, **_resolve_entries(flags.resolve)}
    if flags.port_protocols:
        changes["port_protocols"] = {**plan.options.port_protocols, **_port_protocols(flags.port_protocols)}
    sidecar_changes: dict[str, object] = {}
    if flags.sidecar is not None:
        sidecar_changes["mode"] = flags.sidecar
    if flags.admin is not None:
        sidecar_changes["admin"] = flags.admin
    if flags.quit_sidecar:
        sidecar_changes["quit"] = True
    if flags.sidecar_native is not None:
        sidecar_changes["native"] = flags.sidecar_native
    return dataclasses.replace(
        plan,
        options=dataclasses.replace(plan.options, **changes),  # type: ignore[arg-type]
        sidecar=dataclasses.replace(plan.sidecar, **sidecar_changes),  # type: ignore[arg-type]
        expect=flags.expect or plan.expect,
        targets=plan.targets + tuple(PlannedTarget(t) for t in flags.targets),
    )


def build_plan(flags: ProbeFlags) -> tuple[Plan, list[TargetSpec]]:
    """The plan and its parsed targets; raises `UsageProblem` (exit 2) naming what is wrong."""
    try:
        base = load_plan(flags.plan_text) if flags.plan_text is not None else Plan(targets=())
    except PlanError as exc:
        raise UsageProblem(str(exc)) from None
    plan = _options_from_flags(base, flags)
    if not plan.targets:
        raise UsageProblem("no targets: give TARGET... or a plan with targets")
    try:
        specs = [parse_target(t.raw, plan.options.port_protocols) for t in plan.targets]
    except TargetError as exc:
        raise UsageProblem(str(exc)) from None
    return plan, specs


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage dump): ``error: ...`` then exit 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"error: {message} (see python -m probes --help)\n")
        raise SystemExit(EXIT_USAGE)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m probes",
        description="Probe targets from inside the pod; "
        "print the ProbeReport JSON. Exit 0 all met expectations, 1 not, 2 usage.",
    )
    p.add_argument("targets", nargs="*", metavar="TARGET")
    p.add_argument(
        "--plan",
        metavar="FILE|-|env:VAR",
        help="a JSON plan (docs/probe.md); '-' reads stdin, env:VAR an environment variable",
    )
    p.add_argument("--timeout", type=float, metavar="S", help="per-phase timeout in seconds (default 5)")
    p.add_argument("--concurrency", type=int, metavar="N", help="targets probed at once (default 32)")
    p.add_argument("--ca-file", metavar="PEM", help="verify TLS against this CA bundle")
    p.add_argument("--resolver", metavar="IP[:PORT]", help="ask this DNS server (bypasses the pod's DNS)")
    p.add_argument("--resolve", action="append", default=[], metavar="HOST:ADDR", help="skip DNS for HOST")
    p.add_argument("--resolv-conf", metavar="PATH", help="resolv.conf to read (default /etc/resolv.conf)")
    p.add_argument("--read-window", type=float, metavar="S", help="tcp: wait this long for a banner")
    p.add_argument(
        "--port-protocol",
        action="append",
        default=[],
        metavar="PORT=PROTO",
        help="HOST:PORT targets on PORT speak PROTO (a ServiceEntry's port protocol)",
    )
    p.add_argument("--expect", choices=EXPECTATIONS, help="what every target should do (default allowed)")
    p.add_argument("--sidecar", choices=("auto", "off"), help="auto: detect, wait ready, collect (default)")
    p.add_argument("--admin", metavar="HOST:PORT", help="Envoy admin address (default 127.0.0.1:15000)")
    p.add_argument(
        "--quit-sidecar", action="store_true", help="POST /quitquitquit when done (regular sidecar)"
    )
    p.add_argument("--sidecar-native", choices=("yes", "no"), help="whether the sidecar is a native one")
    p.add_argument("--compact", action="store_true", help="print the JSON on one line")
    return p


def _flags(ns: argparse.Namespace) -> ProbeFlags:
    plan_text = None
    if ns.plan is not None:
        try:
            if ns.plan.startswith("env:"):
                plan_text = os.environ.get(ns.plan[4:])
                if plan_text is None:
                    raise UsageProblem(f"--plan {ns.plan}: the variable {ns.plan[4:]} is not set")
            else:
                plan_text = sys.stdin.read() if ns.plan == "-" else Path(ns.plan).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageProblem(f"cannot read plan {ns.plan}: {exc.strerror}") from None
    return ProbeFlags(
        targets=tuple(ns.targets),
        plan_text=plan_text,
        timeout=ns.timeout,
        concurrency=ns.concurrency,
        ca_file=ns.ca_file,
        resolver=ns.resolver,
        resolve=tuple(ns.resolve),
        resolv_conf=ns.resolv_conf,
        read_window=ns.read_window,
        port_protocols=tuple(ns.port_protocol),
        expect=ns.expect,
        sidecar=ns.sidecar,
        admin=ns.admin,
        quit_sidecar=ns.quit_sidecar,
        sidecar_native=None if ns.sidecar_native is None else ns.sidecar_native == "yes",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    try:
        ns = parser.parse_args(argv)
    except SystemExit as exc:  # argparse printed its usage line
        return EXIT_USAGE if exc.code else 0
    try:
        plan, specs = build_plan(_flags(ns))
        report = run_plan(plan, specs)
    except UsageProblem as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        return 130
    except Exception as exc:  # the probe must never show a traceback
        sys.stderr.write(f"error: probe failed: {type(exc).__name__}: {' '.join(str(exc).split())}\n")
        return EXIT_INFRA
    sys.stdout.write(json.dumps(to_json(report), indent=None if ns.compact else 2) + "\n")
    return exit_code(report)
