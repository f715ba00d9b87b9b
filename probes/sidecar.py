"""The sidecar's own evidence, read from inside the pod without harming anything (docs/probe-pod.md).

Public API (used by the probe runner and ``python -m probes``):

- ``detect(admin, timeout, *, agent)`` — is there a sidecar? (Envoy admin answers on
  127.0.0.1/::1:15000, or pilot-agent's readiness port :15021 answers.)
- ``wait_ready(timeout, *, agent)`` — bounded wait for ``GET :15021/healthz/ready`` → 200; seconds
  waited, or ``None``. With DNS capture, readiness also waits for the agent's DNS name table
  (istio ``pkg/istio-agent/agent.go``), so no DNS probe may start before it (review §1.5).
- ``snapshot_counters(targets, *, admin, timeout)`` — before probing: the attribution counters
  (``cluster.BlackHoleCluster.*``, ``cluster.PassthroughCluster.*``, ``tcp.BlackHoleCluster.*``,
  ``tcp.PassthroughCluster.*``, the targets' ``cluster.outbound|PORT|…|HOST`` counters). A stock
  sidecar does not emit them (Istio's bootstrap ``stats_matcher`` inclusion list,
  ``tools/packaging/common/envoy_bootstrap.json`` + ``pkg/bootstrap/config.go``; review §2.1), so the
  snapshot also says whether the pod's ``proxyStatsMatcher`` opted in.
- ``collect(results, *, ran_alone, before, admin, timeout)`` → ``SidecarEvidence``.
- ``request_quit(native, *, status, timeout)`` and ``record_quit(evidence, outcome)``.

Only filtered admin endpoints are read (admin responses can be tens of MB in big meshes, review
§1.5): ``/config_dump?resource=…&name_regex=…`` (``name_regex`` must match the whole name),
``/clusters?format=json&filter=…``, ``/stats?filter=…&format=json&type=Counters``, ``/server_info``.
Every call has a timeout and a response-size cap. Nothing here interprets the evidence: ``diag/``
does (live path, effective mode, MP0110/MP0120).

Shape of ``SidecarEvidence.config``: the raw ``config_dump`` entries, keyed by the ``resource`` they
were read with — ``static_listeners``/``dynamic_listeners``, ``static_route_configs``/
``dynamic_route_configs``, ``static_clusters``/``dynamic_active_clusters``/``dynamic_warming_clusters``
(each a list exactly as admin returned it: ``{"listener": {...}}``, ``{"name", "active_state",
"warming_state", "error_state"}``, ...). Static bootstrap configs (the lab) fill ``static_*``; a real
sidecar ``dynamic_*``. ``diag.livepath.load_config`` reads this shape; failed xDS updates
(``error_state``) are also summarised in ``notes``.

What is read: listeners ``virtualOutbound``, ``0.0.0.0_P``/``::_P`` and ``<ip>_P`` for every address
the client dialled (pilot's names, ``listener.go``), then — best effort, 1 MB cap — every other
listener on a target port (``<VIP>_443``…, evidence for an address mismatch); routes named by those
listeners (RDS) or the port (``"80"``); clusters ``BlackHoleCluster``, ``PassthroughCluster``,
``outbound|PORT|SUBSET|HOST`` for each target and those referenced by the chains/virtual hosts that
could match the target (``pilot/pkg/networking/core/cluster_builder.go`` names; ``alt_stat_name``
adds Istio's ``;`` stats delimiter, ``util.DelimitedStatsPrefix``), at most 64.

The module is longer than most: the API, its bounded HTTP plumbing and the name selection only
make sense together, and ``probes/`` modules other than this one belong to the probe engine.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import httpx

from probes.model import ClusterMembership, ProbeResult, SidecarEvidence, TargetSpec

DEFAULT_ADMIN = "127.0.0.1:15000"
DEFAULT_ADMIN_V6 = "[::1]:15000"  # IPv6-only pods (review §1.5)
DEFAULT_AGENT = "127.0.0.1:15021"  # pilot-agent readiness
DEFAULT_STATUS = "127.0.0.1:15020"  # pilot-agent status: /quitquitquit
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
MAX_CLUSTERS = 64
BROAD_LISTENER_BYTES = 1024 * 1024  # every listener on a target port: best effort

CATCH_ALL_CLUSTERS = ("BlackHoleCluster", "PassthroughCluster")
ATTRIBUTION_PREFIXES = (
    "cluster.BlackHoleCluster",
    "cluster.PassthroughCluster",
    "tcp.BlackHoleCluster",
    "tcp.PassthroughCluster",
)
UPDATE_REJECTED_FILTER = r"^(listener_manager\.lds|cluster_manager\.cds)\.update_rejected$"

_LISTENER_RESOURCES = ("static_listeners", "dynamic_listeners")
_ROUTE_RESOURCES = ("static_route_configs", "dynamic_route_configs")
_CLUSTER_RESOURCES = ("static_clusters", "dynamic_active_clusters", "dynamic_warming_clusters")
_REGEX_SPECIAL = set("\\.^$|?*+()[]{}")
_T = TypeVar("_T")


class AdminError(Exception):
    """An admin/agent call failed (unreachable, non-200, oversized, not JSON); one-line message.
    ``refused``: nothing listens there (the connection itself failed)."""

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


@dataclasses.dataclass(frozen=True)
class CounterSnapshot:
    """Counters read before probing. ``opted_in``: the attribution counters exist at all."""

    counters: Mapping[str, int]
    opted_in: bool
    error: str | None = None


# --------------------------------------------------------------------------------------------
# HTTP plumbing (bounded)
# --------------------------------------------------------------------------------------------


def base_url(address: str) -> str:
    """``"127.0.0.1:15000"`` / ``"[::1]:15000"`` / ``"::1:15000"`` → ``"http://HOST:PORT"``."""
    if address.startswith("["):
        return f"http://{address}"
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"admin address must be HOST:PORT, got {address!r}")
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Endpoint:
    """One loopback HTTP endpoint with a deadline and a response-size cap (proxies ignored)."""

    def __init__(self, address: str, *, timeout: float, max_bytes: int = MAX_RESPONSE_BYTES) -> None:
        self.address = address
        self.base = base_url(address)
        self.deadline = time.monotonic() + timeout
        self.timeout = timeout
        self.max_bytes = max_bytes
        # Plain HTTP on loopback: no TLS, so no CA bundle to load (that alone costs ~0.1 s per client).
        self.client = httpx.Client(trust_env=False, timeout=timeout, verify=False)

    def __enter__(self) -> _Endpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def request(
        self, method: str, path: str, params: Mapping[str, str] | None = None, max_bytes: int | None = None
    ) -> tuple[int, bytes]:
        cap = self.max_bytes if max_bytes is None else max_bytes
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise AdminError(f"{path}: out of time ({self.timeout:g}s budget)")
        body = bytearray()
        try:
            with self.client.stream(method, self.base + path, params=params, timeout=left) as resp:
                for chunk in resp.iter_bytes():
                    body += chunk
                    if len(body) > cap:
                        raise AdminError(f"{path}: response larger than {cap} bytes")
                    if time.monotonic() > self.deadline:
                        raise AdminError(f"{path}: out of time ({self.timeout:g}s budget)")
                return resp.status_code, bytes(body)
        except httpx.HTTPError as exc:
            message = f"{path}: {type(exc).__name__}: {exc}".rstrip(": ")
            raise AdminError(message, refused=isinstance(exc, httpx.ConnectError)) from exc

    def get_json(
        self, path: str, params: Mapping[str, str] | None = None, max_bytes: int | None = None
    ) -> Any:
        status, body = self.request("GET", path, params, max_bytes)
        if status != 200:
            raise AdminError(f"{path}: HTTP {status}: {body[:120].decode('utf-8', 'replace').strip()}")
        try:
            return json.loads(body) if body.strip() else {}
        except ValueError as exc:
            raise AdminError(f"{path}: not JSON ({exc})") from exc


def _answers(address: str, path: str, timeout: float) -> bool:
    """Any HTTP answer at all (even 503) means something listens there."""
    try:
        with _Endpoint(address, timeout=timeout, max_bytes=64 * 1024) as ep:
            ep.request("GET", path)
        return True
    except (AdminError, ValueError):
        return False


# --------------------------------------------------------------------------------------------
# Presence, readiness, quitting
# --------------------------------------------------------------------------------------------


def detect(admin: str = DEFAULT_ADMIN, timeout: float = 1.0, *, agent: str = DEFAULT_AGENT) -> bool:
    """True when Envoy admin (``GET /ready``; also ``[::1]:15000`` for the default) or the agent's
    readiness port answers. A refused connection fails fast, so "no sidecar" costs milliseconds."""
    return find_admin(admin, timeout) is not None or _answers(agent, "/healthz/ready", timeout)


def admin_candidates(admin: str) -> list[str]:
    """``admin``, then the same port on ``[::1]`` when ``admin`` is on 127.0.0.1 (IPv6-only pods)."""
    host, _, port = admin.rpartition(":")
    return [admin, f"[::1]:{port}"] if host == "127.0.0.1" else [admin]


def find_admin(admin: str = DEFAULT_ADMIN, timeout: float = 1.0) -> str | None:
    """The admin address that answers: ``admin``, else ``[::1]:PORT`` (see ``admin_candidates``)."""
    return next((a for a in admin_candidates(admin) if _answers(a, "/ready", timeout)), None)


def _open_admin(
    admin: str, timeout: float, path: str, params: Mapping[str, str] | None = None
) -> tuple[_Endpoint, Any]:
    """An endpoint on the first candidate address that answers ``GET path`` with JSON, and that
    JSON. Falls back to ``[::1]`` only when 127.0.0.1 refused (a slow admin is not retried)."""
    last: AdminError | None = None
    for candidate in admin_candidates(admin):
        ep = _Endpoint(candidate, timeout=timeout)
        try:
            return ep, ep.get_json(path, params)
        except AdminError as exc:
            ep.client.close()
            last = exc
            if not exc.refused:
                break
    assert last is not None
    raise last


def wait_ready(timeout: float, *, agent: str = DEFAULT_AGENT, interval: float = 0.1) -> float | None:
    """Poll ``GET /healthz/ready`` on the agent until 200; seconds waited, ``None`` after ``timeout``."""
    start = time.monotonic()
    while True:
        left = timeout - (time.monotonic() - start)
        if left <= 0:
            return None
        try:
            with _Endpoint(agent, timeout=min(left, 1.0), max_bytes=64 * 1024) as ep:
                status, _ = ep.request("GET", "/healthz/ready")
            if status == 200:
                return time.monotonic() - start
        except AdminError:
            pass
        time.sleep(max(0.0, min(interval, timeout - (time.monotonic() - start))))


def request_quit(
    native: bool | None, *, status: str = DEFAULT_STATUS, timeout: float = 2.0
) -> tuple[bool, str | None]:
    """POST ``/quitquitquit`` to pilot-agent so a pod with a regular sidecar can complete.

    Refused (nothing is sent) for a native sidecar — the kubelet stops it after the app exits and
    would restart it if quit early (review §1.2) — and when nativeness is unknown (``None``): only
    the CLI, which created the pod and read its spec, can say it is a regular container. Never
    call this in ``--from`` mode (the CLI enforces it). Returns (quit requested, refusal/failure).
    """
    if native is None:
        return False, "refused: cannot tell whether the sidecar is native (the CLI must say it is not)"
    if native:
        return False, "refused: native sidecar (the kubelet stops it when the probe exits)"
    try:
        with _Endpoint(status, timeout=timeout, max_bytes=64 * 1024) as ep:
            code, body = ep.request("POST", "/quitquitquit")
    except (AdminError, ValueError) as exc:
        return False, f"quitquitquit failed: {exc}"
    if code != 200:
        return False, f"quitquitquit answered HTTP {code}: {body[:80].decode('utf-8', 'replace').strip()}"
    return True, None


def record_quit(evidence: SidecarEvidence, outcome: tuple[bool, str | None]) -> SidecarEvidence:
    """``evidence`` with ``quit_requested`` / ``quit_refused_reason`` set from ``request_quit``."""
    requested, reason = outcome
    return dataclasses.replace(evidence, quit_requested=requested, quit_refused_reason=reason)


# --------------------------------------------------------------------------------------------
# What to read: names and regexes derived from the targets
# --------------------------------------------------------------------------------------------


def regex_literal(text: str) -> str:
    """``text`` as a regex matching itself (RE2 and ECMAScript agree on these escapes)."""
    return "".join("\\" + ch if ch in _REGEX_SPECIAL else ch for ch in text)


def _host(target: TargetSpec) -> str:
    return target.host.rstrip(".") or target.host


def dialed_addresses(results: Iterable[ProbeResult]) -> dict[int, set[str]]:
    """Per target port, the IPs the client dialled or was told (IP literal, DNS answers, connect)."""
    out: dict[int, set[str]] = {}
    for r in results:
        ips = out.setdefault(r.target.port, set())
        if r.target.ip_literal:
            ips.add(r.target.host.strip("[]"))
        if r.dns is not None:
            ips.update(r.dns.a)
            ips.update(r.dns.aaaa)
        if r.tcp is not None and r.tcp.address:
            ips.add(r.tcp.address.rpartition(":")[0].strip("[]"))
    return out


def exact_listener_regex(addresses: Mapping[int, Iterable[str]]) -> str:
    """``virtualOutbound``, the wildcard listeners (``0.0.0.0_P``, ``::_P``) and ``<ip>_P`` for each
    dialled IP — the listeners Envoy can pick for these connections (pilot ``getListenerName``)."""
    names = ["virtualOutbound"]
    for port, ips in sorted(addresses.items()):
        names += [f"{ip}_{port}" for ip in ("0.0.0.0", "::", "[::]", *sorted(ips))]
    return "^(" + "|".join(regex_literal(n) for n in _unique(names)) + ")$"


def listener_name_regex(targets: Iterable[TargetSpec]) -> str:
    """``virtualOutbound`` and every listener on a target port (``0.0.0.0_443``, ``10.0.0.1_443``…)."""
    ports = sorted({t.port for t in targets})
    if not ports:
        return "^virtualOutbound$"
    return "^(virtualOutbound|.*_(" + "|".join(str(p) for p in ports) + "))$"


def target_cluster_patterns(targets: Iterable[TargetSpec]) -> list[str]:
    """``outbound|PORT|<any subset>|HOST`` per target, as regex fragments (no anchors)."""
    out: list[str] = []
    for t in targets:
        frag = rf"outbound\|{t.port}\|[^|]*\|{regex_literal(_host(t))}"
        if frag not in out:
            out.append(frag)
    return out


def counter_filter(targets: Iterable[TargetSpec]) -> str:
    """The ``/stats?filter=`` regex for the attribution counters and the targets' cluster counters."""
    parts = [
        r"cluster\.(BlackHoleCluster|PassthroughCluster);?\.",
        r"tcp\.(BlackHoleCluster|PassthroughCluster)\.",
    ]
    parts += [rf"cluster\.{frag};?\." for frag in target_cluster_patterns(targets)]
    return "^(" + "|".join(parts) + ")"


