"""The package-manager presets ``pip``, ``npm`` and ``apt``: their hosts are read at run time.

Order, first found wins (see `diag.presets.sources` for "workload" and "local"):

- ``pip``: ``PIP_INDEX_URL``/``PIP_EXTRA_INDEX_URL``/``PIP_FIND_LINKS``, then ``index-url``,
  ``extra-index-url`` and ``find-links`` in the workload's ``pip.conf``/``pip.ini`` (or the file
  ``PIP_CONFIG_FILE`` names) — locally ``pip config list`` — then pip's own default index and the
  host it serves files from. A custom index is assumed to serve its files itself (a note says so).
- ``npm``: ``NPM_CONFIG_REGISTRY`` and ``npm_config_@SCOPE:registry``, then ``registry`` and
  ``@SCOPE:registry`` in ``.npmrc``/``npmrc`` files — locally ``npm config list --json`` — then
  npm's built-in registry (``npm config get registry`` with no config).
- ``apt``: ``deb``/``deb-src`` lines of ``sources.list`` files and deb822 ``.sources`` files
  (``URIs:``, ``Enabled: no`` honoured) — locally the files ``apt-config dump`` points at.

Proxies named in the same settings (pip ``proxy``, npm ``proxy``/``https-proxy``, apt
``Acquire::http(s)::Proxy``) are returned for the caller to apply. Only http(s) locations are
network hosts: ``file:``, ``cdrom:`` and local paths are skipped with a note.
"""

from __future__ import annotations

import configparser
import re
from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath

from diag.presets.bundle import PresetError, Reach, url_reach
from diag.presets.sources import Expansion, Sources

_PIP_SECTIONS = ("global", "install", "download")


def _urls(values: Iterable[str], what: str, notes: list[str]) -> list[Reach]:
    reaches: list[Reach] = []
    for value in values:
        for url in value.split():
            if url.startswith(("https://", "http://")):
                try:
                    reaches.append(url_reach(url, what))
                except PresetError as exc:
                    notes.append(f"{what}: {exc.message}: skipped")
            elif "://" in url or url.startswith("file:"):
                notes.append(f"a {what} at a {url.split(':', 1)[0]}: URL is not a network host: skipped")
    return reaches


# ---- pip --------------------------------------------------------------------------------------


def pip(src: Sources) -> Expansion:
    settings = _pip_settings(src)
    notes: list[str] = []
    index = _urls([settings["index-url"]] if "index-url" in settings else [], "pip index", notes)
    extra = _urls([settings.get("extra-index-url", ""), settings.get("find-links", "")], "pip index", notes)
    reaches = index + extra
    if "index-url" not in settings:
        default = src.local.pip_default()
        if default is None:
            notes.append("pip is not installed here, so its default index is unknown: use --preset pip=URL")
        else:
            url, files_host = default
            reaches = [
                url_reach(url, "pip index"),
                url_reach(f"https://{files_host}/", "pip files"),
                *reaches,
            ]
    if reaches and "index-url" in settings:
        notes.append("a custom index is assumed to serve its files itself; if its pages link to another "
                     "host, add it: --preset pip=INDEX_URL,FILES_URL")  # fmt: skip
    proxy = settings.get("proxy")
    return Expansion(tuple(reaches), tuple(notes), {"http": proxy, "https": proxy} if proxy else {})


def _pip_settings(src: Sources) -> dict[str, str]:
    """index-url, extra-index-url, find-links, proxy: the environment first, then config files."""
    out: dict[str, str] = {}
    if src.workload:
        named = src.getenv("PIP_CONFIG_FILE")
        files = {p: t for p, t in (src.files or {}).items()
                 if PurePosixPath(p).name in ("pip.conf", "pip.ini") or p == named}  # fmt: skip
        for _, text in sorted(files.items(), key=lambda kv: kv[0] == named):  # PIP_CONFIG_FILE last, wins
            out.update(_pip_conf(text))
    else:
        for key, value in sorted(src.local.pip_config().items(), key=lambda kv: kv[0].startswith(":env:")):
            section, _, name = key.partition(".")
            if section in (*_PIP_SECTIONS, ":env:"):
                out[name] = value
    for name in ("index-url", "extra-index-url", "find-links", "proxy"):
        value = src.getenv("PIP_" + name.upper().replace("-", "_"))
        if value:
            out[name] = value
    return out


def _pip_conf(text: str) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error:
        return {}
    out: dict[str, str] = {}
    for section in _PIP_SECTIONS:
        if parser.has_section(section):
            out.update({k: " ".join(v.split()) for k, v in parser.items(section)})
    return out


