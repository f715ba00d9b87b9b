"""The store's change log: the resourceVersion counter, a bounded history of changes (what a watch
from an older resourceVersion replays; older than the history is 410 Expired, as the watch cache
answers in staging/src/k8s.io/apiserver/pkg/storage/cacher/watch_cache.go), the open watches and
the in-process subscribers. Every method runs under the store's lock."""

from __future__ import annotations

import copy
from collections import deque
from typing import Any

from lab.apiserver.errors import BadRequest, Expired
from lab.apiserver.resources import ResourceType
from lab.apiserver.watchers import Change, Dispatcher, Watcher


class ChangeLog:
    def __init__(self, history: int = 10000) -> None:
        self.rv = 1
        self.floor = 1  # every change after this resourceVersion is still in the history
        self._history: deque[Change] = deque()
        self._history_max = history
        self.watchers: set[Watcher] = set()
        self.dispatcher = Dispatcher()

    def record(
        self, kind: str, rtype: ResourceType, namespace: str, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        """A new resourceVersion for ``obj``; the change goes to the history, watches and subscribers."""
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        change = Change(
            self.rv,
            kind,
            rtype.group,
            rtype.plural,
            namespace,
            copy.deepcopy(obj),
            copy.deepcopy(old) if old is not None else None,
        )
        self._history.append(change)
        while len(self._history) > self._history_max:
            self.floor = self._history.popleft().rv
        for watcher in self.watchers:
            watcher.offer(change)
        self.dispatcher.publish(kind, change.obj)

    def replay(self, watcher: Watcher, resource_version: str) -> None:
        """Queue on ``watcher`` every change after ``resource_version`` (410 when it is too old)."""
        try:
            since = int(resource_version)
        except ValueError:
            raise BadRequest(
                f'resourceVersion: Invalid value: "{resource_version}": must be a non-negative integer'
            ) from None
        if since < self.floor:
            raise Expired(f"too old resource version: {since} ({self.floor})")
        for change in self._history:
            if change.rv > since:
                watcher.offer(change)

    def drop_watches(self) -> int:
        watchers, self.watchers = list(self.watchers), set()
        for watcher in watchers:
            watcher.close()
        return len(watchers)

    def compact(self) -> str:
        self._history.clear()
        self.floor = self.rv
        return str(self.rv)
