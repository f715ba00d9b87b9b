"""Preset expansion without a cluster: host discovery from a workload's environment and config files
(fake files under tmp-like paths, lab/example names only), from a stand-in for this machine's
package managers, proxies, user presets, and the safety of every bundle."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from diag.errors import InputError, UsageError
from diag.presets import BUILTINS, Preset, expand_preset, fixed, load_user_presets

META = {"git": ["10.250.0.0/22", "2001:db8:77::/48"]}


@dataclass
class FakeLocal:
    """This machine's package managers, as tests want them (lab names)."""

    default_index: tuple[str, str] | None = ("https://index.lab.example/simple", "files.lab.example")
    pip: dict[str, str] = field(default_factory=dict)
    npm: dict[str, str] = field(default_factory=dict)
    npm_default: str | None = "https://npm.lab.example/"
    apt: dict[str, str] = field(default_factory=dict)
    maven: dict[str, str] = field(default_factory=dict)

    def pip_default(self) -> tuple[str, str] | None:
        return self.default_index

    def pip_config(self) -> dict[str, str]:
        return self.pip

    def npm_config(self) -> dict[str, str]:
        return self.npm

    def npm_default_registry(self) -> str | None:
        return self.npm_default

    def apt_sources(self) -> dict[str, str]:
        return self.apt

    def maven_settings(self) -> dict[str, str]:
        return self.maven


def expand(spec: str, local: FakeLocal | None = None, **kw: Any) -> Preset:
    kw.setdefault("user_presets", {})
    kw.setdefault("github_meta", META)
    return expand_preset(spec, local=local or FakeLocal(), **kw)


# ---- pip ----------------------------------------------------------------------------------------


def test_pip_defaults_come_from_pip_itself() -> None:
    preset = expand("pip")
    assert preset.targets == ("https://index.lab.example/", "https://files.lab.example/")
    assert [e["spec"]["hosts"] for e in preset.bundle] == [["index.lab.example"], ["files.lab.example"]]


def test_pip_local_config_and_env_keys_win_over_the_default() -> None:
    local = FakeLocal(pip={
        "global.index-url": "https://mirror.lab.example/simple",
        ":env:.extra-index-url": "https://extra.lab.example/simple file:///opt/wheels/simple",
        "global.find-links": "/opt/wheels",
    })  # fmt: skip
    preset = expand("pip", local)
    assert preset.targets == ("https://mirror.lab.example/", "https://extra.lab.example/")
    assert any("file: URL is not a network host" in n for n in preset.notes)
    assert any("serve its files itself" in n for n in preset.notes)


def test_pip_workload_env_beats_its_pip_conf_and_drops_credentials() -> None:
    files = {"/etc/pip.conf": "[global]\nindex-url = https://conf.lab.example/simple\n"}
    env = {"PIP_INDEX_URL": "https://user:s3cret@private.lab.example:8443/simple/?token=t0k"}
    preset = expand("pip", env=env, files=files)
    assert preset.targets == ("https://private.lab.example:8443/",)
    assert preset.bundle[0]["spec"]["ports"] == [{"number": 8443, "name": "https-8443", "protocol": "HTTPS"}]
    shown = json.dumps([preset.targets, preset.bundle, preset.notes])
    assert "s3cret" not in shown and "t0k" not in shown and "user" not in shown


def test_pip_conf_sections_and_pip_config_file() -> None:
    files = {
        "/etc/pip.conf": "[global]\nindex-url = https://global.lab.example/simple\n",
        "/home/app/.config/pip/pip.conf": "[install]\nextra-index-url =\n  https://a.lab.example/simple\n"
        "  https://b.lab.example/simple\n",
        "/srv/custom.ini": "[global]\nindex-url = https://custom.lab.example/simple\n",
    }
    preset = expand("pip", env={"PIP_CONFIG_FILE": "/srv/custom.ini"}, files=files)
    assert preset.targets == (
        "https://custom.lab.example/",
        "https://a.lab.example/",
        "https://b.lab.example/",
    )


