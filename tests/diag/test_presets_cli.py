"""`meshprobe presets [NAME] [-o text|yaml]`: the listing (built-in and user presets), one preset's
targets and entries, the bundle as a YAML stream for `kubectl apply -f -`, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from diag import cli
from diag.presets import fixed
from tests.diag.test_presets import assert_safe


@pytest.fixture(autouse=True)
def _no_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """GitHub's ranges from a saved meta document; user presets from a temporary config home."""
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"git": ["10.250.0.0/22"]}))
    monkeypatch.setenv(fixed.GITHUB_META_ENV, str(meta))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setattr(fixed, "_fetch_meta", lambda: pytest.fail("the CLI fetched GitHub's meta document"))


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_listing_shows_builtin_and_user_presets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    user = tmp_path / "config" / "meshprobe" / "presets.yaml"
    user.parent.mkdir(parents=True)
    user.write_text(
        "presets:\n  artifacts:\n    summary: our store\n    targets: [https://a.corp.example/]\n"
    )
    code, out, err = _run(["presets"], capsys)
    assert code == 0 and err == ""
    names = [
        line.split()[0] for line in out.splitlines()[1:] if line.strip() and not line.startswith("meshprobe")
    ]
    assert names == ["git", "docker-hub", "ghcr", "go", "maven", "pip", "apt", "npm", "artifacts"]
    assert "our store" in out and str(user) in out


def test_one_preset_as_text(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["presets", "git"], capsys)
    assert code == 0
    assert f"tcp://{fixed.GITHUB}:22" in out and "meshprobe-git-ssh-" in out
    assert "counts as reached" in out and "kubectl apply -n NAMESPACE -f -" in out


def test_yaml_is_the_bundle_alone_ready_for_kubectl_apply(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(["presets", "git", "-o", "yaml"], capsys)
    assert code == 0 and err == ""
    docs = [d for d in yaml.safe_load_all(out) if d is not None]
    assert [d["kind"] for d in docs] == ["ServiceEntry", "ServiceEntry"]
    for doc in docs:
        assert_safe(doc)
    assert docs[1]["spec"]["addresses"] == ["10.250.0.0/22"]


def test_name_equals_url_from_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["presets", "npm=https://npm-mirror.lab.example/", "-o", "yaml"], capsys)
    (doc,) = [d for d in yaml.safe_load_all(out) if d is not None]
    assert code == 0 and doc["spec"]["hosts"] == ["npm-mirror.lab.example"]


def test_an_empty_bundle_warns(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOPROXY", "off")
    monkeypatch.setenv("GOSUMDB", "off")
    code, out, err = _run(["presets", "go", "-o", "yaml"], capsys)
    assert code == 0 and "GOPROXY=off" in out and out.lstrip().startswith("#")
    assert err.startswith("warning: preset go has no entry")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["presets", "nosuch"], "error: unknown preset 'nosuch'"),
        (["presets", "git", "-o", "json"], "error: -o must be text or yaml"),
        (["presets", "-o", "yaml"], "error: -o yaml needs a preset NAME"),
        (["presets", "pip=ftp://x.lab.example/"], "error: not an http(s) URL"),
    ],
)
def test_errors_are_one_line_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(argv, capsys)
    assert code == 2 and out == "" and err.splitlines()[0].startswith(message)
    assert "Traceback" not in err


@pytest.mark.parametrize("name", ["pip", "npm", "apt"])
def test_package_manager_presets_read_this_machine_at_run_time(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(["presets", name], capsys)
    assert code == 0 and out.startswith(f"preset {name}:")