def _domain_matches(pattern: str, host: str, port: int) -> bool:
    """Envoy virtual-host domain / TLS server_name match (exact, ``*.suffix``, ``prefix*``, ``*``)."""
    pattern = pattern.lower()
    for name in (host, f"{host}:{port}"):
        if pattern in ("*", name):
            return True
        if pattern.startswith("*") and name.endswith(pattern[1:]) and len(name) > len(pattern) - 1:
            return True
        if pattern.endswith("*") and name.startswith(pattern[:-1]):
            return True
    return False


def _cluster_refs(action: Mapping[str, Any]) -> list[str]:
    """Cluster names a route action or tcp_proxy config points at."""
    names = [action["cluster"]] if isinstance(action.get("cluster"), str) else []
    weighted = action.get("weighted_clusters")
    if isinstance(weighted, Mapping):
        names += [c["name"] for c in weighted.get("clusters") or [] if isinstance(c.get("name"), str)]
    return names


def _vhost_clusters(route_config: Mapping[str, Any], targets: Sequence[TargetSpec]) -> list[str]:
    names: list[str] = []
    for vhost in route_config.get("virtual_hosts") or []:
        domains = [str(d) for d in vhost.get("domains") or []]
        if not any(_domain_matches(d, _host(t), t.port) for d in domains for t in targets):
            continue
        for route in vhost.get("routes") or []:
            names += _cluster_refs(route.get("route") or {})
    return names


