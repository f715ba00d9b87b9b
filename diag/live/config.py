"""A proxy's listeners, clusters and route configurations, from any shape the project meets: an
admin ``config_dump`` (``{"configs": [...]}`` with ``dynamic_listeners[].active_state.listener``,
``dynamic_active_clusters[].cluster``, ``dynamic_route_configs[].route_config``), a bootstrap
(``static_resources``), the flat ``{"listeners", "clusters", "routes"}`` the probe's sidecar
evidence and the lab generator give, and ``istioctl proxy-config -o json`` output (camelCase keys
are accepted). Resources in an error state (a NACKed update) are named in ``rejected``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from diag.live.fields import Json


@dataclass(frozen=True)
class EnvoyConfig:
    """Listeners, clusters and route configurations of one proxy, whatever shape they came in.
    ``rejected`` names resources in an error state (a NACKed update)."""

    listeners: tuple[Json, ...] = ()
    clusters: tuple[Json, ...] = ()
    routes: Mapping[str, Json] = field(default_factory=dict)
    rejected: tuple[str, ...] = ()

    def cluster(self, name: str) -> Json | None:
        return next((c for c in self.clusters if c.get("name") == name), None)

    def listener(self, name: str) -> Json | None:
        return next((li for li in self.listeners if li.get("name") == name), None)


_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


def _snake(value: Any) -> Any:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            key = str(k)
            if not key.startswith("@") and "." not in key and "-" not in key:
                key = _CAMEL.sub(r"_\1", key).lower() if key[:1].islower() else key
            out[key] = v if key in ("filter_metadata", "typed_filter_metadata") else _snake(v)
        return out
    if isinstance(value, list | tuple):
        return [_snake(v) for v in value]
    return value


def load_config(source: Any) -> EnvoyConfig:
    """Normalise any supported shape (see module docstring) into an :class:`EnvoyConfig`."""
    if isinstance(source, EnvoyConfig):
        return source
    if not isinstance(source, Mapping):
        config = getattr(source, "config", None)
        if isinstance(config, Mapping):  # probes.model.SidecarEvidence
            return load_config(config)
        source = {
            "listeners": list(getattr(source, "listeners", []) or []),
            "clusters": list(getattr(source, "clusters", []) or []),
            "routes": list(getattr(source, "routes", []) or []),
        }
    acc = _Accumulator()
    acc.add(_snake(source))
    return EnvoyConfig(
        tuple(acc.listeners.values()),
        tuple(acc.clusters.values()),
        dict(acc.routes),
        tuple(sorted(set(acc.rejected))),
    )


class _Accumulator:
    """Collects resources from nested dump sections; the first resource with a name wins."""

    def __init__(self) -> None:
        self.listeners: dict[str, Json] = {}
        self.clusters: dict[str, Json] = {}
        self.routes: dict[str, Json] = {}
        self.rejected: list[str] = []

    def add(self, doc: Json) -> None:
        for section in _items(doc.get("configs")):
            if isinstance(section, Mapping):
                self.add(section)
        for key in ("static_resources", "bootstrap"):
            if isinstance(doc.get(key), Mapping):
                self.add(doc[key])
        for key in ("listeners", "static_listeners", "dynamic_listeners"):
            for item in _items(doc.get(key)):
                self._listener(item)
        for key in ("clusters", "static_clusters", "dynamic_active_clusters"):
            for item in _items(doc.get(key)):
                self._put(self.clusters, _unwrap(item, "cluster"))
                if isinstance(item, Mapping) and item.get("error_state"):
                    self.rejected.append(f"cluster {item.get('name') or _name(item.get('cluster'))}")
        for key in ("routes", "route_configs", "static_route_configs", "dynamic_route_configs"):
            for item in _items(doc.get(key)):
                self._put(self.routes, _unwrap(item, "route_config"))

    def _listener(self, item: Any) -> None:
        if not isinstance(item, Mapping):
            return
        if item.get("error_state"):
            self.rejected.append(f"listener {item.get('name', '?')}")
        if "active_state" in item or "warming_state" in item or "error_state" in item:
            active = item.get("active_state")
            self._put(self.listeners, active.get("listener") if isinstance(active, Mapping) else None)
            return
        self._put(self.listeners, _unwrap(item, "listener"))

    @staticmethod
    def _put(target: dict[str, Json], resource: Any) -> None:
        if isinstance(resource, Mapping) and resource.get("name") is not None:
            target.setdefault(str(resource["name"]), resource)


def _items(value: Any) -> list[Any]:
    """A list from a dump section that should be one (anything else: nothing)."""
    return list(value) if isinstance(value, list | tuple) else []


def _unwrap(item: Any, key: str) -> Any:
    if isinstance(item, Mapping) and isinstance(item.get(key), Mapping):
        return item[key]
    return item


def _name(resource: Any) -> str:
    return str(resource.get("name", "?")) if isinstance(resource, Mapping) else "?"
