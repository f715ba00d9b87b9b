"""Translate vector cases and calls to each path's API, and each path's answer back to
:class:`~tests.vectors.outcome.Observed`.

- predictions: ``diag.model.loader.load_documents`` + ``diag.model.snapshot.Snapshot.build`` +
  ``diag.predict.sidecar.predict(snapshot, Source, Call)``;
- generated config: ``lab.istiod.generate(objects, PodView)`` read by
  ``diag.live.path.match(config, LiveCall)``.

Which expectation fields each path can observe is declared here (``OBSERVABLE``), so a field a
path cannot see is reported as such instead of silently passing or failing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tests.vectors.outcome import LIVEPATH_ERRORS, Observed
from tests.vectors.vector_format import VectorCall, VectorCase

OBSERVABLE = {
    # diag.predict.sidecar.EnvoyPath has listener/filter_chain/route (the route config)/vhost/cluster,
    # Prediction.route_name the route's own name (VirtualService routes); of Istio's errors
    # "none" (a path ending in a cluster or a virtual host) and "no_route" (http_action).
    "predict": frozenset(
        {"listener", "filter_chain", "route_config", "vhost", "route", "cluster", "status", "error"}
    ),
    # diag.live.path.LivePath has all of them (route_entry is the route's name).
    "generated": frozenset(
        {"listener", "filter_chain", "route_config", "vhost", "route", "cluster", "status", "error"}
    ),
}


def http_version(call: VectorCall) -> str | None:
    """The HTTP version a call speaks (None for opaque TCP)."""
    return {"http": "1.1", "http2": "2"}.get(call.protocol)


# ------------------------------------------------------------------------------------------
# Predictions (diag.predict.sidecar)
# ------------------------------------------------------------------------------------------


def predict_protocol(call: VectorCall) -> str:
    """Istio's (protocol, tls) pair as ``diag.predict.sidecar.Call.protocol``."""
    if call.tls:
        return "tls" if call.protocol == "tcp" else "https"
    return "tcp" if call.protocol == "tcp" else "http"


def predict_call(call: VectorCall) -> Any:
    """A ``diag.predict.sidecar.Call`` for this call (the address is always given, as in Istio's tests)."""
    from diag.predict.sidecar import Call

    host = call.host or call.address
    headers = tuple(call.headers.items())
    if call.protocol != "tcp" and not call.tls:
        headers = (("host", host), *headers)  # the Host header exactly as the simulator sends it
    return Call(
        host=_bare_host(host),
        port=call.port,
        protocol=predict_protocol(call),
        sni=call.sni if call.tls else None,
        address=call.address,
        http_version=http_version(call) or "1.1",
        path=call.path,
        method=call.method,
        headers=headers,
    )


def _bare_host(host: str) -> str:
    """``name:port`` → ``name`` (IPv6 literals untouched)."""
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def predict_source(case: VectorCase) -> Any:
    """A ``diag.predict.sidecar.Source`` for the case's proxy."""
    from diag.predict.sidecar import Source

    capture = case.proxy.dns_capture
    return Source(
        namespace=case.proxy.namespace,
        labels=dict(case.proxy.labels),
        dns_capture=capture,
        auto_allocate=capture,
        pod_ips=tuple(case.proxy.ips),
    )


def snapshot_for(case: VectorCase) -> Any:
    """Load the case's objects and mesh config into a ``diag.model.snapshot.Snapshot``; loader
    problems are raised (a vector's config must load)."""
    from diag.model.loader import load_documents, parse_mesh_config
    from diag.model.snapshot import Snapshot

    loaded = load_documents([dict(o) for o in case.config], origin=case.id)
    errors = [str(p) for p in loaded.problems if p.level == "error"]
    if errors:
        raise AssertionError(f"{case.id}: the loader rejected the config: {errors}")
    return Snapshot.build(loaded.objects, parse_mesh_config(dict(case.mesh)))


