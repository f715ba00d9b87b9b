"""Vector cases on a gateway proxy (``proxy.type: router``) in the real lab: the lab's egress gateway
Envoy (``Lab(egress_gateway=True)``, ``lab.gateway``: ``istio-egressgateway`` in ``istio-system``,
labels ``istio: egressgateway``, ``app: istio-egressgateway``) with the config
``lab.istiod.generate_gateway`` makes from the case's objects.

- The gateway's config is generated from the case's objects alone (``GatewaySource`` below): the
  lab otherwise adds its own gateway Service (80->8080, 443->8443) to them, which would move every
  server port of a vector that has no such Service. Cases that state a gateway Service carry it.
- Istio's gateway tests bind servers on ports below 1024 (80, 443), which Envoy running as 1337
  may bind only where the pod's network namespace allows it: container runtimes set
  ``net.ipv4.ip_unprivileged_port_start=0`` in pod namespaces (containerd's
  ``enable_unprivileged_ports``, CRI-O), and ``allow_low_ports`` does the same in the gateway's.
- Calls go from the lab's internet netns (which links every pod and the gateway, and has no
  sidecar) straight to the gateway's address and the call's port; each call binds its own source
  port, and (client ``ip:port``, gateway ``ip:port``) finds its line in the gateway's access log.
- An ``mtls`` call (ISTIO_MUTUAL) presents the mesh CA's certificate for ``CALLER``, as a sidecar's
  cluster would, and sends its HTTP request inside the TLS session.
- What the gateway shows is read as for a sidecar (``lab_runner.observe``: cluster, route name,
  status, ``NR``), plus: a refused connection is ``no_listener`` (nothing bound the port); an
  accepted connection that Envoy closed without an access-log line is ``no_filter_chain`` (no
  filter chain took it, so no filter logged it); a ``301`` without a route or cluster is
  ``tls_redirect`` (a virtual host's ``require_tls``, answered before any route matches).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from tests.vectors import lab_runner
from tests.vectors.outcome import Observed
from tests.vectors.vector_format import VectorCall, VectorCase

FIRST_SOURCE_PORT = 30000
CALLER = ("default", "default")
"""The (namespace, service account) whose mesh certificate an ``mtls`` call presents: a sidecar's
client certificate on ISTIO_MUTUAL (``lab.Lab.workload_cert``)."""
DEBUG_LOGGING = lab_runner.DEBUG_LOGGING + ",filter:debug"
"""The sidecar's debug loggers, plus ``filter``: a TCP proxy logs the cluster it did not find."""
_TCP_UNKNOWN_CLUSTER = re.compile(r'"ConnectionId":"(\d+)".*\] Cluster not found (\S+) and no on demand')


class GatewaySource:
    """``Lab(gateway_source=...)``: the lab's gateway generator (as ``lab.gateway.
    istiod_gateway_source`` calls it) on the objects of the case being run, its mesh config, and
    its proxy's addresses (``set_case`` before each ``apply``): the vector's ``proxy.ips`` stand
    for the gateway's own address (a ServiceEntry endpoint there exposes it), besides the lab
    gateway's real one."""

    def __init__(self) -> None:
        self.objects: list[Mapping[str, Any]] = []
        self.mesh: Mapping[str, Any] = {}
        self.ips: tuple[str, ...] = ()

    def set_case(self, case: VectorCase) -> None:
        self.objects = [dict(o) for o in case.config]
        self.mesh = dict(case.mesh)
        self.ips = tuple(case.proxy.ips)

    def __call__(self, objects: Sequence[Mapping[str, Any]], mesh: Mapping[str, Any], gw: Any) -> Any:
        from lab.istiod import GatewayView, generate_gateway

        view = GatewayView(
            namespace=gw.namespace,
            name=gw.name,
            labels=dict(gw.labels),
            service_account=gw.service_account,
            mesh={**mesh, **self.mesh},
            ca_file=gw.ca_file,
            mesh_ca_file=gw.mesh_ca_file,
            cert_chain_file=str(gw.cert.cert_chain_file),
            private_key_file=str(gw.cert.private_key_file),
            ips=(gw.address, *self.ips),
        )
        out = generate_gateway(self.objects, view)
        return list(out.listeners), list(out.clusters)


