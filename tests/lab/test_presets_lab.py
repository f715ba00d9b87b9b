"""Every preset in the lab (REGISTRY_ONLY, a real Envoy behind Istio's capture rules): with its bundle
applied every target passes; with one entry removed, the target that entry covered fails with its
code (MP0101, or MP0102 when another entry still names the host) and the others still pass.

The probe runs in a lab pod as the probe image's user (``python -m probes --plan -``, the plan's
HTTP(S) targets with ``accept_4xx``), and ``explain --results`` correlates what it saw with the
applied bundle. The lab internet serves every host; the package-manager presets get lab mirrors
through ``NAME=URL`` (their real hosts are never named in the repository), git's SSH ranges come
from a stand-in meta document naming the lab's address for the host, and a user preset shows an
origin's 401 counting as reached.
"""

from __future__ import annotations

import ipaddress
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from diag.commands import explain
from diag.pod.image import PROBE_GID, PROBE_UID
from diag.presets import BUILTINS, Preset, expand_preset, fixed, load_user_presets
from probes.options import ProbeOptions
from probes.plan import Plan, plan_to_json
from tests.conftest import require_lab

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
MIRRORS = {
    "pip": "pip=https://pypi-mirror.lab.example/simple,https://pypi-files.lab.example/",
    "apt": "apt=http://deb-mirror.lab.example/debian,http://security-mirror.lab.example/debian-security",
    "npm": "npm=https://npm-registry.lab.example/",
}
USER_PRESETS = """
presets:
  artifacts:
    summary: a private registry that wants a token, and git over SSH
    targets:
      - https://artifacts.lab.example/status/401
      - tcp://git-ssh.lab.example:22
    addresses:
      git-ssh.lab.example: [{ssh}]
"""
NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}
CASES = [*BUILTINS, "artifacts"]


USER_HOSTS = ("artifacts.lab.example", "git-ssh.lab.example")


def _expand(name: str, lab: Any = None, tmp_path: Path | None = None) -> Preset:
    """The preset as the tests use it; git's SSH ranges and the user preset's CIDR hold the lab's
    address for the host (without a lab: a stand-in address, enough to list the hosts)."""
    address = (lambda host: lab.address_of(host)) if lab is not None else (lambda host: "10.0.0.1")
    if name == "git":
        meta = {"git": [str(ipaddress.ip_network(f"{address(fixed.GITHUB)}/24", strict=False))]}
        return expand_preset("git", github_meta=meta, user_presets={})
    if name == "artifacts":
        assert tmp_path is not None
        path = tmp_path / "presets.yaml"
        path.write_text(USER_PRESETS.format(ssh=f"{address(USER_HOSTS[1])}/32"))
        return expand_preset("artifacts", user_presets=load_user_presets(path))
    # go and maven as a workload without settings uses them: Go's and Maven's defaults
    return expand_preset(MIRRORS.get(name, name), env={}, files={}, user_presets={})


def _hosts() -> list[str]:
    from urllib.parse import urlsplit

    found = {urlsplit(t).hostname or "" for name in BUILTINS for t in _expand(name).targets}
    return sorted((found | set(USER_HOSTS)) - {""})


@pytest.fixture(scope="module")
def lab() -> Iterator[Any]:
    require_lab()
    from lab import Lab

    with Lab([], mode="REGISTRY_ONLY", internet=_hosts(), drain_seconds=0.1) as running:
        running.pod("default")
        yield running


def _check(lab: Any, preset: Preset, objects: list[dict[str, Any]], tmp_path: Path) -> Any:
    """Apply ``objects``, probe the preset's targets from the pod, explain with the results."""
    lab.apply(objects)
    plan = plan_to_json(Plan(targets=preset.planned_targets(), options=ProbeOptions(timeout=3.0)))
    proc = lab.pod("default").exec(
        [sys.executable, "-m", "probes", "--plan", "-", "--compact"],
        uid=PROBE_UID, gid=PROBE_GID, env={"PYTHONPATH": str(ROOT)}, input=json.dumps(plan), timeout=90,
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr
    results = tmp_path / "probe.json"
    results.write_text(proc.stdout)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump_all([NAMESPACE, *objects]))
    return explain.run(list(preset.targets), [config], mode="REGISTRY_ONLY", results=results)


def _code(host: str, remaining: list[dict[str, Any]]) -> str:
    """MP0102 when another entry still names the host (git's HTTPS entry, once SSH's is gone:
    the port is what is missing), else MP0101."""
    return "MP0102" if any(host in e["spec"]["hosts"] for e in remaining) else "MP0101"


def _rows(report: Any) -> list[tuple[str, str, str, list[str]]]:
    return [
        (
            t.target,
            t.outcome,
            t.observed.signature.value if t.observed else "-",
            [d.code for d in t.diagnoses],
        )
        for t in report.targets
    ]


@pytest.mark.parametrize("name", CASES)
def test_preset_bundle_passes_and_each_removed_entry_fails_its_target(
    lab: Any, name: str, tmp_path: Path
) -> None:
    preset = _expand(name, lab, tmp_path)
    assert preset.targets and all(preset.entries), preset.notes
    try:
        report = _check(lab, preset, list(preset.bundle), tmp_path)
        assert [t.outcome for t in report.targets] == ["pass"] * len(preset.targets), _rows(report)
        assert report.exit_code == 0
        for removed in preset.bundle:
            gone = removed["metadata"]["name"]
            remaining = [e for e in preset.bundle if e is not removed]
            report = _check(lab, preset, remaining, tmp_path)
            for row, entry, target in zip(_rows(report), preset.entries, report.targets, strict=True):
                if entry == gone:
                    assert target.outcome == "fail" and row[3][:1] == [_code(target.host, remaining)], (
                        gone,
                        row,
                    )
                else:
                    assert target.outcome == "pass", (gone, row)
            assert report.exit_code == 1
    finally:
        lab.apply([])


def test_without_accept_4xx_the_origins_401_fails(lab: Any, tmp_path: Path) -> None:
    """The 401 the user preset passes with (above) fails a target given on the command line:
    `accept_4xx`, from the preset's plan, is what makes it a pass."""
    preset = _expand("artifacts", lab, tmp_path)
    try:
        lab.apply(list(preset.bundle))
        proc = lab.pod("default").exec(
            [sys.executable, "-m", "probes", "--compact", "--timeout", "3", preset.targets[0]],
            uid=PROBE_UID, gid=PROBE_GID, env={"PYTHONPATH": str(ROOT)}, timeout=60,
        )  # fmt: skip
        (result,) = json.loads(proc.stdout)["results"]
        assert result["signature"] == "HTTP_STATUS" and result["http"]["status"] == 401
        assert result["target"]["accept_4xx"] is False and proc.returncode == 1
    finally:
        lab.apply([])