def _chain_relevant(chain: Mapping[str, Any], targets: Sequence[TargetSpec]) -> bool:
    server_names = (chain.get("filter_chain_match") or {}).get("server_names") or []
    return not server_names or any(
        _domain_matches(s, _host(t), t.port) for s in server_names for t in targets
    )


def listener_references(
    listeners: Iterable[Mapping[str, Any]], targets: Sequence[TargetSpec]
) -> tuple[list[str], list[str]]:
    """(route names via RDS, cluster names) referenced by the chains that could match a target."""
    routes: list[str] = []
    clusters: list[str] = []
    for listener in listeners:
        chains = list(listener.get("filter_chains") or [])
        if listener.get("default_filter_chain"):
            chains.append(listener["default_filter_chain"])
        for chain in chains:
            if not _chain_relevant(chain, targets):
                continue
            for flt in chain.get("filters") or []:
                cfg = flt.get("typed_config") or {}
                clusters += _cluster_refs(cfg)
                rds = cfg.get("rds") or {}
                if isinstance(rds.get("route_config_name"), str):
                    routes.append(rds["route_config_name"])
                if isinstance(cfg.get("route_config"), Mapping):
                    clusters += _vhost_clusters(cfg["route_config"], targets)
    return _unique(routes), _unique(clusters)


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


