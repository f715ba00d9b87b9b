"""The probe plan: what `meshprobe check` sends into the probe pod (``python -m probes --plan -``).

A plan is one JSON document (documented in docs/probe.md)::

    {"schema": "meshprobe.plan/v1",
     "targets": ["pypi.lab.example", {"target": "http://x.lab.example/", "expect": "blocked"},
                 {"target": "https://registry.lab.example/v2/", "accept_4xx": true}],
     "options": {"timeout": 5, "read_window": 0.5, "concurrency": 32, "ca_file": null,
                 "resolver": null, "resolve": {"a.lab.example": "10.0.0.1"},
                 "resolv_conf": "/etc/resolv.conf", "port_protocols": {"8080": "HTTP"},
                 "max_redirects": 10, "proxy": null, "expect": "allowed",
                 "capture_excluded_cidrs": [], "capture_excluded_ports": []},
     "sidecar": {"mode": "auto", "admin": "127.0.0.1:15000", "agent": "127.0.0.1:15021",
                 "status": "127.0.0.1:15020", "ready_timeout": 30, "collect_timeout": 5,
                 "quit": false, "native": null}}

Every key but ``targets`` is optional. Unknown keys are errors (a typo must not silently change
a probe). `load_plan` raises `PlanError` with a one-line message naming the key.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from collections.abc import Mapping
from typing import Any

from probes.options import ProbeOptions, parse_host_port

PLAN_SCHEMA = "meshprobe.plan/v1"
EXPECTATIONS = ("allowed", "blocked", "via-gateway")


class PlanError(ValueError):
    """A plan that cannot be used; the message names the problem."""


@dataclasses.dataclass(frozen=True)
class PlannedTarget:
    raw: str
    expect: str | None = None
    accept_4xx: bool = False  # an origin's HTTP 4xx counts as reached (`TargetSpec.accept_4xx`)


@dataclasses.dataclass(frozen=True)
class SidecarPlan:
    """How the probe treats the pod's sidecar (what the probe does in the pod: docs/probe-pod.md)."""

    mode: str = "auto"  # auto: detect, wait ready, collect; off: leave it alone
    admin: str = "127.0.0.1:15000"
    agent: str = "127.0.0.1:15021"
    status: str = "127.0.0.1:15020"
    ready_timeout: float = 30.0
    collect_timeout: float = 5.0
    quit: bool = False  # POST /quitquitquit at the end (only a pod meshprobe created, regular sidecar)
    native: bool | None = None  # the CLI knows from the pod spec


@dataclasses.dataclass(frozen=True)
class Plan:
    targets: tuple[PlannedTarget, ...]
    options: ProbeOptions = dataclasses.field(default_factory=ProbeOptions)
    sidecar: SidecarPlan = dataclasses.field(default_factory=SidecarPlan)
    expect: str | None = None  # default expectation for targets without one


_OPTION_TYPES: Mapping[str, type | tuple[type, ...]] = {
    "timeout": (int, float),
    "read_window": (int, float),
    "concurrency": int,
    "ca_file": (str, type(None)),
    "resolver": (str, type(None)),
    "resolve": dict,
    "resolv_conf": str,
    "port_protocols": dict,
    "max_redirects": int,
    "proxy": (str, type(None)),
    "capture_excluded_cidrs": list,
    "capture_excluded_ports": list,
    "sidecar_present": (bool, type(None)),
}
_SIDECAR_TYPES: Mapping[str, type | tuple[type, ...]] = {
    "mode": str,
    "admin": str,
    "agent": str,
    "status": str,
    "ready_timeout": (int, float),
    "collect_timeout": (int, float),
    "quit": bool,
    "native": (bool, type(None)),
}


def _shown(key: str) -> str:
    """A key as it may appear in a one-line message (anything unusual is quoted and escaped)."""
    return key if key.isidentifier() else repr(key)[:60]


