"""The CLI side of ``meshprobe lab``: state directory, starting/stopping the supervisor, requests.

State lives in ``$MESHPROBE_LAB_STATE`` if set, else ``/run/meshprobe/lab`` for root, else
``$XDG_STATE_HOME/meshprobe/lab`` (``~/.local/state/meshprobe/lab``). One lab per state dir.
Errors are ``ControlError`` (one line; the command maps it to ``LabError``, exit 4).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lab.envoy import alive

STATE_FILE = "state.json"
REQUEST_FILE = "request.json"
SOCKET_FILE = "control.sock"
UP_TIMEOUT_S = 30.0
DOWN_TIMEOUT_S = 15.0


class ControlError(RuntimeError):
    """A lab command failed (one-line message)."""


def state_dir() -> Path:
    override = os.environ.get("MESHPROBE_LAB_STATE")
    if override:
        return Path(override)
    if os.geteuid() == 0:
        return Path("/run/meshprobe/lab")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "meshprobe" / "lab"


def read_state(directory: Path | None = None) -> dict[str, Any] | None:
    """The running lab's state, or None (stale state of a dead supervisor counts as none)."""
    path = (directory or state_dir()) / STATE_FILE
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if alive(int(state.get("pid", 0))) else None


def up(objects: Sequence[Mapping[str, Any]], *, mode: str | None, internet: Sequence[str],
       namespaces: Sequence[str], egress_gateway: bool = False) -> dict[str, Any]:  # fmt: skip
    """Start a detached supervisor; return its state once the lab is up."""
    directory = state_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    running = read_state(directory)
    if running is not None:
        raise ControlError(f"a lab is already up (run {running['run_id']}); run `meshprobe lab down` first")
    _sweep_dead(directory)
    request = {
        "objects": list(objects),
        "mode": mode,
        "internet": list(internet),
        "namespaces": list(namespaces),
        "egress_gateway": egress_gateway,
    }
    (directory / REQUEST_FILE).write_text(json.dumps(request))
    log = (directory / "supervisor.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab.supervisor", str(directory)], stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=log, start_new_session=True, text=True,
    )  # fmt: skip
    log.close()
    assert proc.stdout is not None
    try:
        line = _read_line(proc, UP_TIMEOUT_S)
    except BaseException:  # Ctrl-C while waiting: the half-started lab must not outlive `up`
        proc.terminate()
        proc.wait(timeout=DOWN_TIMEOUT_S)
        raise
    try:
        reply = json.loads(line)
    except ValueError:
        proc.wait(timeout=DOWN_TIMEOUT_S) if proc.poll() is None else None
        raise ControlError(
            f"the lab supervisor died before it was up (see {directory / 'supervisor.log'})"
        ) from None
    if not reply.get("ok"):
        proc.wait(timeout=DOWN_TIMEOUT_S)
        raise ControlError(f"lab could not start: {reply.get('error')}")
    proc.stdout.close()
    return dict(reply)


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    import selectors

    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            proc.terminate()
            proc.wait(timeout=DOWN_TIMEOUT_S)
            raise ControlError(f"lab not up after {timeout:.0f}s")
    return proc.stdout.readline()


def request(op: str, **fields: Any) -> dict[str, Any]:
    """Send one request to the running supervisor."""
    state = read_state()
    if state is None:
        raise ControlError("no lab is up (run `meshprobe lab up`)")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(60)
        try:
            sock.connect(str(state_dir() / SOCKET_FILE))
            sock.sendall(json.dumps({"op": op, **fields}).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
        except OSError as exc:
            raise ControlError(f"cannot reach the lab supervisor: {exc}") from exc
    try:
        reply: dict[str, Any] = json.loads(data)
    except ValueError:
        raise ControlError("the lab supervisor gave no answer") from None
    if not reply.get("ok"):
        raise ControlError(str(reply.get("error")))
    return reply


def down() -> str | None:
    """Stop the lab (by its supervisor's PID); returns the run id, or None when none was up."""
    directory = state_dir()
    state = read_state(directory)
    if state is None:
        _sweep_dead(directory)
        return None
    pid = int(state["pid"])
    try:
        request("down")
    except ControlError:
        os.kill(pid, 15)
    deadline = time.monotonic() + DOWN_TIMEOUT_S
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    if alive(pid):
        os.kill(pid, 9)
    from lab.leftovers import sweep

    sweep(str(state["run_id"]))
    for name in (STATE_FILE, SOCKET_FILE, REQUEST_FILE):
        (directory / name).unlink(missing_ok=True)
    return str(state["run_id"])


def _sweep_dead(directory: Path) -> None:
    """Clean up after a supervisor that died hard (state file left, PID gone)."""
    path = directory / STATE_FILE
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    if not alive(int(state.get("pid", 0))):
        from lab.leftovers import sweep

        sweep(str(state.get("run_id", "")))
        for name in (STATE_FILE, SOCKET_FILE):
            (directory / name).unlink(missing_ok=True)
