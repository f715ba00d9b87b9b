"""Injected failures: the next matching requests are answered with a chosen Status instead."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from lab.apiserver.errors import ApiError
from lab.apiserver.requestinfo import RequestInfo


@dataclass
class Fault:
    verb: str
    resource: str  # "pods", or "pods/log" for a subresource; "*" for any
    status: int
    message: str
    times: int
    namespace: str | None = None

    def matches(self, info: RequestInfo) -> bool:
        resource = f"{info.resource}/{info.subresource}" if info.subresource else info.resource
        return (
            self.verb in ("*", info.verb)
            and self.resource in ("*", resource)
            and (self.namespace is None or self.namespace == info.namespace)
        )


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def check(self, info: RequestInfo) -> None:
        """Raise the first armed fault matching this request (and count it down)."""
        if not info.resource_request:
            return
        with self._lock:
            for fault in self._faults:
                if fault.matches(info):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    raise ApiError(fault.status, fault.message)
