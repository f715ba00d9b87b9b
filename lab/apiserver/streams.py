"""Streaming responses: watch (one JSON event per chunk) and pods/log (the log source's bytes).

Watch: staging/src/k8s.io/apiserver/pkg/endpoints/handlers/watch.go (chunked JSON events,
``timeoutSeconds``) and the watch cache (a too-old resourceVersion is answered 200 with one
``ERROR`` event carrying a 410 ``Expired`` Status, as cacher.go's ``newErrWatcher`` does;
``sendInitialEvents=true`` ends the initial ADDED events with a BOOKMARK annotated
``k8s.io/initial-events-end``). Logs: pkg/registry/core/pod/strategy.go ``LogLocation`` picks the
container and words the errors; the kubelet's part is the log source's.
"""

from __future__ import annotations

import inspect
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from lab.apiserver.errors import ApiError, BadRequest, LogUnavailable, NotFound
from lab.apiserver.requestinfo import RequestInfo
from lab.apiserver.resources import ResourceType
from lab.apiserver.selectors import field_matcher, label_matcher
from lab.apiserver.store import Store

LogSource = Callable[..., Iterator[bytes]]
SEND_ERRORS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, OSError, ValueError)


class ChunkedWriter(Protocol):
    def start(self, code: int, content_type: str) -> None: ...

    def chunk(self, data: bytes) -> None: ...

    def end(self) -> None: ...


def serve_watch(
    store: Store,
    info: RequestInfo,
    rtype: ResourceType,
    out: ChunkedWriter,
    stopping: threading.Event,
    render: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> None:
    """Stream events until the timeout, a dropped watch or the server stopping; ``render`` turns each
    object into what the client asked for (a Table row for ``kubectl get -w``)."""
    labels = label_matcher(info.query.get("labelSelector"))
    fields = field_matcher(info.query.get("fieldSelector"), rtype.group, rtype.plural)
    timeout = info.int_param("timeoutSeconds")
    try:
        watcher = store.watch(
            rtype,
            info.namespace or None,
            info.query.get("resourceVersion"),
            lambda o: labels(o) and fields(o),
            initial_bookmark=info.flag("sendInitialEvents"),
        )
    except ApiError as exc:
        if exc.code != 410:
            raise
        out.start(200, "application/json")
        out.chunk(json.dumps({"type": "ERROR", "object": exc.status()}).encode() + b"\n")
        out.end()
        return
    deadline = time.monotonic() + timeout if timeout else None
    try:
        out.start(200, "application/json")
        while not stopping.is_set():
            wait = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
            if wait <= 0:
                break
            try:
                item = watcher.queue.get(timeout=wait)
            except queue.Empty:
                continue
            if item is None:
                break
            event_type, obj = item
            shown = dict(obj, apiVersion=rtype.api_version(info.version))
            if render is not None and event_type != "BOOKMARK":
                shown = render(shown)
            out.chunk(json.dumps({"type": event_type, "object": shown}).encode() + b"\n")
        out.end()
    except SEND_ERRORS:
        pass
    finally:
        store.stop_watch(watcher)


def pick_container(pod: dict[str, Any], wanted: str | None) -> str:
    spec = pod.get("spec") or {}
    name = pod["metadata"]["name"]
    containers: list[str] = [c["name"] for c in spec.get("containers") or []]
    others = [c["name"] for key in ("initContainers", "ephemeralContainers") for c in spec.get(key) or []]
    if wanted:
        if wanted not in containers + others:
            raise BadRequest(f"container {wanted} is not valid for pod {name}")
        return str(wanted)
    if len(containers) == 1:
        return containers[0]
    if not containers:
        raise BadRequest(f"a container name must be specified for pod {name}")
    message = f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]"
    inits = [c["name"] for c in spec.get("initContainers") or []]
    if inits:
        message += f" or one of the init containers: [{' '.join(inits)}]"
    raise BadRequest(message)


def no_logs(
    namespace: str, pod: str, container: str, *, follow: bool, tail_lines: int | None
) -> Iterator[bytes]:
    """The log source until one is set: every container is still being created."""
    raise LogUnavailable(f'container "{container}" in pod "{pod}" is waiting to start: ContainerCreating')


def _accepts_previous(source: LogSource) -> bool:
    try:
        params = inspect.signature(source).parameters
    except (TypeError, ValueError):
        return False
    return "previous" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def serve_log(store: Store, source: LogSource, info: RequestInfo, out: ChunkedWriter) -> None:
    pod = store.get("pods", info.namespace, info.name)
    if pod is None:
        raise NotFound("pods", info.name)
    container = pick_container(pod, info.query.get("container"))
    kwargs: dict[str, Any] = {"follow": info.flag("follow"), "tail_lines": info.int_param("tailLines")}
    if info.flag("previous"):
        if not _accepts_previous(source):
            raise BadRequest(f'previous terminated container "{container}" in pod "{info.name}" not found')
        kwargs["previous"] = True
    chunks = iter(source(info.namespace, info.name, container, **kwargs))
    first = next(chunks, b"")  # a source refusing the container raises here, before any byte is sent
    try:
        out.start(200, "text/plain")
        if first:
            out.chunk(first)
        for data in chunks:
            if data:
                out.chunk(data)
        out.end()
    except SEND_ERRORS:
        pass
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
