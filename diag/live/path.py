"""The live path: which listener, filter chain, route/virtual host and cluster an Envoy sidecar
picks for one call, read from its own configuration (the report's ``actual``, docs/schema.md).

The public entry points: :func:`match`/:func:`trace` (one call), :func:`load_config` (any
supported config shape, ``config.py``), :func:`effective_mode`, :func:`catchall_cluster`,
:func:`empty_clusters` and :func:`rejected_updates` (whole-proxy facts, ``proxy.py``), plus
:class:`LiveCall`/:class:`LivePath` (``call.py``), :func:`chain_label` and :func:`match_vhost`.

What is implemented is Envoy's own selection, as documented for
``envoy.config.listener.v3.FilterChainMatch`` and followed by Istio's simulator
(istio/istio ``pilot/pkg/simulation/traffic.go``, ``matchListener``/``matchFilterChain``/
``matchVirtualHost``), in this order: the listener and filter chain (``listeners.py``), the
network filters — HTTP connection manager or TCP proxy (``filters.py``) — and, for HTTP, the
virtual host, route and its action (``routes.py``). Config Envoy would reject gives the outcome
``invalid_config`` (``fields.py``).
"""

from __future__ import annotations

from typing import Any

from diag.live.call import LiveCall, LivePath, with_changes
from diag.live.config import EnvoyConfig, load_config
from diag.live.fields import InvalidConfig, Json, as_text
from diag.live.filters import HCM, TCP_PROXY, run_filters
from diag.live.listeners import VIRTUAL_OUTBOUND, chain_label, detected, select_chain, select_listener
from diag.live.proxy import (
    BLACKHOLE,
    CATCHALL_CHAIN,
    PASSTHROUGH,
    catchall_cluster,
    effective_mode,
    empty_clusters,
    rejected_updates,
)
from diag.live.routes import REDIRECT_CODES, match_vhost

__all__ = [
    "BLACKHOLE",
    "CATCHALL_CHAIN",
    "HCM",
    "PASSTHROUGH",
    "REDIRECT_CODES",
    "TCP_PROXY",
    "VIRTUAL_OUTBOUND",
    "EnvoyConfig",
    "InvalidConfig",
    "Json",
    "LiveCall",
    "LivePath",
    "catchall_cluster",
    "chain_label",
    "effective_mode",
    "empty_clusters",
    "load_config",
    "match",
    "match_vhost",
    "rejected_updates",
    "trace",
]


def trace(config: Any, call: Any) -> LivePath:
    """The full decision for one call (see the module docstring for Envoy's order). Config Envoy
    would reject (a field of the wrong type or value, in a truncated or hand-edited dump) gives
    outcome ``invalid_config`` naming the field; any other exception is a bug and propagates."""
    try:
        return _trace(config, call)
    except InvalidConfig as exc:
        return LivePath("invalid_config", notes=(f"Envoy would reject this config: {exc}",))


def _trace(config: Any, call: Any) -> LivePath:
    cfg = load_config(config)
    live = LiveCall.from_call(call)
    listener, via_original_dst, notes = select_listener(cfg.listeners, live)
    if listener is None:
        return LivePath("no_listener", notes=tuple(notes))
    name = as_text(listener.get("name"), "listener.name")
    if listener.get("filter_chain_matcher"):
        notes.append(
            "listener uses filter_chain_matcher (unified matcher): not evaluated, filter_chain_match used"
        )
    sni, alpn, transport = detected(listener, live)
    chain = select_chain(listener, live, sni, alpn, transport)
    if chain is None:
        return LivePath(
            "no_filter_chain",
            name,
            via_original_dst=via_original_dst,
            notes=(*notes, "no filter chain matched and no default chain: Envoy closes"),
        )
    base = LivePath(
        "cluster", name, chain_label(chain), via_original_dst=via_original_dst, notes=tuple(notes)
    )
    result = run_filters(cfg, listener, chain, live, base)
    if result.cluster and cfg.clusters:
        known = cfg.cluster(result.cluster) is not None
        extra = () if known else (f"cluster {result.cluster} is not in the config (503 NC / close)",)
        result = with_changes(result, cluster_known=known, notes=(*result.notes, *extra))
    return result


def match(config: Any, call: Any) -> LivePath:
    """Which listener/chain/route/vhost/cluster Envoy picks (the report's ``actual``); the result has
    the attributes of ``diag.predict.sidecar.EnvoyPath`` plus the outcome and notes."""
    return trace(config, call)