def allow_low_ports(lab: Any) -> None:
    """Let the gateway's Envoy (uid 1337) bind ports below 1024, as in a Kubernetes pod."""
    from lab.netns import nsenter_argv, run

    sysctl = ["sysctl", "-q", "-w", "net.ipv4.ip_unprivileged_port_start=0"]
    run([*nsenter_argv(lab.gateway.net.netns), *sysctl])


class GatewayCalls:
    """Makes a gateway case's calls and reads the gateway's access log."""

    def __init__(self, lab: Any) -> None:
        self.lab = lab
        self.next_port = FIRST_SOURCE_PORT

    def run(self, case: VectorCase, calls: Sequence[VectorCall]) -> dict[str, Observed]:
        """One client process per call, so the Envoy log written while a call runs is that call's
        (a TCP proxy that finds no cluster closes the connection before ``conn_handler`` logs its
        client address, so its ``Cluster not found`` line can only be placed by time)."""
        gateway = self.lab.gateway
        if gateway is None:
            raise AssertionError(f"{case.id}: the lab runs no egress gateway")
        status, body = gateway.admin_request(DEBUG_LOGGING, method="POST")
        if status != 200:
            raise AssertionError(f"gateway admin {DEBUG_LOGGING}: HTTP {status} {body[:200]}")
        observed = {}
        for call in calls:
            log_start = lab_runner._size(gateway.envoy.log_path)
            out = self._client(
                [{**lab_runner.call_json(call), **self._mtls(call), "address": gateway.address}]
            )
            self.next_port = int(out["next_port"])
            (result,) = out["results"]
            wanted = key(result["local"], gateway.address, call)
            lines = lab_runner._wait_for_lines(gateway, {wanted} if wanted else set())
            unknown = unknown_clusters(lab_runner._read_from(gateway.envoy.log_path, log_start))
            named = sorted(set(unknown.values()))
            observed[call.name] = observe(result, lines.get(wanted), named[0] if len(named) == 1 else None)
        return observed

    def _mtls(self, call: VectorCall) -> dict[str, Any]:
        """An ISTIO_MUTUAL call presents the workload certificate of ``CALLER`` (the mesh CA's)."""
        if not call.mtls:
            return {}
        cert = self.lab.workload_cert(*CALLER)
        return {"mtls": True, "cert": str(cert.cert_chain_file), "key": str(cert.private_key_file)}

    def _client(self, payload: list[dict[str, Any]]) -> Any:
        from lab.netns import nsenter_argv

        argv = [
            *nsenter_argv(self.lab.names.internet_netns),
            sys.executable,
            "-c",
            lab_runner.CLIENT_SOURCE,
            json.dumps(payload),
            str(self.next_port),
        ]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise AssertionError(f"lab client failed: {done.stderr.strip()[-500:]}")
        return json.loads(done.stdout)


def unknown_clusters(envoy_log: str) -> dict[str, str]:
    """Connection id -> the cluster Envoy did not find, from the router's ``unknown cluster 'NAME'``
    and the TCP proxy's ``Cluster not found NAME and no on demand cluster set`` debug lines."""
    out: dict[str, str] = {}
    for line in envoy_log.splitlines():
        if found := lab_runner._UNKNOWN_CLUSTER.search(line) or _TCP_UNKNOWN_CLUSTER.search(line):
            out[found.group(1)] = found.group(2)
    return out


def key(local: str | None, gateway_address: str, call: VectorCall) -> tuple[str, str] | None:
    """(client ``ip:port``, gateway ``ip:port``): ``downstream_remote_address`` and
    ``downstream_local_address`` of the call's access-log line."""
    return None if local is None else (local, f"{gateway_address}:{call.port}")


def observe(
    result: Mapping[str, Any], entry: Mapping[str, Any] | None, unknown_cluster: str | None
) -> Observed:
    """One gateway call's client result and access-log line as an observation (module docstring)."""
    client = f"(client: status {result.get('status')}, error {result.get('error')})"
    if result.get("local") is None:
        refused = "ConnectionRefused" in str(result.get("error"))
        return Observed(error="no_listener" if refused else "connect_failed", detail=client)
    if entry is None:
        answered = result.get("status") is not None
        return Observed(error="no_access_log_line" if answered else "no_filter_chain", detail=client)
    seen = lab_runner.observe(result, entry, unknown_cluster)
    if seen.status == "301" and seen.route is None and seen.cluster is None:
        return Observed(status=seen.status, error="tls_redirect", detail=seen.detail)
    return seen
