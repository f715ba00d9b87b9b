"""Change events and who receives them: watch streams (one queue each) and in-process subscribers
(one dispatcher thread, in commit order, never under the store lock).

A selector-filtered watch sees an object that starts matching as ADDED and one that stops
matching as DELETED, as the watch cache does (staging/src/k8s.io/apiserver/pkg/storage/cacher/
cache_watcher.go ``convertToWatchEvent``).
"""

from __future__ import annotations

import copy
import logging
import queue
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

Subscriber = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class Change:
    """One committed change: its resourceVersion, type, where it happened, the object (and before)."""

    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    group: str
    plural: str
    namespace: str
    obj: dict[str, Any]
    old: dict[str, Any] | None = None


class Watcher:
    """The queue behind one watch stream; ``None`` in the queue means the stream is over."""

    def __init__(
        self, group: str, plural: str, namespace: str | None, matches: Callable[[Mapping[str, Any]], bool]
    ) -> None:
        self.group, self.plural, self.namespace = group, plural, namespace
        self.matches = matches
        self.queue: queue.SimpleQueue[tuple[str, dict[str, Any]] | None] = queue.SimpleQueue()
        self.closed = threading.Event()

    def offer(self, change: Change) -> None:
        """Queue the event this change means for this watch, if any."""
        if change.group != self.group or change.plural != self.plural:
            return
        if self.namespace is not None and change.namespace != self.namespace:
            return
        now = self.matches(change.obj)
        before = change.old is not None and self.matches(change.old)
        if change.type == "MODIFIED":
            kind = "MODIFIED" if now and before else "ADDED" if now else "DELETED" if before else ""
        else:
            kind = change.type if now else ""
        if kind:
            self.queue.put((kind, change.obj))

    def close(self) -> None:
        if not self.closed.is_set():
            self.closed.set()
            self.queue.put(None)


class Dispatcher:
    """Calls every subscriber with each change, on one thread, in the order changes were committed."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[tuple[str, dict[str, Any]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._idle = threading.Condition()
        self._pending = 0

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        with self._lock:
            self._subscribers.append(fn)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="apiserver-dispatch", daemon=True)
                self._thread.start()

        def unsubscribe() -> None:
            with self._lock:
                if fn in self._subscribers:
                    self._subscribers.remove(fn)

        return unsubscribe

    def publish(self, event_type: str, obj: dict[str, Any]) -> None:
        """Called under the store lock, so the queue order is the commit order."""
        if self._thread is None:
            return
        with self._idle:
            self._pending += 1
        self._queue.put((event_type, obj))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            with self._lock:
                subscribers = list(self._subscribers)
            for fn in subscribers:
                try:
                    fn(item[0], copy.deepcopy(item[1]))
                except Exception:
                    log.exception("store subscriber failed on %s", item[0])
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until every published change has been handed to every subscriber."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=5)
