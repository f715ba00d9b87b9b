"""`--mode` is the mesh-wide mode (docs/model.md), exactly as the istio ConfigMap's
``outboundTrafficPolicy`` would be: a Sidecar selected for the workload still overrides it
(`pilot/pkg/model/sidecar.go` `initSidecarScopeInternalIndexes`), and the report names what decided.

Every combination — mesh REGISTRY_ONLY/ALLOW_ANY × Sidecar unset/REGISTRY_ONLY/ALLOW_ANY — given
once with ``--mode`` and once with ``--mesh-config``, through ``meshprobe explain -o json`` and
``meshprobe lint -o json``; the lab's generator (which reads the same two inputs on its own) must
pick the same effective mode.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from diag.cli import main

MODES = ("REGISTRY_ONLY", "ALLOW_ANY")
SIDECAR_MODES = (None, "REGISTRY_ONLY", "ALLOW_ANY")
HOW = ("--mode", "--mesh-config")
CASES = list(itertools.product(MODES, SIDECAR_MODES, HOW))

ENTRY = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: registered, namespace: apps}
spec:
  hosts: [registered.example.com]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DNS
"""


def _sidecar(mode: str | None) -> str:
    policy = f"\n  outboundTrafficPolicy: {{mode: {mode}}}" if mode else ""
    return (
        "apiVersion: networking.istio.io/v1\nkind: Sidecar\n"
        f"metadata: {{name: default, namespace: apps}}\nspec:\n  egress: [{{hosts: ['*/*']}}]{policy}\n"
    )


def _write(tmp_path: Path, mesh: str, sidecar: str | None, how: str) -> tuple[list[str], str]:
    """(the mode flags, the name the report gives the mesh-wide setting)."""
    docs = [ENTRY]
    if sidecar is not None:
        docs.append(_sidecar(None if sidecar == "unset" else sidecar))
    (tmp_path / "config.yaml").write_text("---\n".join(docs))
    if how == "--mode":
        return ["--mode", mesh], "--mode"
    mesh_file = tmp_path / "mesh.yaml"
    mesh_file.write_text(f"outboundTrafficPolicy:\n  mode: {mesh}\n")
    return ["--mesh-config", str(mesh_file)], "MeshConfig mesh.yaml"


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:  # type: ignore[type-arg]
    code = main(argv)
    out = capsys.readouterr().out
    return code, json.loads(out)


@pytest.mark.parametrize(("mesh", "sidecar", "how"), CASES, ids=["-".join(map(str, c)) for c in CASES])
def test_explain_sidecar_overrides_the_mesh_wide_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mesh: str, sidecar: str | None, how: str
) -> None:
    flags, mesh_name = _write(tmp_path, mesh, "unset" if sidecar is None else sidecar, how)
    argv = ["explain", "unregistered.example.org", "registered.example.com",
            "--config", str(tmp_path / "config.yaml"), "-n", "apps", *flags, "-o", "json"]
    _, doc = _run(argv, capsys)
    effective = sidecar or mesh
    decided_by = "Sidecar apps/default" if sidecar else mesh_name
    assert doc["mesh"]["outbound_policy"] == effective
    assert doc["mesh"]["from"] == decided_by
    unknown, known = doc["targets"]
    want = {"REGISTRY_ONLY": "BlackHoleCluster", "ALLOW_ANY": "PassthroughCluster"}[effective]
    assert unknown["predicted"]["envoy"] == want
    assert known["predicted"]["envoy"] == "outbound|443||registered.example.com"
    codes = {d["code"]: d for d in unknown["diagnoses"]}
    if effective == "REGISTRY_ONLY":
        assert "MP0101" in codes and decided_by in " ".join(codes["MP0101"]["evidence"])
    else:
        assert "MP0301" in codes and decided_by in codes["MP0301"]["message"]


@pytest.mark.parametrize(("mesh", "sidecar", "how"), CASES, ids=["-".join(map(str, c)) for c in CASES])
def test_lab_generator_agrees_on_the_effective_mode(
    tmp_path: Path, mesh: str, sidecar: str | None, how: str
) -> None:
    import yaml

    from lab.istiod import PodView, generate

    _write(tmp_path, mesh, "unset" if sidecar is None else sidecar, how)
    objects = list(yaml.safe_load_all((tmp_path / "config.yaml").read_text()))
    pod = (
        PodView("apps", mode_override=mesh)
        if how == "--mode"
        else PodView("apps", mesh={"outboundTrafficPolicy": {"mode": mesh}})
    )
    assert generate(objects, pod).mode == (sidecar or mesh)


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("mesh", MODES)
def test_lint_takes_the_mesh_wide_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mesh: str, how: str
) -> None:
    flags, mesh_name = _write(tmp_path, mesh, "REGISTRY_ONLY" if mesh == "ALLOW_ANY" else "ALLOW_ANY", how)
    _, doc = _run(["lint", "--config", str(tmp_path / "config.yaml"), *flags, "-o", "json"], capsys)
    assert doc["mesh"]["outbound_policy"] == mesh and doc["mesh"]["from"] == mesh_name


def test_lint_rejects_both_mode_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "config.yaml").write_text(ENTRY)
    (tmp_path / "mesh.yaml").write_text("outboundTrafficPolicy: {mode: ALLOW_ANY}\n")
    argv = ["lint", "--config", str(tmp_path / "config.yaml"), "--mode", "REGISTRY_ONLY",
            "--mesh-config", str(tmp_path / "mesh.yaml")]
    assert main(argv) == 2
    assert "mutually exclusive" in capsys.readouterr().err