def test_a_workload_without_pip_settings_uses_pips_default_not_this_machines_config() -> None:
    local = FakeLocal(pip={"global.index-url": "https://laptop-only.lab.example/simple"})
    preset = expand("pip", local, env={}, files={})
    assert preset.targets == ("https://index.lab.example/", "https://files.lab.example/")


def test_pip_without_pip_says_so() -> None:
    preset = expand("pip", FakeLocal(default_index=None))
    assert preset.targets == () and any("--preset pip=URL" in n for n in preset.notes)


# ---- npm ----------------------------------------------------------------------------------------


def test_npm_local_config_with_scoped_registries() -> None:
    local = FakeLocal(npm={"registry": "https://npm-mirror.lab.example/", "@corp:registry": "https://npm.corp.example/",
                           "cache": "/root/.npm"})  # fmt: skip
    assert expand("npm", local).targets == ("https://npm.corp.example/", "https://npm-mirror.lab.example/")


def test_npmrc_files_in_npm_order_tokens_ignored_and_env_wins() -> None:
    files = {
        "/usr/etc/npmrc": "registry=https://global.lab.example/\n",
        "/home/app/.npmrc": "registry=https://user.lab.example/\n//user.lab.example/:_authToken=SECRET\n",
        "/app/.npmrc": "; project\nregistry = https://project.lab.example/\n"
        "@corp:registry=https://corp.lab.example/\n//corp.lab.example/:_authToken=${NPM_TOKEN}\n",
    }
    assert expand("npm", files=files).targets == ("https://corp.lab.example/", "https://project.lab.example/")
    env = {"npm_config_registry": "https://env.lab.example/"}
    preset = expand("npm", env=env, files=files)
    assert preset.targets == ("https://corp.lab.example/", "https://env.lab.example/")
    assert "SECRET" not in json.dumps([preset.bundle, preset.notes])


def test_npm_workload_without_settings_uses_npms_builtin_default() -> None:
    local = FakeLocal(npm={"registry": "https://laptop.lab.example/"})
    assert expand("npm", local, env={}).targets == ("https://npm.lab.example/",)
    assert any("npm=URL" in n for n in expand("npm", FakeLocal(npm_default=None), env={}).notes)


# ---- apt ----------------------------------------------------------------------------------------

SOURCES_LIST = """\
# the main archive
deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] http://deb.lab.example/debian bookworm main
deb-src http://deb.lab.example/debian bookworm main
deb cdrom:[Debian 12]/ bookworm main
deb file:/srv/repo ./
"""
DEB822 = """\
Types: deb deb-src
URIs: https://mirror-a.lab.example/ubuntu
  https://mirror-b.lab.example/ubuntu
Suites: noble noble-updates
Components: main
Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg

# switched off
Types: deb
URIs: http://disabled.lab.example/ubuntu
Suites: noble
Enabled: no

Types: deb
URIs: mirror+http://mirrors.lab.example/list.txt
Suites: noble
"""


def test_apt_sources_one_line_and_deb822() -> None:
    files = {
        "/etc/apt/sources.list": SOURCES_LIST,
        "/etc/apt/sources.list.d/ubuntu.sources": DEB822,
        "/etc/apt/sources.list.d/notes.txt": "deb http://ignored.lab.example/ x main\n",
    }
    preset = expand("apt", files=files)
    assert preset.targets == (
        "http://deb.lab.example/",
        "https://mirror-a.lab.example/",
        "https://mirror-b.lab.example/",
        "http://mirrors.lab.example/",
    )
    assert preset.bundle[0]["spec"]["ports"][0] == {"number": 80, "name": "http-80", "protocol": "HTTP"}
    assert any("mirror+http" in n for n in preset.notes)


def test_apt_local_sources_and_a_workload_proxy_from_apt_conf() -> None:
    local = FakeLocal(
        apt={"/etc/apt/sources.list.d/debian.sources": "Types: deb\nURIs: http://deb.lab.example/d\n"}
    )
    assert expand("apt", local).targets == ("http://deb.lab.example/",)
    files = {
        "/etc/apt/sources.list": "deb http://deb.lab.example/debian bookworm main\n",
        "/etc/apt/apt.conf.d/90proxy": 'Acquire::http::Proxy "http://proxy.lab.example:3142";\n',
    }
    preset = expand("apt", files=files)
    assert preset.targets == ("tcp://proxy.lab.example:3142",) and preset.bundle == ()
    assert any("through the proxy proxy.lab.example:3142" in n for n in preset.notes)
    assert any("needs the addresses" in n for n in preset.notes)


