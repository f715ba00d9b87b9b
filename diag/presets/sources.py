"""Where a preset's hosts come from: the workload (`Sources.env`, `Sources.files`), else this
machine's package managers, asked at run time (`LocalPackageManagers`) — never a host name written
in meshprobe.

A workload is "given" when the caller passes its environment or its files (``meshprobe check
--like``); its settings then win, and its proxies apply. Without one, the local package manager's
own settings and defaults are used, and local proxies are ignored (they are this machine's, not
the pod's). Each question to a local package manager runs its own command with a timeout and
answers None when the tool is missing or fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from diag.presets.bundle import Reach

TIMEOUT = 10.0


@dataclass(frozen=True)
class Expansion:
    """What one preset expands to before proxies and entries: its reaches, notes, and the proxies
    its package manager's own settings name (scheme → proxy URL)."""

    reaches: tuple[Reach, ...]
    notes: tuple[str, ...] = ()
    proxies: Mapping[str, str] = field(default_factory=dict)


class LocalPackageManagers:
    """Answers from this machine's pip, npm, apt and Maven settings (tests substitute a fake)."""

    def pip_default(self) -> tuple[str, str] | None:
        """(index URL, file host) of pip's own default index, from pip itself."""
        try:
            from pip._internal.models.index import PyPI
        except ImportError:
            return None
        return str(PyPI.simple_url), str(PyPI.file_storage_domain)

    def pip_config(self) -> dict[str, str]:
        """``pip config list``: ``{"global.index-url": ..., ":env:.index-url": ...}``."""
        out = _run([sys.executable, "-m", "pip", "config", "list"])
        found = (re.match(r"^([^=\s]+)=(['\"])(.*)\2$", line.strip()) for line in (out or "").splitlines())
        return {m.group(1): m.group(3) for m in found if m}

    def npm_config(self) -> dict[str, str]:
        """``npm config list --json``: the effective npm settings (registries, proxies)."""
        out = _run(["npm", "config", "list", "--json"])
        try:
            data = json.loads(out) if out else {}
        except json.JSONDecodeError:
            return {}
        return (
            {str(k): str(v) for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}
        )

    def npm_default_registry(self) -> str | None:
        """npm's built-in registry: ``npm config get registry`` without config files or npm_config_*."""
        env = {k: v for k, v in os.environ.items() if not k.lower().startswith("npm_config_")}
        with tempfile.TemporaryDirectory() as tmp:
            empty = Path(tmp) / "npmrc"
            empty.write_text("")
            argv = ["npm", "config", "get", "registry", f"--userconfig={empty}", f"--globalconfig={empty}"]
            out = _run(argv, env=env, cwd=tmp)
        value = (out or "").strip()
        return value if value.startswith(("https://", "http://")) else None

    def apt_sources(self) -> dict[str, str]:
        """The sources apt reads (where ``apt-config dump`` says they are), path → text."""
        conf = _run(["apt-config", "dump"]) or ""
        values = dict(re.findall(r'^(Dir(?:::Etc(?:::sourcelist|::sourceparts)?)?) "([^"]*)";', conf, re.M))
        root = Path(values.get("Dir", "/"))
        etc = root / values.get("Dir::Etc", "etc/apt")
        paths = [etc / values.get("Dir::Etc::sourcelist", "sources.list")]
        parts = etc / values.get("Dir::Etc::sourceparts", "sources.list.d")
        if parts.is_dir():
            paths += sorted(p for p in parts.iterdir() if p.suffix in (".list", ".sources"))
        return _read_all(paths)

    def maven_settings(self) -> dict[str, str]:
        homes = [Path.home() / ".m2"]
        homes += [Path(os.environ[v]) / "conf" for v in ("MAVEN_HOME", "M2_HOME") if os.environ.get(v)]
        return _read_all([h / "settings.xml" for h in homes])


def _run(argv: list[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None) -> str | None:
    if shutil.which(argv[0]) is None and argv[0] != sys.executable:
        return None
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, check=False,
                              env=dict(env) if env is not None else None, cwd=cwd)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def _read_all(paths: list[Path]) -> dict[str, str]:
    out: dict[str, str] = {}
    for path in paths:
        try:
            out[str(path)] = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
    return out


@dataclass(frozen=True)
class Sources:
    """Everything a preset may read. ``env``/``files``: the workload's (None: not read); ``urls``:
    from ``NAME=URL[,URL...]``; ``github_meta``: GitHub's meta document when the caller has it;
    ``network``: whether a preset may fetch what it needs (only GitHub's meta document)."""

    env: Mapping[str, str] | None = None
    files: Mapping[str, str] | None = None
    urls: tuple[str, ...] = ()
    local: Any = field(default_factory=LocalPackageManagers)
    github_meta: Mapping[str, Any] | None = None
    network: bool = False

    @property
    def workload(self) -> bool:
        return self.env is not None or self.files is not None

    def getenv(self, name: str) -> str | None:
        """A variable of the workload's environment, else (no workload) this process's."""
        env = self.env if self.env is not None else (os.environ if not self.workload else {})
        value = env.get(name)
        return value if value else None

    def files_named(self, *names: str) -> dict[str, str]:
        """The workload's files whose base name is one of ``names`` (path → text)."""
        return {p: t for p, t in (self.files or {}).items() if PurePosixPath(p).name in names}
