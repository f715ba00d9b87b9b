"""`python -m probes` runs with only httpx, dnspython and their dependencies importable (the probe
image): a virtualenv without system site-packages whose one .pth file points at a directory of
symlinks to exactly those packages (no network, no pip)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import venv
from pathlib import Path

from tests.probes import servers
from tests.probes.servers import Reply

ROOT = Path(__file__).resolve().parents[2]
# httpx and dnspython with their runtime dependencies (as installed here), plus the probes package.
ALLOWED = ("httpx", "httpcore", "h11", "anyio", "sniffio", "idna", "certifi", "dns", "typing_extensions")


def _location(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(spec.origin) if spec.origin else None


def _isolated_python(tmp_path: Path) -> Path:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=False, with_pip=False, symlinks=True).create(env_dir)
    libs = tmp_path / "libs"
    libs.mkdir()
    for name in ALLOWED:
        where = _location(name)
        if where is not None:
            (libs / where.name).symlink_to(where)
    (libs / "probes").symlink_to(ROOT / "probes")
    (site_packages,) = (env_dir / "lib").glob("python3*/site-packages")
    (site_packages / "meshprobe-test.pth").write_text(f"{libs}\n")
    return env_dir / "bin" / "python"


def test_probe_runs_with_only_httpx_and_dnspython(tmp_path: Path) -> None:
    python = _isolated_python(tmp_path)
    check = subprocess.run(
        [str(python), "-c", "import rich"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=tmp_path,
    )
    assert check.returncode != 0 and "No module named 'rich'" in check.stderr  # really isolated
    with servers.serve_http({("*", "/"): Reply(200, b"ok"), ("*", "/bh"): Reply(502)}) as port:
        proc = subprocess.run(
            [
                str(python),
                "-m",
                "probes",
                "--sidecar",
                "off",
                "--timeout",
                "2",
                "--resolve",
                "web.lab.example:127.0.0.1",
                f"http://web.lab.example:{port}/",
                f"http://web.lab.example:{port}/bh",
                f"tcp://127.0.0.1:{servers.refused_port()}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=tmp_path,
        )
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    assert [r["signature"] for r in data["results"]] == ["OK", "ENVOY_BLACKHOLE_502", "TCP_REFUSED"]
    loaded = subprocess.run(
        [
            str(python),
            "-c",
            "import sys, probes.cli, probes.runner; print(sorted({m.split('.')[0] for m in sys.modules}))",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=tmp_path,
    )
    top_level = set(json.loads(loaded.stdout.replace("'", '"')))
    assert not top_level & {"rich", "typer", "kubernetes", "yaml", "diag", "lab"}