# --------------------------------------------------------------------------------------------
# Reading admin
# --------------------------------------------------------------------------------------------

_OBJECT_KEY = {"listeners": "listener", "routes": "route_config", "clusters": "cluster"}


def _unwrap(kind: str, entry: Mapping[str, Any], notes: list[str]) -> Mapping[str, Any] | None:
    """The plain Envoy object inside one config_dump entry (dynamic listeners: active, else warming)."""
    key = _OBJECT_KEY[kind]
    if key in entry:
        obj = entry[key]
    else:
        state = entry.get("active_state") or entry.get("warming_state") or {}
        obj = state.get(key)
    error = entry.get("error_state")
    if isinstance(error, Mapping):
        details = " ".join(str(error.get("details", "")).split())[:300]
        notes.append(f"{kind[:-1]} {entry.get('name', '?')}: xDS update rejected: {details}")
    return obj if isinstance(obj, Mapping) else None


def read_config(
    ep: _Endpoint,
    kind: str,
    resources: Sequence[str],
    name_regex: str,
    notes: list[str],
    max_bytes: int | None = None,
) -> tuple[list[Mapping[str, Any]], dict[str, list[Any]]]:
    """``/config_dump?resource=R&name_regex=…`` for each R: (the plain objects, {R: raw entries})."""
    objects: list[Mapping[str, Any]] = []
    raw: dict[str, list[Any]] = {}
    for resource in resources:
        try:
            params = {"resource": resource, "name_regex": name_regex}
            doc = ep.get_json("/config_dump", params, max_bytes)
        except AdminError as exc:
            notes.append(f"config_dump {resource}: {exc}")
            continue
        entries = doc.get("configs") or [] if isinstance(doc, Mapping) else []
        raw[resource] = list(entries)
        objects += [o for o in (_unwrap(kind, e, notes) for e in entries if isinstance(e, Mapping)) if o]
    return objects, raw