# ---- npm --------------------------------------------------------------------------------------


def npm(src: Sources) -> Expansion:
    settings = _npm_settings(src)
    notes: list[str] = []
    registries = [v for k, v in sorted(settings.items()) if k == "registry" or k.endswith(":registry")]
    if "registry" not in settings:
        default = src.local.npm_default_registry()
        if default is None:
            notes.append(
                "npm is not installed here, so its default registry is unknown: use --preset npm=URL"
            )
        else:
            registries.insert(0, default)
    reaches = _urls(registries, "npm registry", notes)
    proxies = {s: settings[k] for s, k in (("http", "proxy"), ("https", "https-proxy")) if settings.get(k)}
    return Expansion(tuple(reaches), tuple(notes), proxies)


def _npm_settings(src: Sources) -> dict[str, str]:
    out: dict[str, str] = {}
    if src.workload:
        for _, text in sorted(src.files_named(".npmrc", "npmrc").items(), key=lambda kv: _npmrc_rank(kv[0])):
            out.update(_npmrc(text))
        env = src.env or {}
        for key, value in env.items():
            if key.lower().startswith("npm_config_") and value:
                out[key[len("npm_config_") :].lower().replace("_", "-")] = value
    else:
        local = src.local.npm_config()
        out.update({k: v for k, v in local.items() if k in ("registry", "proxy", "https-proxy")
                    or k.endswith(":registry")})  # fmt: skip
    return out


def _npmrc_rank(path: str) -> int:
    """npm reads builtin < global (/etc/npmrc, PREFIX/etc/npmrc) < user (~/.npmrc) < project."""
    if PurePosixPath(path).name == "npmrc":
        return 0
    return 1 if "/home/" in path or path.startswith(("/root/", "~")) else 2


def _npmrc(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")) or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key, value = key.strip().lower(), value.strip().strip("\"'")
        if key.startswith("//") or "${" in value:
            continue  # credentials for a registry, or a value from the environment we cannot see
        out[key] = value
    return out


# ---- apt --------------------------------------------------------------------------------------


def apt(src: Sources) -> Expansion:
    files = _apt_files(src.files) if src.files is not None else src.local.apt_sources()
    notes: list[str] = []
    uris: list[str] = []
    for path, text in sorted(files.items()):
        found = _deb822_uris(text) if path.endswith(".sources") else _one_line_uris(text)
        for uri in found:
            scheme = uri.split(":", 1)[0]
            if scheme.startswith("mirror+"):
                notes.append(f"{path}: {scheme} source: the mirror list's host is added; the mirrors it "
                             "lists are not known here")  # fmt: skip
                uri = uri[len("mirror+") :]
            uris.append(uri)
    if not files:
        where = "in the workload's files" if src.files is not None else "on this machine"
        notes.append(f"no apt sources found {where}: use --preset apt=URL")
    reaches = _urls(uris, "apt source", notes)
    proxies = _apt_proxies(src.files or {}) if src.files is not None else {}
    return Expansion(tuple(reaches), tuple(notes), proxies)


def _apt_files(files: Mapping[str, str]) -> dict[str, str]:
    out = {}
    for path, text in files.items():
        p = PurePosixPath(path)
        if p.name == "sources.list" or (
            p.parent.name == "sources.list.d" and p.suffix in (".list", ".sources")
        ):
            out[path] = text
    return out


def _one_line_uris(text: str) -> list[str]:
    uris = []
    for line in text.splitlines():
        words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()  # options: [arch=... signed-by=...]
        if len(words) >= 2 and words[0] in ("deb", "deb-src"):
            uris.append(words[1])
    return uris


def _deb822_uris(text: str) -> list[str]:
    uris: list[str] = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = ""
        for line in stanza.splitlines():
            if line.startswith("#"):
                continue
            if line[:1] in (" ", "\t") and key:
                fields[key] += " " + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                fields[key] = value.strip()
        if fields.get("enabled", "yes").lower() == "no":
            continue
        uris += fields.get("uris", "").split()
    return uris


def _apt_proxies(files: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for path, text in sorted(files.items()):
        p = PurePosixPath(path)
        if p.name == "apt.conf" or p.parent.name == "apt.conf.d":
            for scheme, url in re.findall(r'Acquire::(https?)::Proxy\s+"([^"]+)"\s*;', text, re.I):
                if url.upper() != "DIRECT":
                    out[scheme.lower()] = url
    return out
