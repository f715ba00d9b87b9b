"""Where pilot binds a service port's outbound listeners, per-endpoint listeners included.

`pilot/pkg/networking/core/listener.go` `buildSidecarOutboundListeners` (the "statefulsets/headless
services" branch) and `buildSidecarOutboundListener` (istio 86c9f01f): HTTP-family ports bind
`0.0.0.0`; TCP-family and auto ports bind `GetAddressForProxy` (a CIDR → `0.0.0.0` with a prefix
match). A NONE-resolution service without an address gets, on its TCP-family and auto ports, one
listener per endpoint IP of the port (`push_context.go` `ServiceEndpointsByPort`; unhealthy
endpoints included, non-IP ones and the proxy's own first address left out):

- a headless Kubernetes Service: the endpoints of its EndpointSlices serving that port name
  (`diag.model.endpoints`); none → no listener for the port (a Kubernetes service is never given
  the wildcard fallback);
- a ServiceEntry: without a workloadSelector → the wildcard listener (admission rejects inline
  endpoints with resolution NONE); with one, the selected workloads (WorkloadEntries, pods) are
  not in the input → no listener, with a note.

The DNS answer for a headless Service (`pkg/dns/server/name_table.go` `BuildNameTable`; the same
as Kubernetes DNS without capture) is its ready endpoints' addresses.
"""

from __future__ import annotations

import ipaddress

from diag.model.resources import Port, ServiceEntry
from diag.model.snapshot import MeshService
from diag.predict.scope import WILDCARD, ProxyScope


def binds_for(
    scope: ProxyScope, svc: MeshService, port: Port, family: str, *, address: str | None = None
) -> list[tuple[str, tuple[str, ...]]]:
    """The (bind, CIDR matches) pairs the service port is built on (several for per-endpoint
    listeners, none when pilot builds nothing). `address` is `scope.address_for(svc)` when the
    caller has it already."""
    if family == "http":
        return [(WILDCARD, ())]
    addr = scope.address_for(svc) if address is None else address
    if addr == WILDCARD and svc.resolution == "NONE":
        per_endpoint = _endpoint_binds(scope, svc, port)
        if per_endpoint is not None:
            return [(ip, ()) for ip in per_endpoint]
    if "/" in addr:
        return [(WILDCARD, (addr,))]
    return [(addr, ())]


def _endpoint_binds(scope: ProxyScope, svc: MeshService, port: Port) -> list[str] | None:
    """Per-endpoint listener addresses for a NONE service without an address; None = the
    wildcard listener (a ServiceEntry without a workloadSelector)."""
    if svc.kind == "Service":
        addresses = [ep.address for ep in svc.slice_endpoints if port.name in ep.ports]
        if not addresses:
            scope.notes.append(
                f"{svc.ref}: headless, no endpoint serves port {port.number} (EndpointSlices): no listener"
            )
    else:
        se = svc.resource
        # admission rejects inline endpoints with resolution NONE (ValidateServiceEntry), so a
        # NONE entry's endpoints can only come from a workloadSelector
        if not isinstance(se, ServiceEntry) or se.workload_selector is None:
            return None
        scope.notes.append(
            f"{svc.ref}: resolution NONE with a workloadSelector: its workloads' addresses are not "
            f"in the input, so port {port.number} gets no listener here"
        )
        return []
    own = scope.source.pod_ips[0] if scope.source.pod_ips else None
    return list(dict.fromkeys(a for a in addresses if _is_ip(a) and a != own))


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def headless_answer(svc: MeshService) -> tuple[str, ...]:
    """What DNS answers for a headless Kubernetes Service: its ready endpoints' IPs, each once
    (`publishNotReadyAddresses` is not modelled)."""
    return tuple(dict.fromkeys(ep.address for ep in svc.slice_endpoints if ep.ready and _is_ip(ep.address)))