def read_membership(ep: _Endpoint, name_regex: str) -> tuple[ClusterMembership, ...]:
    """``/clusters?format=json&filter=…``: each cluster's hosts ("IP:PORT") and health; no hosts ⇒
    Envoy could not resolve a DNS cluster (or the cluster is ORIGINAL_DST/static without endpoints)."""
    doc = ep.get_json("/clusters", {"format": "json", "filter": name_regex})
    out: list[ClusterMembership] = []
    for status in doc.get("cluster_statuses") or [] if isinstance(doc, Mapping) else []:
        hosts: list[str] = []
        health: list[str] = []
        for host in status.get("host_statuses") or []:
            sock = (host.get("address") or {}).get("socket_address") or {}
            addr = str(sock.get("address", "?"))
            addr = f"[{addr}]" if ":" in addr else addr
            hosts.append(f"{addr}:{sock.get('port_value', '?')}")
            hs = host.get("health_status") or {}
            flags = [k for k, v in hs.items() if v is True]
            health.append(",".join(flags) or str(hs.get("eds_health_status", "UNKNOWN")))
        name = str(status.get("name"))
        out.append(ClusterMembership(cluster=name, hosts=tuple(hosts), health=tuple(health)))
    return tuple(out)


def read_counters(ep: _Endpoint, filter_regex: str) -> dict[str, int]:
    """``/stats?filter=…&format=json&type=Counters`` as {name: value}."""
    return _counters_from(ep.get_json("/stats", _counter_params(filter_regex)))


