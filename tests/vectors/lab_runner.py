"""Run vector cases in the real lab (``lab.Lab``) and read what Envoy chose from its
access log (``lab/bootstrap.py`` ``ACCESS_LOG_JSON_FORMAT``, Istio's JSON keys).

One lab serves every case: ``lab.apply(config, mode=…)`` regenerates the sidecar config and
restarts Envoy (≈0.2 s) instead of building a new lab. The lab's mesh config shortens
``connectTimeout`` to ``LAB_CONNECT_TIMEOUT``: passed-through calls go to addresses the lab
internet silently drops (the simulator's ``1.3.3.7``), and Envoy logs such a connection only when
its upstream connect gives up (10 s by default). The timeout changes no routing decision.

A case's calls run in one ``pod.exec`` of ``lab_client.py``, each from its own source port; the
(client ``ip:port``, original destination) pair finds the call's access-log line
(``downstream_remote_address``, ``downstream_local_address``).

What Envoy shows, and so what the lab path can check (``OBSERVABLE``); the expectation is always
the vector's own, never adjusted to the running Envoy:

- ``cluster``: ``upstream_cluster`` (``%UPSTREAM_CLUSTER_RAW%``). A route to a cluster that is
  not in the config (pilot routes to undefined clusters, e.g. a VirtualService destination that is
  no service) gets ``503 NC`` and an access-log line without a cluster name; Envoy's router then
  logs ``unknown cluster '<name>'`` at debug level, tagged with the connection id that its
  ``conn_handler`` logged with the client's address. The runner turns those two components to
  debug (admin ``/logging``) and reads the name from there; a ``503 NC`` whose name cannot be
  found is observed as ``NC_UNNAMED``, which matches no expectation;
- ``route``: ``route_name`` (the route's own name);
- ``vhost``: only ``block_all``, read from ``route_name`` — pilot names the one route of the
  ``block_all`` virtual host ``block_all`` too (``httproute.go`` ``buildCatchAllVirtualHost``);
- ``status``: the status the client read (asserted only where the sidecar answers itself);
- ``error``: ``no_route`` for flag ``NR`` (no virtual host or no route: Envoy gives the same flag
  for both, so an expected ``no_virtual_host`` is compared as ``no_route``), ``protocol_error``
  for ``DPE``, else ``none`` when Envoy logged the connection (a filter chain with a TCP proxy or
  an HTTP connection manager took it). Listener and filter-chain names are not in the log.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.vectors.outcome import Observed
from tests.vectors.vector_format import VectorCall, VectorCase

OBSERVABLE = frozenset({"cluster", "route", "vhost", "status", "error"})
LAB_CONNECT_TIMEOUT = "0.2s"
NC_UNNAMED = "<503 NC: the router logged no cluster name>"
DEBUG_LOGGING = "/logging?paths=router:debug,conn_handler:debug"
_NEW_CONNECTION = re.compile(r'"ConnectionId":"(\d+)"\] new connection from (\S+)')
_UNKNOWN_CLUSTER = re.compile(r'"ConnectionId":"(\d+)".*\] unknown cluster \'([^\']*)\'')
CLIENT_SOURCE = (Path(__file__).parent / "lab_client.py").read_text()
LOG_WAIT_S = 3.0
BLOCK_ALL = "block_all"


FIRST_SOURCE_PORT = 20000


class VectorLab:
    """One lab for a set of cases (a context manager). Its internet serves every host any case
    names from the start, so ``apply`` never has to add a host again (re-adding a host an
    earlier ``apply`` dropped fails in ``Lab._refresh_internet``: "Address already assigned").

    ``gateway=True`` runs the lab's egress gateway for gateway-proxy cases
    (``tests/vectors/gateway_lab.py``); sidecar cases run in a lab without one, whose Service
    would otherwise join every sidecar's config."""

    def __init__(self, cases: Sequence[VectorCase], gateway: bool = False) -> None:
        from lab.istiod import internet_hosts
        from lab.runtime import Lab
        from tests.vectors.gateway_lab import GatewayCalls, GatewaySource

        hosts = {h.host for case in cases for h in internet_hosts([dict(o) for o in case.config])}
        self.gateway_source = GatewaySource() if gateway else None
        self.lab = Lab(
            access_log=True,
            drain_seconds=0.1,
            mesh={"connectTimeout": LAB_CONNECT_TIMEOUT},
            internet=sorted(hosts),
            egress_gateway=gateway,
            gateway_source=self.gateway_source,
        )
        self.gateway_calls = GatewayCalls(self.lab)
        self.next_port: dict[str, int] = {}

    def __enter__(self) -> VectorLab:
        from tests.vectors.gateway_lab import allow_low_ports

        self.lab.__enter__()
        if self.gateway_source is not None:
            allow_low_ports(self.lab)
        return self

    def __exit__(self, *exc: object) -> None:
        self.lab.close()

    def run_case(self, case: VectorCase, calls: Sequence[VectorCall]) -> dict[str, Observed]:
        """Apply the case's config, make its calls, and read each call's access-log line."""
        extra = set(case.mesh) - {"outboundTrafficPolicy"}
        if extra:
            raise AssertionError(f"{case.id}: mesh settings {sorted(extra)} are not passed to the lab")
        if case.proxy.is_gateway:
            if self.gateway_source is None:
                raise AssertionError(f"{case.id}: a gateway case needs VectorLab(gateway=True)")
            self.gateway_source.set_case(case)
            self.lab.apply([dict(o) for o in case.config], mode=case.mode)
            return self.gateway_calls.run(case, calls)
        pod = pod_for(self.lab, case)
        self.lab.apply([dict(o) for o in case.config], mode=case.mode)
        status, body = pod.admin_request(DEBUG_LOGGING, method="POST")
        if status != 200:
            raise AssertionError(f"admin {DEBUG_LOGGING}: HTTP {status} {body[:200]}")
        log_start = _size(pod.envoy.log_path)
        first = self.next_port.get(pod.namespace + "/" + pod.spec.name, FIRST_SOURCE_PORT)
        argv = [sys.executable, "-c", CLIENT_SOURCE, json.dumps([call_json(c) for c in calls]), str(first)]
        done = pod.exec(argv, timeout=60)
        if done.returncode != 0:
            raise AssertionError(f"lab client failed: {done.stderr.strip()[-500:]}")
        out = json.loads(done.stdout)
        self.next_port[pod.namespace + "/" + pod.spec.name] = int(out["next_port"])
        results = {r["name"]: r for r in out["results"]}
        keys = {c.name: log_key(results[c.name]["local"], c) for c in calls}
        lines = _wait_for_lines(pod, {k for k in keys.values() if k})
        unknown = unknown_clusters(_read_from(pod.envoy.log_path, log_start))
        return {
            c.name: observe(results[c.name], lines.get(keys[c.name]), unknown.get(results[c.name]["local"]))
            for c in calls
        }