def test_apt_without_sources_says_so() -> None:
    assert any("no apt sources" in n for n in expand("apt", files={}).notes)


# ---- go, maven, docker-hub, ghcr, git -------------------------------------------------------------


def test_go_defaults_and_goproxy_gosumdb() -> None:
    default = expand("go", env={})
    assert len(default.targets) == 2 and default.targets[0].startswith(fixed.GO_DEFAULT_PROXY.split(",")[0])
    assert any("direct" in n for n in default.notes)
    env = {
        "GOPROXY": "https://athens.lab.example|https://backup.lab.example/,direct",
        "GOSUMDB": "sum.lab.example+abc123 https://sumdb.lab.example",
        "GOPRIVATE": "*.corp.example",
    }
    preset = expand("go", env=env)
    assert preset.targets == ("https://athens.lab.example/", "https://backup.lab.example/",
                              "https://sumdb.lab.example/latest")  # fmt: skip
    assert any("*.corp.example" in n for n in preset.notes)
    assert expand("go", env={"GOPROXY": "off", "GOSUMDB": "off"}).targets == ()


SETTINGS = """<?xml version="1.0"?>
<settings xmlns="http://maven.apache.org/SETTINGS/1.0.0">
  <mirrors>
    <mirror><id>all</id><mirrorOf>{mirror_of}</mirrorOf><url>https://nexus.lab.example/repository/public/</url></mirror>
  </mirrors>
  <proxies>
    <proxy><active>false</active><protocol>http</protocol><host>off.lab.example</host><port>1</port></proxy>
  </proxies>
</settings>
"""


def test_maven_central_unless_a_mirror_covers_it() -> None:
    covered = expand("maven", files={"/home/app/.m2/settings.xml": SETTINGS.format(mirror_of="*")})
    assert covered.targets == ("https://nexus.lab.example/",)
    beside = expand("maven", FakeLocal(maven={"/root/.m2/settings.xml": SETTINGS.format(mirror_of="corp")}))
    assert beside.targets == (fixed.MAVEN_CENTRAL, "https://nexus.lab.example/")


def test_maven_proxy_from_settings() -> None:
    text = SETTINGS.format(mirror_of="*").replace("<active>false</active>", "<active>true</active>")
    text = text.replace("off.lab.example</host><port>1", "10.9.9.9</host><port>3128")
    preset = expand("maven", files={"/home/app/.m2/settings.xml": text})
    assert preset.targets == ("tcp://10.9.9.9:3128",) and preset.bundle == ()


@pytest.mark.parametrize("name", ["docker-hub", "ghcr"])
def test_registries_probe_their_api_and_say_the_kubelet_pulls_outside_the_mesh(name: str) -> None:
    preset = expand(name)
    assert preset.targets[0].endswith("/v2/") and len(preset.bundle) == len(preset.targets) >= 2
    assert any("kubelet" in n for n in preset.notes)


def test_git_ssh_by_published_ranges_with_resolution_none() -> None:
    preset = expand("git")
    https, ssh = preset.bundle
    assert preset.targets == (f"https://{fixed.GITHUB}/", f"tcp://{fixed.GITHUB}:22")
    assert https["spec"]["resolution"] == "DNS" and https["spec"]["hosts"] == [fixed.GITHUB]
    assert ssh["spec"]["addresses"] == META["git"] and ssh["spec"]["resolution"] == "NONE"
    assert ssh["spec"]["ports"] == [{"number": 22, "name": "tcp-22", "protocol": "TCP"}]
    assert ssh["spec"]["hosts"] != [fixed.GITHUB]  # a host of its own: no merge with the HTTPS entry
    assert preset.entries == (https["metadata"]["name"], ssh["metadata"]["name"])


