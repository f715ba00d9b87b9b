"""The egress gateway's live hop (the report's ``targets[].actual.gateway``): on a path through a
gateway, ``meshprobe check`` reads that gateway's own Envoy config and runs the call through the
live-path matcher (``diag.live.path``) as the gateway receives it.

The config comes from the gateway pod's admin port (``localhost:15000/config_dump``) through the
API's ``pods/portforward`` (``Cluster.port_forward_get``) — what ``kubectl port-forward`` opens. The
default RBAC (docs/rbac.md) does not grant it: then, or when anything on the way fails, the hop
stays predicted only and a report note says why (``gateway hop inferred: …``). It is read-only and
bounded: a SelfSubjectAccessReview, one EndpointSlice list (the gateway Service's ready pod) and
one fetch per gateway per run, each with a
short timeout; it never fails the check.

What the gateway receives (``gateway_call``): on its listener port (the Service port's target
port), the app's own bytes when the sidecar→gateway leg is plaintext (``DISABLE``: HTTP with the
app's Host, or the app's TLS with its SNI); Istio mTLS carrying the app's request when the leg is
``ISTIO_MUTUAL`` (the SNI the sidecar sends: ``diag.predict.gateway_workload.sidecar_tls``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from diag import errors

if TYPE_CHECKING:
    from diag.cluster import Cluster
    from diag.live.call import LiveCall, LivePath
    from diag.model.snapshot import Snapshot
    from diag.predict.gateway_model import GatewayHop, GatewayWorkload
    from diag.predict.model import Source

ADMIN_PORT = 15000
TIMEOUT = 5.0


@dataclass
class GatewayConfigs:
    """Each gateway's config read once per run: ``configs[name]`` is (pod ref, config) or None."""

    cluster: Cluster
    timeout: float = TIMEOUT
    configs: dict[str, tuple[str, Any] | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def config_of(self, gateway: GatewayWorkload) -> tuple[str, Any] | None:
        if gateway.name not in self.configs:
            found, note = read_gateway_config(self.cluster, gateway, self.timeout)
            self.configs[gateway.name] = found
            if note:
                self.notes.append(note)
        return self.configs[gateway.name]


def read_gateway_config(
    cluster: Cluster, gateway: GatewayWorkload, timeout: float
) -> tuple[tuple[str, Any] | None, str | None]:
    """((pod ref, config_dump), None), or (None, the note saying why the hop stays inferred)."""
    import json

    from diag.cluster import resource_path

    ns = gateway.namespace
    short = gateway.name.split(".")[0]
    try:
        if not cluster.can_i("create", "pods", ns, subresource="portforward"):
            return None, f"gateway hop inferred: no pods/portforward permission in {ns}"
        slices = cluster.list(
            resource_path("discovery.k8s.io", "v1", "endpointslices", ns),
            label_selector=f"kubernetes.io/service-name={short}",
            what=f"list the EndpointSlices of {gateway.name}",
        )
        pod = pick_pod(slices)
        if pod is None:
            return None, f"gateway hop inferred: no running ready pod of {short} in {ns}"
        status, body = cluster.port_forward_get(ns, pod, ADMIN_PORT, "/config_dump", timeout=timeout)
        if status != 200:
            return None, f"gateway hop inferred: {ns}/{pod} admin answered HTTP {status} to /config_dump"
        return (f"{ns}/{pod}", json.loads(body)), None
    except errors.MeshprobeError as exc:
        return None, f"gateway hop inferred: could not read {short}'s config ({exc})"
    except ValueError:
        return None, f"gateway hop inferred: {short}'s /config_dump is not JSON"


def pick_pod(slices: Sequence[Mapping[str, Any]]) -> str | None:
    """The first (by name) ready, not terminating pod behind the Service's EndpointSlices (what
    the mesh reads anyway: no permission on pods in the gateway's namespace is needed)."""
    names = []
    for item in slices:
        for endpoint in item.get("endpoints") or []:
            ref, conditions = endpoint.get("targetRef") or {}, endpoint.get("conditions") or {}
            usable = conditions.get("ready") is not False and not conditions.get("terminating")
            if ref.get("kind") == "Pod" and ref.get("name") and usable:
                names.append(str(ref["name"]))
    return min(names) if names else None


def gateway_call(snapshot: Snapshot, source: Source, gateway: GatewayWorkload, hop: GatewayHop,
                 call: Any) -> LiveCall:  # fmt: skip
    """The connection as the gateway's listener receives it (see the module docstring)."""
    from diag.live.call import LiveCall
    from diag.predict.gateway_workload import sidecar_tls

    port = int(gateway.ports.get(hop.port, hop.port))
    app = LiveCall.from_call(call)
    mode, sni, _ = sidecar_tls(snapshot, source, gateway, hop.port, hop.subset)
    if mode in ("ISTIO_MUTUAL", "AUTO_ISTIO_MUTUAL", "MUTUAL", "SIMPLE"):
        inner_alpn = ("h2",) if app.http_version == "2" else ("http/1.1",)
        alpn = ("istio-peer-exchange", "istio", *inner_alpn) if "ISTIO" in mode else inner_alpn
        return LiveCall(port, None, "tls", sni or None, alpn, app.host or app.sni, None, app.path,
                        app.method, app.headers)  # fmt: skip
    return LiveCall(port, None, app.transport, app.sni, app.alpn, app.host, app.http_version, app.path,
                    app.method, app.headers)  # fmt: skip


def gateway_actual(configs: GatewayConfigs, snapshot: Snapshot, source: Source, call: Any,
                   hop: GatewayHop) -> dict[str, Any] | None:  # fmt: skip
    """The report's ``actual.gateway`` for one call, or None when the gateway's config is unread."""
    from diag.live.path import match
    from diag.predict.gateway_workload import gateway_for_cluster

    gateway = gateway_for_cluster(snapshot, f"outbound|{hop.port}|{hop.subset}|{hop.service}")
    if gateway is None or gateway.inferred:
        return None
    found = configs.config_of(gateway)
    if found is None:
        return None
    pod, config = found
    path: LivePath = match(config, gateway_call(snapshot, source, gateway, hop, call))
    return {"gateway": gateway.name, "pod": pod, "outcome": path.outcome, **path.as_dict()}


@dataclass(frozen=True)
class WithGateway:
    """The sidecar's live path plus the gateway's (``as_dict`` adds ``gateway``); every other
    attribute is the sidecar path's, so rules and renderers read it unchanged."""

    path: Any
    gateway: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.path, name)

    def as_dict(self) -> dict[str, Any]:
        return {**self.path.as_dict(), "gateway": self.gateway}


def attach(rows: list[Any], specs: list[Any], snapshot: Snapshot, source: Source,
           configs: GatewayConfigs) -> list[Any]:  # fmt: skip
    """``rows`` (``diag.report.TargetResult``) with ``actual.gateway`` where the predicted path goes
    through a gateway whose config could be read; the sidecar's own live path must be known."""
    from dataclasses import replace

    from diag.predict.model import Call

    by_raw = {s.raw: s for s in specs}
    out = []
    for row in rows:
        hop = getattr(row.predicted, "gateway", None)
        spec = by_raw.get(row.target)
        if hop is None or spec is None or row.actual is None:
            out.append(row)
            continue
        path = spec.path if spec.protocol.value in ("http", "https") else "/"
        call = Call(host=spec.host, port=spec.port, protocol=spec.protocol.value, sni=spec.sni, path=path)
        found = gateway_actual(configs, snapshot, source, call, hop)
        out.append(replace(row, actual=WithGateway(row.actual, found)) if found is not None else row)
    return out
