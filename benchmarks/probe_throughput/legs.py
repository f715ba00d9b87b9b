"""The three legs of the probe benchmark, each over the same HTTPS targets on loopback:

- ``meshprobe``: ``python -m probes`` as one subprocess (its wall time and peak RSS via ``wait4``);
- ``curl``: a sequential loop, one ``curl --resolve HOST:PORT:ADDR --cacert CA`` per target;
- ``blackbox``: Prometheus blackbox_exporter (``/usr/bin/prometheus-blackbox-exporter``) on a
  random loopback port with one ``http`` module per target (its ``tls_config.server_name`` and
  ``Host`` header carry the name, the target URL the address), driven through ``/probe`` at the
  same concurrency as meshprobe; peak RSS is the exporter's ``VmHWM``.

Every leg checks its answers (HTTP 200 / ``probe_success 1``): a fast leg that failed is not a
result. Proxy variables are removed from every child's environment: traffic stays on loopback.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

BLACKBOX = "/usr/bin/prometheus-blackbox-exporter"
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Target:
    host: str
    address: str
    port: int

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}/"


@dataclass(frozen=True)
class LegResult:
    name: str
    probes: int
    ok: int
    wall_s: float
    peak_rss_mb: float | None
    notes: tuple[str, ...] = ()
    cpu_s: float | None = None  # user + system CPU of the prober process(es)

    @property
    def per_probe_ms(self) -> float:
        return 1000 * self.wall_s / max(self.probes, 1)


@dataclass
class _Peak:
    kb: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kb: int) -> None:
        with self.lock:
            self.kb = max(self.kb, kb)


def clean_env() -> dict[str, str]:
    """The environment without proxy settings (curl and Go honour them)."""
    drop = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
    return {k: v for k, v in os.environ.items() if k.lower() not in drop}


def run_measured(
    argv: Sequence[str], *, stdout_path: Path, timeout: float, env: dict[str, str] | None = None
) -> tuple[int, float, int, float]:
    """Run ``argv``; (exit status, wall seconds, peak RSS in KB, CPU seconds) from ``wait4``."""
    with stdout_path.open("wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.PIPE, env=env or clean_env())
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:  # Ctrl-C: leave no child behind
            proc.kill()
            proc.wait()
            raise
        finally:
            timer.cancel()
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.stderr is not None:
            err = proc.stderr.read().decode("utf-8", "replace").strip()
            proc.stderr.close()
            if err and proc.returncode not in (0, 1, 3):
                sys.stderr.write(err[-2000:] + "\n")
    return proc.returncode, wall, int(usage.ru_maxrss), usage.ru_utime + usage.ru_stime


# --------------------------------------------------------------------------------------------
# meshprobe
# --------------------------------------------------------------------------------------------


def bytecode_env(workdir: Path) -> dict[str, str]:
    """Let the child cache bytecode under ``workdir`` (never in the repository): the probe image
    ships compiled modules, so compiling ``probes/`` on every start would not be its cost."""
    env = clean_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    return env


def meshprobe_plan(targets: Sequence[Target], ca_file: Path, concurrency: int) -> dict[str, object]:
    """A ``meshprobe.plan/v1`` document (``probes/plan.py``): every name pinned by ``resolve``,
    the sidecar left alone (there is none on the benchmark host)."""
    return {
        "schema": "meshprobe.plan/v1",
        "targets": [t.url for t in targets],
        "options": {"concurrency": concurrency, "ca_file": str(ca_file),
                    "resolve": {t.host: t.address for t in targets}},
        "sidecar": {"mode": "off"},
    }


def meshprobe_argv(targets: Sequence[Target], ca_file: Path, concurrency: int, workdir: Path) -> list[str]:
    """``python -m probes --plan FILE --compact`` over the targets."""
    plan = workdir / f"plan-{len(targets)}.json"
    plan.write_text(json.dumps(meshprobe_plan(targets, ca_file, concurrency)))
    return [sys.executable, "-m", "probes", "--plan", str(plan), "--compact"]


def count_meshprobe_ok(stdout_path: Path) -> tuple[int, tuple[str, ...]]:
    try:
        report = json.loads(stdout_path.read_text())
    except ValueError as exc:
        return 0, (f"meshprobe output is not JSON: {exc}",)
    results = report.get("results") or []
    bad = {r.get("signature", "?"): r.get("error") for r in results if r.get("signature") != "OK"}
    notes = tuple(f"signature {s}: {err}" for s, err in sorted(bad.items()))
    return sum(1 for r in results if r.get("signature") == "OK"), notes


def meshprobe_leg(targets: Sequence[Target], ca_file: Path, concurrency: int, workdir: Path) -> LegResult:
    out = workdir / f"meshprobe-{len(targets)}.json"
    argv = meshprobe_argv(targets, ca_file, concurrency, workdir)
    status, wall, rss_kb, cpu = run_measured(argv, stdout_path=out, timeout=300, env=bytecode_env(workdir))
    ok, notes = count_meshprobe_ok(out)
    if status not in (0, 1, 3):
        notes = (*notes, f"exit status {status}")
    return LegResult("meshprobe", len(targets), ok, wall, rss_kb / 1024, notes, cpu)


# --------------------------------------------------------------------------------------------
# curl loop
# --------------------------------------------------------------------------------------------


def curl_leg(targets: Sequence[Target], ca_file: Path, workdir: Path) -> LegResult:
    curl = shutil.which("curl")
    if curl is None:
        return LegResult("curl", len(targets), 0, 0.0, None, ("curl not installed",))
    ok, peak, codes, cpu = 0, 0, set(), 0.0
    out = workdir / "curl.out"
    start = time.perf_counter()
    for t in targets:
        argv = [curl, "-sS", "--noproxy", "*", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}",
                "--resolve", f"{t.host}:{t.port}:{t.address}", "--cacert", str(ca_file), t.url]
        _, _, rss_kb, used = run_measured(argv, stdout_path=out, timeout=15)
        cpu += used
        code = out.read_text().strip()
        codes.add(code)
        ok += code == "200"
        peak = max(peak, rss_kb)
    wall = time.perf_counter() - start
    notes = tuple(f"http_code {c}" for c in sorted(codes - {"200"}))
    return LegResult("curl", len(targets), ok, wall, peak / 1024, notes, cpu)


# --------------------------------------------------------------------------------------------
# blackbox_exporter
# --------------------------------------------------------------------------------------------


def blackbox_config(targets: Sequence[Target], ca_file: Path) -> dict[str, object]:
    modules = {}
    for i, t in enumerate(targets):
        modules[f"m{i}"] = {
            "prober": "http",
            "timeout": "10s",
            "http": {
                "preferred_ip_protocol": "ip4",
                "ip_protocol_fallback": False,
                "fail_if_not_ssl": True,
                "headers": {"Host": f"{t.host}:{t.port}"},
                "tls_config": {"ca_file": str(ca_file), "server_name": t.host},
            },
        }
    return {"modules": modules}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _vm_hwm_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _cpu_s(pid: int) -> float:
    """utime + stime of ``pid`` from /proc (clock ticks → seconds)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_healthy(port: int, proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"blackbox_exporter exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/-/healthy")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("blackbox_exporter not healthy in time")


