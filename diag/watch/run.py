"""``meshprobe watch``'s process: connect, start the mesh watches and the HTTP endpoints, cycle
until SIGTERM or Ctrl-C (docs/watch.md)."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from dataclasses import asdict
from types import FrameType

from diag import errors


def run_watch(
    *,
    targets: list[str],
    presets: list[str],
    targets_configmap: str | None,
    namespace: str | None,
    kubeconfig: str | None,
    context: str | None,
    interval: float,
    jitter: float,
    timeout: float,
    expect: str,
    listen: str,
    events: bool,
    once: bool,
) -> int:
    """Run the watch; returns the exit code (0 after a clean stop; with ``once``, 1 when a target
    failed)."""
    from diag.cluster import Cluster
    from diag.watch.loop import Watcher, WatchOptions
    from diag.watch.memory import tune_malloc
    from diag.watch.server import serve

    if expect not in ("allowed", "blocked", "via-gateway"):
        raise errors.UsageError(f"--expect {expect}: use allowed, blocked or via-gateway")
    if not (targets or presets or targets_configmap):
        raise errors.UsageError("nothing to watch: give targets, --preset or --targets-configmap")
    _check_targets(targets)
    address = parse_listen(listen)
    cluster = Cluster.connect(kubeconfig, context, namespace)
    options = WatchOptions(
        targets=tuple(targets), presets=tuple(presets), targets_configmap=targets_configmap,
        interval=interval, jitter=jitter, timeout=timeout, expect=expect,
    )  # fmt: skip
    pod = _own_pod(cluster.namespace)
    if not once:
        tune_malloc()  # before the first probe thread: flat memory over days (diag/watch/memory.py)
    watcher = Watcher(cluster, options, pod=pod, events=events and not once)
    try:
        watcher.target_list()  # a bad preset or a missing ConfigMap fails now, not every cycle
        if once:
            verdicts = watcher.cycle()
            json.dump([asdict(v) for v in verdicts], sys.stdout, indent=2)
            sys.stdout.write("\n")
            return 0 if all(v.passed for v in verdicts) else 1
        watcher.start()
        server = serve(address, watcher, watcher.metrics)
        stop = threading.Event()
        _stop_on_signals(stop)
        try:
            watcher.run(stop)
        finally:
            server.shutdown()
            watcher.mesh.stop()
        return 0
    finally:
        cluster.close()


def _check_targets(targets: list[str]) -> None:
    """Bad targets are usage errors at start, not a failure every cycle."""
    from probes.targets import TargetError, parse_target

    for target in targets:
        try:
            parse_target(target)
        except TargetError as exc:
            raise errors.UsageError(str(exc)) from None


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``:PORT`` (all addresses)."""
    host, _, port = listen.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise errors.UsageError(f"--listen {listen}: expected HOST:PORT")
    return (host.strip("[]") or "0.0.0.0", number)


def _own_pod(namespace: str) -> tuple[str, str] | None:
    """The pod Events are about: ``POD_NAME`` (the downward API, as the manifest sets it)."""
    name = os.environ.get("POD_NAME")
    return (os.environ.get("POD_NAMESPACE") or namespace, name) if name else None


def _stop_on_signals(stop: threading.Event) -> None:
    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
