"""The name a pod really calls: Kubernetes DNS search domains, applied before any host matching.

A pod with the default `dnsPolicy: ClusterFirst` gets ``search <ns>.svc.<suffix> svc.<suffix>
<suffix>`` and ``options ndots:5`` in its resolv.conf (kubelet; Kubernetes "DNS for Services and
Pods"). A name with fewer than five dots is tried with each search domain first, in that order, and
as written last; a name ending in a dot is absolute. So ``reviews`` called from namespace
``default`` is ``reviews.default.svc.cluster.local`` when that Service exists, and
``reviews.default`` is found through the second search domain.

Pilot serves those names from the resolved service's virtual host: its domains carry the short
name (same namespace), ``name.ns`` and ``name.ns.svc`` (istio/istio
``pilot/pkg/networking/core/httproute.go`` ``generateVirtualHostDomains``,
``generateAltVirtualHosts``), and a VirtualService for ``reviews`` is attached to that virtual host
(``pilot/pkg/model/virtualservice.go`` resolves its short hosts in its own namespace). TCP and TLS
calls go to the address the name resolves to. With DNS capture the agent answers from the proxy's
own table first (``pkg/dns/server/name_table.go``), which also holds the ServiceEntry hosts in the
proxy's scope.

`resolve_call(snapshot, source, call)` gives the call with the resolved host (the SNI a client sends
stays the name it was given) and a note saying what was resolved; predictions, diagnoses and fixes
all start from it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace

from diag.model.snapshot import Snapshot
from diag.predict.model import Call, Source
from diag.predict.scope import scope_for

NDOTS = 5  # kubelet's resolv.conf `options ndots:5`


def search_domains(namespace: str, domain_suffix: str) -> tuple[str, str, str]:
    """The pod's resolv.conf search list for a namespace (ClusterFirst)."""
    return (f"{namespace}.svc.{domain_suffix}", f"svc.{domain_suffix}", domain_suffix)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def _resolvable(snapshot: Snapshot, source: Source, name: str) -> bool:
    """Cluster DNS answers for every Kubernetes Service (whatever Istio shows the proxy); the agent,
    with DNS capture, also for the ServiceEntry hosts in the proxy's scope."""
    services = snapshot.exact_host.get(name, ())
    if any(s.kind == "Service" for s in services):
        return True
    if not services:
        return False
    scope = scope_for(snapshot, source)
    return scope.dns_capture and name in scope.primary


def resolve_host(snapshot: Snapshot, source: Source, host: str) -> str:
    """The name the pod's resolver settles on for `host` (lower case), or `host` itself when no
    search domain gives a known name (an external host, an IP literal, an absolute name)."""
    name = host.lower()
    if not name or name.endswith(".") or _is_ip(name) or name.count(".") >= NDOTS:
        return host
    for domain in search_domains(source.namespace, snapshot.mesh.domain_suffix):
        candidate = f"{name}.{domain}"
        if _resolvable(snapshot, source, candidate):
            return candidate
    return host


def resolve_call(snapshot: Snapshot, source: Source, call: Call) -> tuple[Call, str]:
    """(`call` with its host resolved through the search domains, a note; "" when unchanged)."""
    resolved = resolve_host(snapshot, source, call.host)
    if resolved == call.host:
        return call, ""
    sni = call.sni if call.sni is not None else call.effective_sni
    note = f"{call.host} resolves to {resolved} (DNS search domains of namespace {source.namespace})"
    if call.protocol in ("http", "https", "tls"):
        header = "Host" if call.protocol == "http" else "SNI"
        note += f"; the client still sends {call.host!r} as its {header}"
    return replace(call, host=resolved, sni=sni), note