def call_json(call: VectorCall) -> dict[str, Any]:
    """The call as ``lab_client.py`` takes it."""
    return {
        "name": call.name,
        "address": call.address,
        "port": call.port,
        "protocol": call.protocol,
        "tls": call.tls,
        "host": call.host,
        "sni": call.sni,
        "alpn": call.alpn,
        "path": call.path,
        "method": call.method,
        "headers": dict(call.headers),
    }


def pod_for(lab: Any, case: VectorCase) -> Any:
    """The lab pod standing for the case's proxy (one per namespace/labels/DNS-capture shape)."""
    labels = dict(case.proxy.labels)
    ipv6 = "ipv6" in case.requires  # a dual-stack pod (lab.ipv6), as the case's proxy is
    parts = [*(f"{k}-{v}" for k, v in sorted(labels.items())), "dns" if case.proxy.dns_capture else "plain"]
    name = re.sub(r"[^a-z0-9-]+", "-", "vec-" + "-".join(parts + (["v6"] if ipv6 else [])).lower())
    return lab.pod(case.proxy.namespace, name, labels=labels, dns_capture=case.proxy.dns_capture, ipv6=ipv6)


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _read_from(path: Path, offset: int) -> str:
    with path.open("rb") as log:
        log.seek(offset)
        return log.read().decode("utf-8", "replace")