def observed_from_prediction(prediction: Any) -> Observed:
    """A ``diag.predict.sidecar.Prediction`` as an observation."""
    path = prediction.path
    error = "none" if (path.cluster or path.vhost) else "no_path_predicted"
    if prediction.http_action == "no_route":
        error = "no_route"
    return Observed(
        listener=path.listener,
        filter_chain=path.filter_chain,
        route_config=path.route,
        vhost=path.vhost,
        route=prediction.route_name,
        cluster=None if prediction.weighted else path.cluster,
        status=None if prediction.local_status is None else str(prediction.local_status),
        error=error,
        detail=f"(verdict {prediction.verdict}; notes {list(prediction.notes)})",
    )


# ------------------------------------------------------------------------------------------
# Generated config (lab.istiod.generate) through the live-path matcher (diag.live.path)
# ------------------------------------------------------------------------------------------


def pod_view(case: VectorCase) -> Any:
    """A ``lab.istiod.PodView`` for the case's proxy."""
    from lab.istiod import PodView

    return PodView(
        namespace=case.proxy.namespace,
        labels=dict(case.proxy.labels),
        dns_capture=case.proxy.dns_capture,
        mesh=dict(case.mesh),
        pod_ips=tuple(case.proxy.ips),
    )


def live_call(call: VectorCall) -> Any:
    """A ``diag.live.path.LiveCall`` exactly as Istio's simulator sends the call: the Host header
    as written (no port added), the TLS ClientHello's SNI and ALPN as written."""
    from diag.live.path import LiveCall

    if call.tls:
        alpn = (call.alpn,) if call.alpn else ()
        return LiveCall(call.port, call.address, "tls", call.sni, alpn, None, None, call.path)
    return LiveCall(
        call.port,
        call.address,
        "raw_buffer",
        call.sni,
        (),
        call.host,
        http_version(call),
        call.path,
        call.method,
        tuple((k.lower(), v) for k, v in call.headers.items()),
    )


def observed_from_livepath(path: Any) -> Observed:
    """A ``diag.live.path.LivePath`` as an observation."""
    return Observed(
        listener=path.listener,
        filter_chain=path.filter_chain,
        route_config=path.route,
        vhost=path.vhost,
        route=path.route_entry,
        cluster=None if path.weighted else path.cluster,
        status=None if path.local_status is None else str(path.local_status),
        error=LIVEPATH_ERRORS.get(path.outcome, path.outcome),
        detail=f"(outcome {path.outcome}; notes {list(path.notes)})",
    )


def route_tables_of(generated: Any) -> dict[str, dict[str, tuple[str, ...]]]:
    """``route config name -> domain -> sorted clusters of the vhost's routes`` for every HTTP
    connection manager in the generated listeners (Istio's ``xdstest.ExtractVirtualHosts``)."""
    from diag.live.path import load_config

    tables: dict[str, dict[str, tuple[str, ...]]] = {}
    for listener in load_config({"listeners": list(generated.listeners)}).listeners:
        for chain in listener.get("filter_chains", []) or []:
            for rc in _inline_route_configs(chain):
                tables.setdefault(str(rc.get("name", "")), _vhost_table(rc))
    return tables


def _inline_route_configs(chain: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found = []
    for flt in chain.get("filters", []) or []:
        typed = flt.get("typed_config") or {}
        rc = typed.get("route_config")
        if isinstance(rc, Mapping):
            found.append(rc)
    return found


def _vhost_table(rc: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    table: dict[str, tuple[str, ...]] = {}
    for vh in rc.get("virtual_hosts", []) or []:
        clusters = sorted(
            str(r["route"]["cluster"])
            for r in vh.get("routes", []) or []
            if isinstance(r.get("route"), Mapping) and r["route"].get("cluster")
        )
        for domain in vh.get("domains", []) or []:
            table[str(domain)] = tuple(clusters)
    return table


def listener_ports(generated: Any) -> dict[int, list[str]]:
    """``port -> listener names`` of the generated listeners."""
    from diag.live.path import load_config

    ports: dict[int, list[str]] = {}
    for listener in load_config({"listeners": list(generated.listeners)}).listeners:
        sock = (listener.get("address") or {}).get("socket_address") or {}
        port = int(sock.get("port_value", 0) or 0)
        ports.setdefault(port, []).append(str(listener.get("name", "")))
    return ports
