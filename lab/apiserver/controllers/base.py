"""A controller loop: store changes in, one worker thread, timers for "look again at T"."""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Item = tuple[str, dict[str, Any]]


class Worker:
    """Subclasses say which objects they want (``wants``) and what to do (``handle``, ``fire``)."""

    name = "controller"

    def __init__(self, store: Any) -> None:
        self.store = store
        self._queue: queue.SimpleQueue[Item | None] = queue.SimpleQueue()
        self._timers: list[tuple[float, int, Any]] = []
        self._seq = itertools.count()
        self._timer_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._idle = threading.Condition()
        self._pending = 0

    # ---- for subclasses ------------------------------------------------------------------------

    def wants(self, obj: dict[str, Any]) -> bool:
        return False

    def handle(self, event_type: str, obj: dict[str, Any]) -> None:
        """React to one change (``SYNC`` for objects present at start)."""

    def fire(self, key: Any) -> None:
        """A timer set with ``after`` is due."""

    def after(self, seconds: float, key: Any) -> None:
        with self._timer_lock:
            heapq.heappush(self._timers, (time.monotonic() + max(0.0, seconds), next(self._seq), key))
        self._queue.put(("WAKE", {}))

    # ---- the loop ------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=f"apiserver-{self.name}", daemon=True)
        self._thread.start()
        self._unsubscribe = self.store.subscribe(self._offer)
        for obj in self.store.objects():
            self._offer("SYNC", obj)

    def _offer(self, event_type: str, obj: dict[str, Any]) -> None:
        if self.wants(obj):
            with self._idle:
                self._pending += 1
            self._queue.put((event_type, obj))

    def _next_timeout(self) -> float | None:
        with self._timer_lock:
            if not self._timers:
                return None
            return max(0.0, self._timers[0][0] - time.monotonic())

    def _due(self) -> list[Any]:
        now, keys = time.monotonic(), []
        with self._timer_lock:
            while self._timers and self._timers[0][0] <= now:
                keys.append(heapq.heappop(self._timers)[2])
        return keys

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self._next_timeout())
            except queue.Empty:
                item = ("WAKE", {})
            if item is None:
                return
            try:
                if item[0] != "WAKE":
                    self.handle(*item)
                for key in self._due():
                    self.fire(key)
            except Exception:
                log.exception("%s failed", self.name)
            finally:
                if item[0] != "WAKE":
                    with self._idle:
                        self._pending -= 1
                        self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=5)
