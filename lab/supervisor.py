"""The detached process that owns a lab for the CLI (``meshprobe lab up`` starts it).

``python -m lab.supervisor STATE_DIR`` reads ``STATE_DIR/request.json`` (objects, mode, internet
hosts), builds a ``Lab`` with its control plane (API server, injector, kubelet), writes
``STATE_DIR/state.json`` and prints one JSON line (``{"ok": true,
...}`` or ``{"ok": false, "error": ...}``) on stdout for ``up`` to read. It then serves one JSON
request per connection on ``STATE_DIR/control.sock`` (ops: ``status``, ``apply``, ``pod``,
``down``) in its main thread until ``down`` or SIGTERM/SIGINT; the Lab tears everything down on
the way out, and the state files are removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

from lab.control import REQUEST_FILE, SOCKET_FILE, STATE_FILE
from lab.pod import Pod, PodSpec
from lab.runtime import Lab


def pod_info(pod: Pod) -> dict[str, Any]:
    """What the CLI needs to exec into a pod without the supervisor."""
    return {
        "namespace": pod.namespace, "name": pod.spec.name, "netns": pod.net.netns,
        "resolv_conf": str(pod.resolv_conf), "ca_file": str(pod.ca_file), "address": pod.address,
    }  # fmt: skip


def _handle(lab: Lab, request: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    op = request.get("op")
    if op == "status":
        return {"ok": True, "status": lab.status()}, False
    if op == "apply":
        if lab.control_plane is not None:  # through the API, so kubectl and check see it too
            seconds = lab.control_plane.replace_objects(request.get("objects") or [])
            return {"ok": True, "seconds": seconds}, False
        seconds = lab.apply(request.get("objects"), mode=request.get("mode"))
        return {"ok": True, "seconds": seconds}, False
    if op == "pod":
        pod = lab.pod(str(request.get("namespace") or "default"))
        return {"ok": True, "pod": pod_info(pod)}, False
    if op == "down":
        return {"ok": True}, True
    return {"ok": False, "error": f"unknown op {op!r}"}, False


def _serve(lab: Lab, sock_path: Path) -> None:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock_path))
    sock_path.chmod(0o600)
    server.listen(8)
    with server:
        while True:
            conn, _ = server.accept()
            with conn:
                data = b""
                while not data.endswith(b"\n"):
                    chunk = conn.recv(1 << 20)
                    if not chunk:
                        break
                    data += chunk
                try:
                    reply, stop = _handle(lab, json.loads(data or b"{}"))
                except Exception as exc:
                    reply, stop = {"ok": False, "error": str(exc)}, False
                conn.sendall(json.dumps(reply).encode() + b"\n")
                if stop:
                    return


def main(argv: list[str]) -> int:
    state_dir = Path(argv[0])
    request = json.loads((state_dir / REQUEST_FILE).read_text())
    objects = request.get("objects") or []
    pods = [PodSpec(namespace=ns) for ns in request.get("namespaces") or ["default"]]
    sock_path = state_dir / SOCKET_FILE
    try:
        with Lab(objects, mode=request.get("mode"), internet=request.get("internet") or [], pods=pods,
                 api=True, native_sidecars=bool(request.get("native_sidecars")),
                 egress_gateway=bool(request.get("egress_gateway"))) as lab:
            state = {
                "pid": os.getpid(), "run_id": lab.run_id, "socket": str(sock_path),
                "kubeconfig": str(lab.kubeconfig) if lab.kubeconfig else None,
                "pods": [pod_info(p) for p in lab.pods.values()], "up_seconds": lab.timings.get("up"),
                "egress_gateway": lab.gateway.address if lab.gateway is not None else None,
            }  # fmt: skip
            (state_dir / STATE_FILE).write_text(json.dumps(state))
            print(json.dumps({"ok": True, **state}), flush=True)
            _serve(lab, sock_path)
    except Exception as exc:
        print(json.dumps({"ok": False, "error": str(exc)}), flush=True)
        return 4
    finally:
        for name in (STATE_FILE, SOCKET_FILE, REQUEST_FILE):
            with contextlib.suppress(FileNotFoundError):
                (state_dir / name).unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