def unknown_clusters(envoy_log: str) -> dict[str, str]:
    """Client ``ip:port`` → the cluster name the router did not find, from Envoy's debug log:
    ``conn_handler`` logs ``[Tags: "ConnectionId":"N"] new connection from IP:PORT`` and the router
    ``[Tags: "ConnectionId":"N",...] unknown cluster 'NAME'``."""
    clients: dict[str, str] = {}
    out: dict[str, str] = {}
    for line in envoy_log.splitlines():
        if found := _NEW_CONNECTION.search(line):
            clients[found.group(1)] = found.group(2)
        elif (found := _UNKNOWN_CLUSTER.search(line)) and found.group(1) in clients:
            out[clients[found.group(1)]] = found.group(2)
    return out


def log_key(local: str | None, call: VectorCall) -> tuple[str, str] | None:
    """(client ``ip:port``, original destination ``ip:port``) — how a call's access-log line is
    found (``downstream_remote_address``, ``downstream_local_address``)."""
    if local is None:
        return None
    address = f"[{call.address}]" if ":" in call.address else call.address  # Envoy brackets IPv6
    return local, f"{address}:{call.port}"


def _wait_for_lines(
    pod: Any, wanted: set[tuple[str, str]]
) -> dict[tuple[str, str] | None, Mapping[str, Any]]:
    """The latest access-log line per key (a client port the kernel reused for an earlier call
    to the same destination has an older line, which the newer one replaces)."""
    deadline = time.monotonic() + LOG_WAIT_S
    while True:
        lines: dict[tuple[str, str] | None, Mapping[str, Any]] = {
            (str(e.get("downstream_remote_address")), str(e.get("downstream_local_address"))): e
            for e in pod.access_log()
        }
        if wanted <= set(lines) or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def _field(entry: Mapping[str, Any], key: str) -> str | None:
    value = entry.get(key)
    return None if value in (None, "", "-") else str(value)


def observe(
    result: Mapping[str, Any], entry: Mapping[str, Any] | None, unknown_cluster: str | None = None
) -> Observed:
    """One call's client result, access-log line and (for ``503 NC``) the cluster name the router
    logged, as an observation."""
    client = f"(client: status {result.get('status')}, error {result.get('error')})"
    if result.get("local") is None:
        return Observed(error="connect_failed", detail=client)
    if entry is None:
        return Observed(error="no_access_log_line", detail=client)
    route = _field(entry, "route_name")
    flags = (_field(entry, "response_flags") or "").split(",")
    cluster = _field(entry, "upstream_cluster")
    if cluster is None and "NC" in flags:
        cluster = unknown_cluster or NC_UNNAMED
    error = "no_route" if "NR" in flags else "protocol_error" if "DPE" in flags else "none"
    status = result.get("status")
    return Observed(
        cluster=cluster,
        route=route,
        vhost=BLOCK_ALL if route == BLOCK_ALL else None,
        status=None if status is None else str(status),
        error=error,
        detail=f"(log: {dict(entry)}) {client}",
    )


def lab_expectation(wanted: Mapping[str, str]) -> dict[str, str]:
    """The expectation in the access log's vocabulary: its ``NR`` flag is Envoy's answer both when
    no virtual host and when no route matches, so ``no_virtual_host`` is compared as ``no_route``;
    a virtual host's name is visible only for ``block_all`` (through its route's name), so another
    expected vhost is not compared. A fixed rule of the oracle, never the running Envoy's state:
    otherwise the expectation is the vector's."""
    out = dict(wanted)
    if out.get("error") == "no_virtual_host":
        out["error"] = "no_route"
    if out.get("vhost") not in (None, BLOCK_ALL):
        del out["vhost"]
    return out
