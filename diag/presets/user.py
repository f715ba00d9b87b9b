"""User presets: ``~/.config/meshprobe/presets.yaml`` (or ``$XDG_CONFIG_HOME/meshprobe/presets.yaml``).

    presets:
      artifacts:                       # the name: lower-case letters, digits and dashes
        summary: our artifact store    # optional, shown by `meshprobe presets`
        targets:                       # targets, written as on the command line
          - https://artifacts.corp.example/
          - tcp://git.corp.example:22
        addresses:                     # CIDRs for tcp:// targets, by host (no entry without them)
          git.corp.example: [10.20.0.0/24]
        notes: [ask #platform before adding hosts]

The bundle is built from the targets with the same safety rules as the built-in presets
(`diag.presets.bundle`); a user preset cannot replace a built-in one. Problems name the file and
the key and exit 2.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diag.errors import InputError
from diag.presets.bundle import Reach, check_cidr, tcp_reach

NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$")
KEYS = frozenset({"summary", "targets", "addresses", "notes"})


@dataclass(frozen=True)
class UserPreset:
    name: str
    summary: str
    reaches: tuple[Reach, ...]
    notes: tuple[str, ...] = ()
    path: str = ""


def default_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "meshprobe" / "presets.yaml"


def load_user_presets(
    path: Path | str | None = None, *, reserved: frozenset[str] = frozenset()
) -> dict[str, UserPreset]:
    """The presets in ``path`` (default `default_path()`); a missing file means none."""
    import yaml

    where = Path(path) if path is not None else default_path()
    try:
        text = where.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{where}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise InputError(f"{where}: not valid YAML{at}") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or set(data) != {"presets"} or not isinstance(data["presets"], dict):
        raise InputError(f"{where}: expected one key `presets` holding a mapping of name → preset")
    return {str(n): _preset(where, str(n), body, reserved) for n, body in data["presets"].items()}


def _preset(where: Path, name: str, body: Any, reserved: frozenset[str]) -> UserPreset:
    at = f"{where}: presets.{name}"
    if not NAME.match(name):
        raise InputError(f"{at}: a preset name is lower-case letters, digits and dashes")
    if name in reserved:
        raise InputError(f"{at}: {name!r} is a built-in preset; choose another name")
    if not isinstance(body, dict):
        raise InputError(f"{at}: expected a mapping with `targets`")
    unknown = sorted(set(map(str, body)) - KEYS)
    if unknown:
        raise InputError(f"{at}: unknown key {unknown[0]!r} (known: {', '.join(sorted(KEYS))})")
    targets = body.get("targets")
    if not isinstance(targets, list) or not targets or not all(isinstance(t, str) for t in targets):
        raise InputError(f"{at}.targets: expected a non-empty list of targets")
    addresses = _addresses(at, body.get("addresses") or {})
    notes = body.get("notes") or []
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        raise InputError(f"{at}.notes: expected a list of strings")
    reaches = tuple(_reach(at, t, addresses) for t in targets)
    return UserPreset(name, str(body.get("summary") or ""), reaches, tuple(notes), str(where))


def _addresses(at: str, raw: Any) -> Mapping[str, tuple[str, ...]]:
    if not isinstance(raw, dict):
        raise InputError(f"{at}.addresses: expected a mapping of host → list of CIDRs")
    out: dict[str, tuple[str, ...]] = {}
    for host, cidrs in raw.items():
        checked = [check_cidr(str(c)) for c in cidrs] if isinstance(cidrs, list) else [None]
        if not checked or None in checked:
            raise InputError(
                f"{at}.addresses.{host}: expected a list of CIDRs, none broader than /8 (IPv6 /16)"
            )
        out[str(host).lower()] = tuple(c for c in checked if c)
    return out


def _reach(at: str, raw: str, addresses: Mapping[str, tuple[str, ...]]) -> Reach:
    from probes.targets import TargetError, parse_target

    try:
        spec = parse_target(raw)
    except TargetError as exc:
        raise InputError(f"{at}.targets: {exc}") from None
    if spec.protocol.value == "tcp":
        return tcp_reach(spec.host, spec.port, "user preset", addresses.get(spec.host, ()))
    return Reach(raw, spec.host, spec.port, spec.protocol.value.upper(), "user preset")
