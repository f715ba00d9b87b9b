"""Presets: a name that expands to probe targets plus the ServiceEntry bundle that makes them pass.

    expand_preset("pip", env=pod_env, files=pod_files) -> Preset(name, targets, bundle, notes, entries)

Built in: ``git`` (GitHub over HTTPS and SSH), ``docker-hub``, ``ghcr``, ``go``, ``maven``
(`diag.presets.fixed`) and the package managers ``pip``, ``apt``, ``npm``, whose hosts are read at
run time (`diag.presets.managers`); users add their own in ``~/.config/meshprobe/presets.yaml``
(`diag.presets.user`). ``NAME=URL[,URL...]`` replaces a built-in preset's hosts with the URLs'
(a mirror, a private index). A workload's ``HTTP(S)_PROXY``/``NO_PROXY`` (and proxies in its
package manager's settings) turn the hosts they cover into the proxy.

HTTP(S) targets of a preset count an origin's 4xx as reached (`Preset.planned_targets`, the
plan's ``accept_4xx``): a registry answering 401 at ``/v2/`` was reached. The bundle follows
`diag.presets.bundle`'s safety rules; a target no safe entry can cover has ``None`` in
``entries`` and a note. See docs/presets.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diag.presets import fixed, managers
from diag.presets.bundle import PresetError, Reach, service_entry, tcp_reach, url_reach
from diag.presets.sources import Expansion, LocalPackageManagers, Sources
from diag.presets.user import UserPreset, default_path
from diag.presets.user import load_user_presets as _load_user

__all__ = [
    "BUILTINS",
    "Builtin",
    "LocalPackageManagers",
    "Preset",
    "PresetError",
    "UserPreset",
    "default_path",
    "expand_preset",
    "load_user_presets",
]


@dataclass(frozen=True)
class Preset:
    """An expanded preset. ``entries[i]`` names the bundle entry that lets ``targets[i]`` through
    (None: no safe entry could be written; ``notes`` say why)."""

    name: str
    targets: tuple[str, ...]
    bundle: tuple[dict[str, Any], ...]
    notes: tuple[str, ...]
    entries: tuple[str | None, ...] = ()

    def planned_targets(self) -> tuple[Any, ...]:
        """The targets for a probe plan (`probes.plan.PlannedTarget`), HTTP(S) ones with ``accept_4xx``."""
        from probes.plan import PlannedTarget

        return tuple(PlannedTarget(t, accept_4xx=t.startswith(("http://", "https://"))) for t in self.targets)

    def bundle_yaml(self) -> str:
        """The bundle as a YAML stream for ``kubectl apply -f -`` (notes as comments)."""
        from diag.rules.fixes import render

        head = [f"# meshprobe preset {self.name}: apply with `kubectl apply -n NAMESPACE -f -`"]
        head += [f"# note: {' '.join(n.split())}" for n in self.notes]
        return "\n".join(head) + "\n" + ("---\n" + render(self.bundle) if self.bundle else "")


@dataclass(frozen=True)
class Builtin:
    name: str
    summary: str
    hosts_from: str
    expand: Callable[[Sources], Expansion]


BUILTINS: Mapping[str, Builtin] = {
    b.name: b
    for b in (
        Builtin("git", "GitHub over HTTPS and SSH", "fixed; SSH by GitHub's published ranges", fixed.git),
        Builtin("docker-hub", "Docker Hub registry", "fixed", fixed.docker_hub),
        Builtin("ghcr", "GitHub container registry", "fixed", fixed.ghcr),
        Builtin(
            "go", "Go module proxy and checksum database", "GOPROXY, GOSUMDB, else Go's defaults", fixed.go
        ),
        Builtin("maven", "Maven repositories", "settings.xml mirrors, else Maven Central", fixed.maven),
        Builtin(
            "pip", "Python package index", "PIP_* env, pip.conf, else pip's default (run time)", managers.pip
        ),
        Builtin("apt", "Debian/Ubuntu package sources", "apt sources (run time)", managers.apt),
        Builtin("npm", "npm registry", "NPM_CONFIG_*, .npmrc, else npm's default (run time)", managers.npm),
    )
}


def load_user_presets(path: Path | str | None = None) -> dict[str, UserPreset]:
    """User presets from ``path`` (default ``~/.config/meshprobe/presets.yaml``); exit 2 on a bad file."""
    return _load_user(path, reserved=frozenset(BUILTINS))


def expand_preset(
    spec: str,
    *,
    env: Mapping[str, str] | None = None,
    files: Mapping[str, str] | None = None,
    user_presets: Mapping[str, UserPreset] | None = None,
    github_meta: Mapping[str, Any] | None = None,
    network: bool = False,
    local: Any = None,
) -> Preset:
    """Expand ``NAME`` or ``NAME=URL[,URL...]``.

    ``env``/``files``: the workload's environment and config files (path → text; None when not
    read) — without them this machine's package managers answer. ``user_presets``: default, the
    user's file. ``github_meta``: GitHub's meta document (else ``MESHPROBE_GITHUB_META``, else
    fetched only with ``network=True``). ``local``: a stand-in for `LocalPackageManagers` (tests).
    Raises `PresetError` (exit 2) for an unknown name or a bad URL.
    """
    name, _, rest = spec.strip().partition("=")
    name = name.strip().lower()
    urls = tuple(u.strip() for u in rest.split(",") if u.strip())
    if "=" in spec and not urls:
        raise PresetError(f"--preset {spec!r}: expected NAME=URL[,URL...]")
    src = Sources(env, files, urls, local or LocalPackageManagers(), github_meta, network)
    if name in BUILTINS:
        expansion = _given(name, urls) if urls else BUILTINS[name].expand(src)
    else:
        users = user_presets if user_presets is not None else load_user_presets()
        if name not in users:
            known = ", ".join([*BUILTINS, *sorted(users)])
            raise PresetError(f"unknown preset {name!r} (known: {known})", hint="see `meshprobe presets`")
        if urls:
            raise PresetError(f"preset {name!r} is a user preset: it takes no URL")
        expansion = Expansion(users[name].reaches, users[name].notes)
    return _assemble(name, expansion, src)


def _given(name: str, urls: tuple[str, ...]) -> Expansion:
    notes = ["hosts from the command line"]
    if name == "git":
        notes.append("SSH is left out: the published address ranges are GitHub's, not this host's")
    return Expansion(tuple(url_reach(u, "given", keep_path=False) for u in urls), tuple(notes))


def _assemble(name: str, expansion: Expansion, src: Sources) -> Preset:
    reaches, notes = _through_proxies(expansion, src)
    reaches = list({r.target: r for r in reaches}.values())
    bundle: dict[str, dict[str, Any]] = {}
    entries: list[str | None] = []
    for reach in reaches:
        entry, why = service_entry(name, reach)
        entries.append(entry["metadata"]["name"] if entry else None)
        if entry is not None:
            bundle.setdefault(entry["metadata"]["name"], entry)
        elif why:
            notes.append(why)
    if not reaches:
        notes.append("no targets: nothing to probe")
    return Preset(name, tuple(r.target for r in reaches), tuple(bundle.values()),
                  tuple(dict.fromkeys(notes)), tuple(entries))  # fmt: skip


# ---- proxies ----------------------------------------------------------------------------------


def _through_proxies(expansion: Expansion, src: Sources) -> tuple[list[Reach], list[str]]:
    """Replace the HTTP(S) reaches a proxy covers with the proxy itself (plain TCP to it)."""
    notes = list(expansion.notes)
    proxies = dict(expansion.proxies) if src.files is not None else {}
    if src.env is not None:
        for scheme in ("http", "https"):
            found = _env_proxy(src.env, scheme)
            if found and scheme not in proxies:
                proxies[scheme] = found
    out: list[Reach] = []
    no_proxy = _env(src.env or {}, "no_proxy")
    for reach in expansion.reaches:
        proxy = proxies.get(reach.protocol.lower()) if reach.protocol in ("HTTP", "HTTPS") else None
        if not proxy or _bypassed(reach.host, no_proxy):
            out.append(reach)
            continue
        try:
            via = url_reach(proxy if "://" in proxy else f"http://{proxy}", "proxy")
        except PresetError:
            notes.append("a proxy setting is not a URL: ignored")
            out.append(reach)
            continue
        out.append(tcp_reach(via.host, via.port, "proxy"))
        notes.append(f"{reach.host} is reached through the proxy {via.host}:{via.port} (plain TCP to it)")
    return out, notes


def _env(env: Mapping[str, str], name: str) -> str:
    return env.get(name) or env.get(name.upper()) or ""


def _env_proxy(env: Mapping[str, str], scheme: str) -> str:
    return _env(env, f"{scheme}_proxy") or _env(env, "all_proxy")


def _bypassed(host: str, no_proxy: str) -> bool:
    for item in (i.strip().lower() for i in no_proxy.split(",")):
        item = item.split(":", 1)[0] if item.count(":") == 1 else item
        if item == "*" or (item and (host == item.lstrip(".") or host.endswith("." + item.lstrip(".")))):
            return True
    return False