def _drive_blackbox(port: int, targets: Sequence[Target], concurrency: int) -> list[bool]:
    local = threading.local()

    def probe(item: tuple[int, Target]) -> bool:
        i, t = item
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        query = urllib.parse.urlencode({"module": f"m{i}", "target": f"https://{t.address}:{t.port}/"})
        conn.request("GET", f"/probe?{query}")
        body = conn.getresponse().read().decode()
        return "\nprobe_success 1" in "\n" + body

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(probe, enumerate(targets)))


def blackbox_leg(targets: Sequence[Target], ca_file: Path, concurrency: int, workdir: Path) -> LegResult:
    if not Path(BLACKBOX).exists():
        return LegResult("blackbox", len(targets), 0, 0.0, None, (f"{BLACKBOX} not installed",))
    config = workdir / "blackbox.yml"
    config.write_text(json.dumps(blackbox_config(targets, ca_file)))  # JSON is YAML
    port = _free_port()
    argv = [BLACKBOX, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=log, env=clean_env())
        try:
            _wait_healthy(port, proc)
            cpu_before, start = _cpu_s(proc.pid), time.perf_counter()
            answers = _drive_blackbox(port, targets, concurrency)
            wall = time.perf_counter() - start
            cpu = _cpu_s(proc.pid) - cpu_before
            rss_kb = _vm_hwm_kb(proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
    ok = sum(answers)
    notes = () if ok == len(targets) else (f"{len(targets) - ok} probes without probe_success 1",)
    return LegResult("blackbox", len(targets), ok, wall, rss_kb / 1024, notes, cpu)