def _counter_params(filter_regex: str) -> dict[str, str]:
    return {"filter": filter_regex, "format": "json", "type": "Counters"}


def _counters_from(doc: Any) -> dict[str, int]:
    stats = doc.get("stats") or [] if isinstance(doc, Mapping) else []
    return {str(s["name"]): int(s["value"]) for s in stats if "name" in s and isinstance(s.get("value"), int)}


def _opted_in(counters: Mapping[str, int]) -> bool:
    return any(name.startswith(ATTRIBUTION_PREFIXES) for name in counters)


def snapshot_counters(
    targets: Sequence[TargetSpec], *, admin: str = DEFAULT_ADMIN, timeout: float = 2.0
) -> CounterSnapshot:
    """Read the attribution counters before probing (cheap: one filtered ``/stats`` call)."""
    try:
        ep, doc = _open_admin(admin, timeout, "/stats", _counter_params(counter_filter(targets)))
        ep.client.close()
        counters = _counters_from(doc)
    except (AdminError, ValueError) as exc:
        return CounterSnapshot(counters={}, opted_in=False, error=str(exc))
    return CounterSnapshot(counters=counters, opted_in=_opted_in(counters))


def counter_deltas(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    """Counters that moved (a counter absent from the result did not move)."""
    return {k: v - before.get(k, 0) for k, v in sorted(after.items()) if v != before.get(k, 0)}


# --------------------------------------------------------------------------------------------
# collect()
# --------------------------------------------------------------------------------------------


def _server_fields(info: Mapping[str, Any]) -> dict[str, Any]:
    """proxy version, server state, Istio version and DNS capture from ``/server_info``'s node."""
    meta = (info.get("node") or {}).get("metadata") or {}
    dns = meta.get("DNS_CAPTURE")
    return {
        "proxy_version": info.get("version"),
        "server_state": info.get("state"),
        "istio_version": meta.get("ISTIO_VERSION"),
        "dns_capture": None if dns is None else str(dns).lower() == "true",
    }


def _wanted_clusters(referenced: Sequence[str], targets: Sequence[TargetSpec], notes: list[str]) -> str:
    names = _unique([*CATCH_ALL_CLUSTERS, *referenced])
    if len(names) > MAX_CLUSTERS:
        notes.append(f"{len(names)} clusters referenced; read the first {MAX_CLUSTERS}")
        names = names[:MAX_CLUSTERS]
    parts = [regex_literal(n) for n in names] + target_cluster_patterns(targets)
    return "^(" + "|".join(_unique(parts)) + ")$"


def _entry_name(entry: Any) -> str:
    if isinstance(entry, Mapping):
        inner = entry.get("listener")
        return str(entry.get("name") or (inner.get("name") if isinstance(inner, Mapping) else ""))
    return ""


def _read_listeners(
    ep: _Endpoint, results: Sequence[ProbeResult], targets: Sequence[TargetSpec], notes: list[str]
) -> tuple[list[Mapping[str, Any]], dict[str, list[Any]]]:
    """The listeners for the dialled addresses first; then, best effort and size-capped, every
    other listener on the target ports (``<VIP>_443`` etc.: evidence for an address mismatch)."""
    exact = exact_listener_regex(dialed_addresses(results))
    listeners, raw = read_config(ep, "listeners", _LISTENER_RESOURCES, exact, notes)
    more_notes: list[str] = []
    broad = listener_name_regex(targets)
    others, more_raw = read_config(
        ep, "listeners", _LISTENER_RESOURCES, broad, more_notes, BROAD_LISTENER_BYTES
    )
    notes += [f"other listeners on the target ports not read: {n}" for n in more_notes]
    seen = {str(li.get("name")) for li in listeners}
    listeners += [li for li in others if str(li.get("name")) not in seen]
    for resource, entries in more_raw.items():
        have = {_entry_name(e) for e in raw.get(resource, [])}
        raw.setdefault(resource, []).extend(e for e in entries if _entry_name(e) not in have)
    return listeners, raw


def _read_path_config(
    ep: _Endpoint, results: Sequence[ProbeResult], targets: Sequence[TargetSpec], notes: list[str]
) -> tuple[dict[str, list[Any]], str]:
    """The raw config_dump sections on the targets' paths, and the regex naming their clusters."""
    listeners, sources = _read_listeners(ep, results, targets, notes)
    rds_names, referenced = listener_references(listeners, targets)
    route_names = _unique([*rds_names, *(str(t.port) for t in targets)])
    route_regex = "^(" + "|".join(regex_literal(n) for n in route_names) + ")$"
    routes, route_sources = read_config(ep, "routes", _ROUTE_RESOURCES, route_regex, notes)
    referenced = _unique([*referenced, *(c for r in routes for c in _vhost_clusters(r, targets))])
    cluster_regex = _wanted_clusters(referenced, targets, notes)
    _, cluster_sources = read_config(ep, "clusters", _CLUSTER_RESOURCES, cluster_regex, notes)
    return {**sources, **route_sources, **cluster_sources}, cluster_regex


def collect(
    results: Sequence[ProbeResult],
    *,
    ran_alone: bool,
    before: CounterSnapshot | None = None,
    admin: str = DEFAULT_ADMIN,
    timeout: float = 5.0,
    ready_after_s: float | None = None,
    ready: bool | None = None,
    native: bool | None = None,
) -> SidecarEvidence:
    """Read the sidecar's evidence for ``results``' targets (one ``timeout`` budget for all calls).

    ``ready``: pass ``False`` when ``wait_ready`` gave up (default: ready when ``ready_after_s`` is
    set, unknown otherwise). ``counter_deltas`` is set only when ``before`` shows the stats were
    opted in **and** the probes ran alone (serially, nothing else through this proxy that we know
    of): a delta cannot be attributed to one target otherwise (docs/probe.md). A sidecar that does
    not answer gives ``present=False``; a failing single call becomes a note, never an exception.
    """
    targets = _unique_targets(r.target for r in results)
    notes: list[str] = []
    try:
        ep, info = _open_admin(admin, timeout, "/server_info")
    except ValueError as exc:
        return SidecarEvidence(present=False, notes=(str(exc),))
    except AdminError as exc:
        return SidecarEvidence(present=False, native=native, notes=(f"no Envoy admin at {admin}: {exc}",))
    with ep:
        config, cluster_regex = _read_path_config(ep, results, targets, notes)
        no_members: tuple[ClusterMembership, ...] = ()
        no_counters: dict[str, int] = {}
        membership = _safe(lambda: read_membership(ep, cluster_regex), no_members, notes)
        rejected = _safe(lambda: read_counters(ep, UPDATE_REJECTED_FILTER), no_counters, notes)
        after = _safe(lambda: read_counters(ep, counter_filter(targets)), no_counters, notes)
    opted_in = (before.opted_in if before is not None else False) or _opted_in(after)
    deltas: dict[str, int] | None = None
    if before is not None and before.error is None and opted_in and ran_alone:
        deltas = counter_deltas(before.counters, after)
    elif opted_in and not ran_alone:
        notes.append("counter deltas not attributed: probes ran concurrently")
    return SidecarEvidence(
        present=True,
        admin=ep.address,
        ready=ready if ready is not None else (None if ready_after_s is None else True),
        ready_after_s=ready_after_s,
        native=native,
        config=config,
        clusters=membership,
        update_rejected=rejected,
        stats_opted_in=opted_in,
        counter_deltas=deltas,
        notes=tuple(notes),
        **_server_fields(info if isinstance(info, Mapping) else {}),
    )


def _unique_targets(targets: Iterable[TargetSpec]) -> list[TargetSpec]:
    seen: dict[tuple[str, int], TargetSpec] = {}
    for t in targets:
        seen.setdefault((t.host, t.port), t)
    return list(seen.values())


def _safe(read: Callable[[], _T], default: _T, notes: list[str]) -> _T:
    try:
        return read()
    except AdminError as exc:
        notes.append(str(exc))
        return default
