"""Presets for public services with fixed names: ``git`` (GitHub), ``docker-hub``, ``ghcr``, ``go``
and ``maven``. Each honours the settings that move it elsewhere (``GOPROXY``/``GOSUMDB``, Maven
mirrors in ``settings.xml``) and ``NAME=URL`` (handled by the caller) for a mirror.

GitHub's SSH entry matches by address: GitHub publishes the ranges its git service answers from
(the ``git`` list of its meta API, ``https://api.github.com/meta``), and an entry with those CIDRs,
port 22, protocol TCP and ``resolution: NONE`` lets SSH through to GitHub and nowhere else. The
ranges are read at run time — from ``github_meta`` given by the caller, a saved copy of the meta
document named by ``MESHPROBE_GITHUB_META``, or (only when the caller allows the network) GitHub
itself — and never written here, because they change. When none is available the bundle has no
SSH entry and a note says why.
"""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from diag.presets.bundle import PresetError, Reach, check_cidr, tcp_reach, url_reach
from diag.presets.sources import Expansion, Sources

GITHUB = "github.com"
GITHUB_SSH_ENTRY_HOST = "ssh.github.com"  # the entry's name; it matches by address (see above)
GITHUB_META_URL = "https://api.github.com/meta"
GITHUB_META_ENV = "MESHPROBE_GITHUB_META"
IMAGE_PULL_NOTE = (
    "image pulls by the kubelet run on the node, outside the mesh: this preset is for pods that talk "
    "to the registry themselves (image builders, crane, skopeo)"
)
GO_DEFAULT_PROXY = "https://proxy.golang.org,direct"  # Go's documented default GOPROXY
GO_DEFAULT_SUMDB = "sum.golang.org"  # and GOSUMDB
MAVEN_CENTRAL = "https://repo.maven.apache.org/maven2/"  # the super POM's `central`


def git(src: Sources) -> Expansion:
    reaches = [url_reach(f"https://{GITHUB}/", "git over HTTPS", keep_path=True)]
    cidrs, note = github_git_cidrs(src)
    if cidrs:
        reaches.append(tcp_reach(GITHUB, 22, "git over SSH", cidrs, GITHUB_SSH_ENTRY_HOST))
        note = (
            f"the SSH entry matches GitHub's published git ranges ({len(cidrs)} CIDRs, {note}) on port 22: "
            f"its host name {GITHUB_SSH_ENTRY_HOST} is only a label; re-run when GitHub changes them"
        )
    return Expansion(tuple(reaches), (note,))  # without the ranges SSH is left out: no safe entry


def github_git_cidrs(src: Sources) -> tuple[tuple[str, ...], str]:
    """(CIDRs, where they came from) or ((), why there are none)."""
    meta: Any = src.github_meta
    origin = "given by the caller"
    if meta is None and os.environ.get(GITHUB_META_ENV):
        path = Path(os.environ[GITHUB_META_ENV])
        origin = f"from {path}"
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise PresetError(f"{GITHUB_META_ENV}={path}: cannot read it: {exc.strerror}") from None
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise PresetError(f"{GITHUB_META_ENV}={path}: not GitHub's meta document (JSON)") from None
    if meta is None and src.network:
        origin = f"from {GITHUB_META_URL}"
        meta, problem = _fetch_meta()
        if meta is None:
            return (
                (),
                f"GitHub's SSH ranges could not be read from {GITHUB_META_URL} ({problem}): SSH left out",
            )
    if meta is None:
        return (), (
            f"SSH left out: GitHub's SSH address ranges were not read (save {GITHUB_META_URL} and set "
            f"{GITHUB_META_ENV}=FILE), and a TCP entry for port 22 without them would open it to every host"
        )
    raw = meta.get("git") if isinstance(meta, Mapping) else None
    raw = raw if isinstance(raw, list) else []
    cidrs = tuple(dict.fromkeys(c for c in (check_cidr(str(x)) for x in raw) if c))
    if not cidrs:
        return (), f"GitHub's meta document ({origin}) has no usable `git` ranges: SSH left out"
    skipped = len(raw) - len([x for x in raw if check_cidr(str(x))])
    return cidrs, origin + (
        f"; {skipped} skipped as not CIDRs or broader than /8 (IPv6 /16)" if skipped else ""
    )


def _fetch_meta() -> tuple[Any, str]:
    import httpx

    try:
        response = httpx.get(GITHUB_META_URL, timeout=3.0, headers={"accept": "application/json"})
        response.raise_for_status()
        return response.json(), ""
    except (httpx.HTTPError, ValueError) as exc:
        return None, " ".join(str(exc).split())[:120] or type(exc).__name__


