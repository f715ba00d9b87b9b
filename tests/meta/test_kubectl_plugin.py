"""`kubectl meshprobe ...`: the `kubectl-meshprobe` console script is found by kubectl's own plugin
discovery (`kubectl plugin list`) and runs as `kubectl meshprobe`, with PATH holding only a
temporary directory with the script in it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from probes import __version__
from tests.conftest import IN_CI

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


@pytest.fixture
def plugin_path(tmp_path: Path) -> Path:
    if not Path(KUBECTL).exists():
        if IN_CI:
            pytest.fail("kubectl is not installed", pytrace=False)
        pytest.skip("kubectl is not installed")
    script = Path(sys.executable).with_name("kubectl-meshprobe")
    assert script.exists(), "the kubectl-meshprobe console script is missing: pip install -e ."
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kubectl-meshprobe").symlink_to(script)
    return bin_dir


def _kubectl(args: list[str], bin_dir: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path), "KUBECONFIG": str(tmp_path / "none")}
    return subprocess.run([KUBECTL, *args], env=env, capture_output=True, text=True, timeout=60)


def test_kubectl_plugin_list_finds_it(plugin_path: Path, tmp_path: Path) -> None:
    done = _kubectl(["plugin", "list"], plugin_path, tmp_path)
    assert done.returncode == 0, done.stderr
    assert str(plugin_path / "kubectl-meshprobe") in done.stdout
    assert "warning" not in (done.stdout + done.stderr).lower()  # executable, not shadowed


def test_kubectl_meshprobe_runs_the_cli(plugin_path: Path, tmp_path: Path) -> None:
    done = _kubectl(["meshprobe", "--version"], plugin_path, tmp_path)
    assert (done.returncode, done.stdout.strip()) == (0, f"meshprobe {__version__}"), done.stderr
    listing = _kubectl(["meshprobe", "presets"], plugin_path, tmp_path)
    assert listing.returncode == 0 and "docker-hub" in listing.stdout
    bad = _kubectl(["meshprobe", "no-such-command"], plugin_path, tmp_path)
    assert bad.returncode == 2 and bad.stderr.startswith("error: No such command")


def test_without_the_script_kubectl_knows_no_such_plugin(tmp_path: Path) -> None:
    if not Path(KUBECTL).exists():
        pytest.skip("kubectl is not installed")
    empty = tmp_path / "empty"
    empty.mkdir()
    done = _kubectl(["plugin", "list"], empty, tmp_path)
    assert "kubectl-meshprobe" not in done.stdout