def _checked(section: str, data: Any, types: Mapping[str, type | tuple[type, ...]]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise PlanError(f"plan: {section!r} must be an object")
    for key, value in data.items():
        if key not in types:
            raise PlanError(f"plan: unknown key {section}.{_shown(key)}")
        expected = types[key]
        if isinstance(value, bool) and expected in (int, (int, float)):
            raise PlanError(f"plan: {section}.{key} must be a number")
        if not isinstance(value, expected):
            raise PlanError(f"plan: {section}.{key} has the wrong type ({type(value).__name__})")
    return dict(data)


def _options(data: Any) -> tuple[ProbeOptions, str | None]:
    raw = dict(data) if isinstance(data, dict) else data
    expect = raw.pop("expect", None) if isinstance(raw, dict) else None
    fields = _checked("options", raw, _OPTION_TYPES)
    try:
        fields["port_protocols"] = {int(k): str(v) for k, v in fields.get("port_protocols", {}).items()}
        fields["resolve"] = {str(k).lower(): str(v) for k, v in fields.get("resolve", {}).items()}
        for address in fields["resolve"].values():
            ipaddress.ip_address(address)
        fields["capture_excluded_cidrs"] = tuple(str(c) for c in fields.get("capture_excluded_cidrs", ()))
        for cidr in fields["capture_excluded_cidrs"]:
            ipaddress.ip_network(cidr, strict=False)
        fields["capture_excluded_ports"] = tuple(int(p) for p in fields.get("capture_excluded_ports", ()))
        if any(not 0 < p < 65536 for p in fields["capture_excluded_ports"]):
            raise ValueError("capture_excluded_ports must be ports 1-65535")
        if fields.get("resolver"):
            parse_host_port(fields["resolver"], 53)
    except (ValueError, TypeError) as exc:
        raise PlanError(f"plan: bad option value: {' '.join(str(exc).split())[:120]}") from None
    for key in ("timeout", "read_window"):
        if fields.get(key, 1) <= 0:
            raise PlanError(f"plan: options.{key} must be > 0")
    if fields.get("concurrency", 1) < 1 or fields.get("max_redirects", 0) < 0:
        raise PlanError("plan: options.concurrency must be >= 1 and options.max_redirects >= 0")
    return ProbeOptions(**fields), _expectation(expect, "options.expect")


def _expectation(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if value not in EXPECTATIONS:
        raise PlanError(f"plan: {where} must be one of {', '.join(EXPECTATIONS)}")
    return str(value)


def _targets(data: Any) -> tuple[PlannedTarget, ...]:
    if not isinstance(data, list):
        raise PlanError("plan: 'targets' must be a list")
    out: list[PlannedTarget] = []
    for i, item in enumerate(data):
        if isinstance(item, str):
            out.append(PlannedTarget(item))
        elif (
            isinstance(item, dict)
            and isinstance(item.get("target"), str)
            and set(item) <= {"target", "expect", "accept_4xx"}
            and isinstance(item.get("accept_4xx", False), bool)
        ):
            expect = _expectation(item.get("expect"), f"targets[{i}].expect")
            out.append(PlannedTarget(item["target"], expect, item.get("accept_4xx", False)))
        else:
            raise PlanError(
                f'plan: targets[{i}] must be a string or {{"target": ..., "expect": ..., "accept_4xx": bool}}'
            )
    return tuple(out)


def plan_from_json(data: Any) -> Plan:
    """Build a `Plan` from parsed JSON; raises `PlanError`."""
    if not isinstance(data, dict):
        raise PlanError("plan: the document must be a JSON object")
    unknown = set(data) - {"schema", "targets", "options", "sidecar"}
    if unknown:
        raise PlanError(f"plan: unknown key {_shown(sorted(unknown)[0])}")
    if data.get("schema", PLAN_SCHEMA) != PLAN_SCHEMA:
        raise PlanError(f"plan: schema must be {PLAN_SCHEMA}")
    options, expect = _options(data.get("options", {}))
    sidecar = SidecarPlan(**_checked("sidecar", data.get("sidecar", {}), _SIDECAR_TYPES))
    if sidecar.mode not in ("auto", "off"):
        raise PlanError("plan: sidecar.mode must be auto or off")
    for key in ("admin", "agent", "status"):
        try:
            parse_host_port(getattr(sidecar, key), 0)
        except ValueError:
            raise PlanError(f"plan: sidecar.{key} must be IP:PORT") from None
    return Plan(targets=_targets(data.get("targets", [])), options=options, sidecar=sidecar, expect=expect)


def load_plan(text: str) -> Plan:
    """Parse a plan document; raises `PlanError` (one line) for bad JSON or content."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanError(f"plan: not JSON ({exc.msg} at line {exc.lineno})") from None
    return plan_from_json(data)


def _target_json(target: PlannedTarget) -> str | dict[str, Any]:
    if target.expect is None and not target.accept_4xx:
        return target.raw
    out: dict[str, Any] = {"target": target.raw}
    if target.expect is not None:
        out["expect"] = target.expect
    if target.accept_4xx:
        out["accept_4xx"] = True
    return out


def plan_to_json(plan: Plan) -> dict[str, Any]:
    """The JSON document for ``plan`` (what the CLI sends into the probe pod)."""
    options = dataclasses.asdict(plan.options)
    options["port_protocols"] = {str(k): v for k, v in plan.options.port_protocols.items()}
    options["resolve"] = dict(plan.options.resolve)
    options["capture_excluded_cidrs"] = list(plan.options.capture_excluded_cidrs)
    options["capture_excluded_ports"] = list(plan.options.capture_excluded_ports)
    if plan.expect is not None:
        options["expect"] = plan.expect
    targets: list[Any] = [_target_json(t) for t in plan.targets]
    return {
        "schema": PLAN_SCHEMA,
        "targets": targets,
        "options": options,
        "sidecar": dataclasses.asdict(plan.sidecar),
    }