def docker_hub(src: Sources) -> Expansion:
    reaches = (
        url_reach("https://registry-1.docker.io/v2/", "registry API", keep_path=True),
        url_reach("https://auth.docker.io/token", "token service", keep_path=True),
        url_reach("https://production.cloudflare.docker.com/", "layer downloads", keep_path=True),
    )
    return Expansion(reaches, (IMAGE_PULL_NOTE, "a mirror instead: --preset docker-hub=URL"))


def ghcr(src: Sources) -> Expansion:
    reaches = (
        url_reach("https://ghcr.io/v2/", "registry API", keep_path=True),
        url_reach("https://pkg-containers.githubusercontent.com/", "layer downloads", keep_path=True),
    )
    return Expansion(reaches, (IMAGE_PULL_NOTE,))


def go(src: Sources) -> Expansion:
    """Module proxies from GOPROXY (Go's default when unset) and the checksum database from GOSUMDB."""
    reaches: list[Reach] = []
    notes: list[str] = []
    proxy_list = src.getenv("GOPROXY") or GO_DEFAULT_PROXY
    for item in (i.strip() for i in re.split(r"[,|]", proxy_list)):
        if item == "direct":
            notes.append("GOPROXY ends in `direct`: modules missing from the proxy come from their own "
                         "version-control hosts, which this preset cannot know")  # fmt: skip
        elif item == "off":
            notes.append("GOPROXY=off: no module is downloaded")
        elif item.startswith(("https://", "http://")):
            default = proxy_list == GO_DEFAULT_PROXY
            url = item.rstrip("/") + "/golang.org/x/mod/@v/list" if default else item
            reaches.append(url_reach(url, "module proxy", keep_path=default))
        elif item:
            notes.append(f"GOPROXY entry {item!r} is not an http(s) URL: skipped")
    sumdb = (src.getenv("GOSUMDB") or GO_DEFAULT_SUMDB).split()
    if sumdb and sumdb[0] != "off":
        url = sumdb[1] if len(sumdb) > 1 else "https://" + sumdb[0].split("+", 1)[0]
        reaches.append(url_reach(url.rstrip("/") + "/latest", "checksum database", keep_path=True))
    private = src.getenv("GOPRIVATE") or src.getenv("GONOPROXY")
    if private:
        notes.append(
            f"modules matching {private!r} are fetched from their own hosts: add those with a user preset"
        )
    return Expansion(tuple(reaches), tuple(notes))


def maven(src: Sources) -> Expansion:
    """Maven Central, unless a mirror in settings.xml covers it; every mirror; settings.xml proxies."""
    settings = src.files_named("settings.xml") if src.files is not None else src.local.maven_settings()
    mirrors, proxies, notes = _maven_settings(settings)
    urls = [url for url, covers_central in mirrors if url]
    if not any(covers for _, covers in mirrors):
        urls.insert(0, MAVEN_CENTRAL)
    reaches = tuple(url_reach(u, "repository", keep_path=u == MAVEN_CENTRAL) for u in dict.fromkeys(urls))
    notes.append("repositories declared in a project's pom.xml are not read: add them with a user preset")
    return Expansion(reaches, tuple(notes), proxies)


def _maven_settings(files: Mapping[str, str]) -> tuple[list[tuple[str, bool]], dict[str, str], list[str]]:
    mirrors: list[tuple[str, bool]] = []
    proxies: dict[str, str] = {}
    notes: list[str] = []
    for path, text in sorted(files.items()):
        try:
            root = ET.fromstring(text)
        except ET.ParseError as exc:
            notes.append(f"{path}: not XML ({exc}): skipped")
            continue
        for mirror in root.iterfind(".//{*}mirror"):
            url = (mirror.findtext("{*}url") or "").strip()
            of = {p.strip() for p in (mirror.findtext("{*}mirrorOf") or "").split(",")}
            if url.startswith(("https://", "http://")):
                mirrors.append((url, bool(of & {"*", "central", "external:*"})))
        for proxy in root.iterfind(".//{*}proxy"):
            if (proxy.findtext("{*}active") or "true").strip() == "false":
                continue
            scheme = (proxy.findtext("{*}protocol") or "http").strip().lower()
            host, port = (proxy.findtext("{*}host") or "").strip(), (proxy.findtext("{*}port") or "").strip()
            if host:
                proxies[scheme] = f"http://{host}" + (f":{port}" if port.isdigit() else "")
    if "http" in proxies:
        proxies.setdefault("https", proxies["http"])  # Maven uses an http proxy for https too
    return mirrors, proxies, notes