def test_git_without_ranges_leaves_ssh_out_and_never_fetches_unasked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(fixed.GITHUB_META_ENV, raising=False)
    monkeypatch.setattr(fixed, "_fetch_meta", lambda: pytest.fail("fetched without network=True"))
    preset = expand("git", github_meta=None)
    assert preset.targets == (f"https://{fixed.GITHUB}/",) and len(preset.bundle) == 1
    assert any("SSH left out" in n for n in preset.notes)


def test_git_ranges_from_a_saved_meta_document(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    saved = tmp_path / "meta.json"
    saved.write_text(json.dumps({"git": ["10.250.0.0/22", "0.0.0.0/0", "not-a-cidr"]}))
    monkeypatch.setenv(fixed.GITHUB_META_ENV, str(saved))
    preset = expand("git", github_meta=None)
    assert preset.bundle[1]["spec"]["addresses"] == ["10.250.0.0/22"]
    assert any("2 skipped" in n for n in preset.notes)
    saved.write_text("{not json")
    with pytest.raises(UsageError, match="not GitHub's meta document"):
        expand("git", github_meta=None)


def test_git_fetch_failure_is_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(fixed.GITHUB_META_ENV, raising=False)
    monkeypatch.setattr(fixed, "_fetch_meta", lambda: (None, "timed out"))
    preset = expand("git", github_meta=None, network=True)
    assert any("could not be read" in n and "timed out" in n for n in preset.notes)


# ---- NAME=URL, proxies, errors -------------------------------------------------------------------


def test_name_equals_urls_replaces_the_hosts() -> None:
    preset = expand("pip=https://pypi-mirror.lab.example/simple,https://files-mirror.lab.example/")
    assert preset.targets == ("https://pypi-mirror.lab.example/", "https://files-mirror.lab.example/")
    git = expand("git=https://git.lab.example/")
    assert git.targets == ("https://git.lab.example/",) and any("SSH is left out" in n for n in git.notes)


@pytest.mark.parametrize(
    ("spec", "message"),
    [("nosuch", "unknown preset"), ("pip=", "NAME=URL"), ("pip=ftp://x.lab.example/", "not an http"),
     ("pip=https://x.lab.example:99999/", "bad port")],
)  # fmt: skip
def test_bad_specs_are_usage_errors(spec: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        expand(spec)


def test_workload_proxies_and_no_proxy() -> None:
    env = {
        "HTTPS_PROXY": "http://egress-proxy.infra.svc.cluster.local:3128",
        "NO_PROXY": ".lab.example,10.0.0.0/8",
        "PIP_INDEX_URL": "https://index.corp.example/simple",
        "PIP_EXTRA_INDEX_URL": "https://x.lab.example/s",
    }
    preset = expand("pip", env=env)
    assert preset.targets == ("tcp://egress-proxy.infra.svc.cluster.local:3128", "https://x.lab.example/")
    assert [e["spec"]["hosts"] for e in preset.bundle] == [["x.lab.example"]]
    assert any("inside the cluster" in n for n in preset.notes)


def test_this_machines_proxy_is_not_the_pods(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://laptop-proxy.lab.example:3128")
    assert expand("pip").targets == ("https://index.lab.example/", "https://files.lab.example/")


# ---- safety of every bundle -----------------------------------------------------------------------


@pytest.mark.parametrize("name", list(BUILTINS))
def test_every_builtin_bundle_is_safe(name: str) -> None:
    local = FakeLocal(apt={"/etc/apt/sources.list": SOURCES_LIST})
    preset = expand(name, local)
    assert preset.targets and preset.bundle
    assert len(preset.entries) == len(preset.targets) and all(preset.entries)
    names = {e["metadata"]["name"] for e in preset.bundle}
    assert set(preset.entries) == names and len(names) == len(preset.bundle)
    for entry in preset.bundle:
        assert_safe(entry)


def assert_safe(entry: Mapping[str, Any]) -> None:
    spec = entry["spec"]
    assert entry["apiVersion"] == "networking.istio.io/v1" and entry["kind"] == "ServiceEntry"
    assert "namespace" not in entry["metadata"] and len(entry["metadata"]["name"]) <= 63
    assert spec["exportTo"] == ["."] and spec["location"] == "MESH_EXTERNAL"
    assert len(spec["hosts"]) == 1 and "*" not in spec["hosts"][0] and not spec["hosts"][0].endswith(".")
    protocols = {p["protocol"] for p in spec["ports"]}
    if protocols & {"HTTP", "HTTPS", "TLS"}:
        assert spec["resolution"] == "DNS" and "addresses" not in spec
    if "TCP" in protocols:
        assert spec["addresses"] and spec["resolution"] == "NONE"
        assert all(not a.endswith("/0") for a in spec["addresses"])


def test_bundle_yaml_is_a_kubectl_stream_with_notes_as_comments() -> None:
    import yaml

    preset = expand("git")
    text = preset.bundle_yaml()
    assert text.startswith("# meshprobe preset git")
    assert [d for d in yaml.safe_load_all(text) if d is not None] == list(preset.bundle)


# ---- user presets --------------------------------------------------------------------------------

USER = """
presets:
  artifacts:
    summary: our artifact store
    targets:
      - https://artifacts.corp.example/status/401
      - tcp://git.corp.example:22
      - tcp://db.corp.example:5432
    addresses:
      git.corp.example: [10.20.0.0/24]
    notes: [ask the platform team first]
"""


def test_user_presets(tmp_path: Path) -> None:
    path = tmp_path / "presets.yaml"
    path.write_text(USER)
    users = load_user_presets(path)
    preset = expand("artifacts", user_presets=users)
    assert preset.targets == ("https://artifacts.corp.example/status/401", "tcp://git.corp.example:22",
                              "tcp://db.corp.example:5432")  # fmt: skip
    assert preset.entries[2] is None and len(preset.bundle) == 2
    assert preset.bundle[1]["spec"]["addresses"] == ["10.20.0.0/24"]
    assert "ask the platform team first" in preset.notes
    assert [t.accept_4xx for t in preset.planned_targets()] == [True, False, False]
    with pytest.raises(UsageError, match="user preset"):
        expand("artifacts=https://x.lab.example/", user_presets=users)
    assert load_user_presets(tmp_path / "missing.yaml") == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("presets:\n  pip:\n    targets: [a.lab.example]\n", "built-in preset"),
        ("presets:\n  x:\n    targets: [a.lab.example]\n    prots: []\n", "unknown key 'prots'"),
        ("presets:\n  x:\n    targets: ['bad target']\n", "invalid target"),
        ("presets:\n  x: [\n", "line 3"),
        (
            "presets:\n  x:\n    targets: [a.lab.example]\n    addresses: {h.lab.example: [0.0.0.0/0]}\n",
            "CIDRs",
        ),
        ("- just a list\n", "one key `presets`"),
    ],
)
def test_bad_user_presets_name_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "presets.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as caught:
        load_user_presets(path)
    assert str(path) in caught.value.message


# ---- this machine's package managers, and the repository -----------------------------------------


def test_local_package_managers_answer_from_the_tools_themselves() -> None:
    from diag.presets import LocalPackageManagers

    local = LocalPackageManagers()
    default = local.pip_default()
    assert default is not None and default[0].startswith("https://") and "." in default[1]
    assert isinstance(local.pip_config(), dict) and isinstance(local.npm_config(), dict)
    registry = local.npm_default_registry()
    assert registry is None or registry.startswith(("https://", "http://"))


def test_the_repository_names_no_package_registry_host() -> None:
    """The hosts pip, npm and apt use here never appear in a tracked file (presets read them at run time)."""
    import subprocess
    from urllib.parse import urlsplit

    from diag.presets import LocalPackageManagers

    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        pytest.skip("not a git checkout")
    local = LocalPackageManagers()
    hosts = {
        p.targets for p in (expand_preset(n, local=local, user_presets={}) for n in ("pip", "npm", "apt"))
    }
    names = {urlsplit(t).hostname for group in hosts for t in group} - {None}
    assert names, "no package-manager host found here to look for"
    for name in sorted(n for n in names if n):
        found = subprocess.run(
            ["git", "grep", "-l", "-i", "-F", name], cwd=root, capture_output=True, text=True
        )
        assert found.stdout == "", f"a package-registry host is written in: {found.stdout.split()}"
