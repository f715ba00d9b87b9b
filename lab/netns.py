"""Network namespaces: create/delete them with ``ip``, and reach into them from this process.

Reaching in never forks: a one-thread executor per namespace calls ``setns(2)`` once (network
namespaces are per thread), and sockets created on that thread belong to the namespace for life —
so one asyncio loop can serve sockets in many namespaces. ``socket_in(..., uid=1337)`` also sets
the thread's fsuid/fsgid while creating the socket, so iptables ``-m owner`` sees the proxy's
uid/gid, as it would for pilot-agent's own sockets.

Child processes enter a namespace through ``nsenter --net=/run/netns/NAME`` (no ``ip netns exec``,
which would bind-mount ``/etc/netns`` files; the lab writes nothing under ``/etc``).
"""

from __future__ import annotations

import ctypes
import os
import socket
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)


class NetnsError(RuntimeError):
    """An ``ip``/``iptables`` command or a setns call failed."""


def run(argv: Sequence[str], *, stdin: str | None = None, timeout: float = 20.0) -> str:
    """Run a command, return stdout; raise NetnsError with its stderr on failure."""
    try:
        done = subprocess.run(
            list(argv), input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NetnsError(f"{argv[0]}: {exc}") from exc
    if done.returncode != 0:
        raise NetnsError(f"`{' '.join(argv[:6])}` failed: {done.stderr.strip()[:400]}")
    return done.stdout


def ip_batch(commands: Sequence[str], netns: str | None = None) -> None:
    """Run several ``ip`` commands in one process (``ip [-n NS] -batch -``)."""
    argv = ["ip", *(["-n", netns] if netns else []), "-batch", "-"]
    run(argv, stdin="\n".join(commands) + "\n")


def list_netns() -> list[str]:
    """Names of the named network namespaces on this host."""
    try:
        return sorted(p.name for p in NETNS_DIR.iterdir())
    except FileNotFoundError:
        return []


def delete_netns(name: str) -> None:
    """Delete a namespace we created (idempotent)."""
    if (NETNS_DIR / name).exists():
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False, timeout=20)


def nsenter_argv(netns: str) -> list[str]:
    """Prefix that runs a command inside ``netns``."""
    return ["nsenter", f"--net={NETNS_DIR / netns}", "--"]


def _setns(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise NetnsError(f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


class NetnsThread:
    """A single worker thread living inside one network namespace."""

    def __init__(self, netns: str) -> None:
        self.netns = netns
        self._pool = ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix=f"netns-{netns}",
            initializer=_setns,
            initargs=(NETNS_DIR / netns,),
        )

    def socket(
        self,
        family: int = socket.AF_INET,
        kind: int = socket.SOCK_STREAM,
        *,
        uid: int | None = None,
        gid: int | None = None,
    ) -> socket.socket:
        """A socket in this namespace, owned (for ``-m owner``) by uid/gid when given."""
        return self._pool.submit(_make_socket, family, kind, uid, gid).result(timeout=10)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _make_socket(family: int, kind: int, uid: int | None, gid: int | None) -> socket.socket:
    # setfsuid/setfsgid are per-thread syscalls: they only affect this worker thread.
    if gid is not None:
        _libc.setfsgid(gid)
    if uid is not None:
        _libc.setfsuid(uid)
    try:
        return socket.socket(family, kind)
    finally:
        if uid is not None:
            _libc.setfsuid(0)
        if gid is not None:
            _libc.setfsgid(0)
