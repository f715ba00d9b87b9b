"""core/v1 Events as controllers record them (client-go tools/record: the ``<name>.<hex nanos>``
name, and a repeat of the same reason and message counted on the existing Event)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from lab.apiserver.defaults import now_rfc3339
from lab.apiserver.errors import ApiError


def reference(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    ref = {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "resourceVersion": meta.get("resourceVersion", ""),
    }
    if meta.get("namespace"):
        ref["namespace"] = meta["namespace"]
    return ref


def record_event(
    store: Any, involved: Mapping[str, Any], event_type: str, reason: str, message: str, component: str
) -> None:
    """Record (or count again) an Event about ``involved``; never raises."""
    ref = reference(involved)
    namespace = ref.get("namespace", "default")
    now = now_rfc3339()
    try:
        for event in store.list("events", namespace):
            same = event.get("involvedObject", {}).get("uid") == ref["uid"]
            if same and event.get("reason") == reason and event.get("message") == message:
                event["count"] = int(event.get("count") or 1) + 1
                event["lastTimestamp"] = now
                store.update(event)
                return
        store.create(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": f"{ref['name']}.{time.time_ns():x}", "namespace": namespace},
                "involvedObject": ref,
                "reason": reason,
                "message": message,
                "type": event_type,
                "source": {"component": component},
                "firstTimestamp": now,
                "lastTimestamp": now,
                "count": 1,
                "reportingComponent": component,
                "reportingInstance": "",
            }
        )
    except ApiError:
        pass
