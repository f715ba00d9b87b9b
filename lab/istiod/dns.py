"""What the agent's DNS proxy answers for this pod (``ISTIO_META_DNS_CAPTURE``).

Pilot/agent sources: ``pkg/dns/server/name_table.go`` ``BuildNameTable`` (every service of the pod's
Sidecar scope with an IP in use: ClusterIPs, SE ``addresses`` that are IPs, auto-allocated VIPs
when the proxy uses them; CIDRs are skipped; several SE addresses are merged; a Kubernetes Service
replaces an SE's entry for the same host) and ``pkg/dns/client/dns.go`` (Kubernetes short names
``name``/``name.ns``/``name.ns.svc`` resolve through the search path; the lab lists the forms the pod's
search path reaches: all three in the pod's namespace, ``name.ns`` and ``name.ns.svc`` elsewhere).
Headless services and NONE entries without addresses are not answered (the pod's resolver answers).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from lab.istiod.model import KUBERNETES, PASSTHROUGH, UNSPECIFIED_IP, MeshService


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def name_table(services: Sequence[MeshService], pod_ns: str, uses_auto: bool) -> dict[str, tuple[str, ...]]:
    table: dict[str, list[str]] = {}
    registry: dict[str, str] = {}
    short: dict[str, list[str]] = {}
    for svc in services:
        addresses = svc.all_addresses_for_proxy(uses_auto)
        if svc.hostname.startswith("*"):
            continue
        if not addresses and svc.resolution == PASSTHROUGH and svc.registry == KUBERNETES:
            # headless: the ready pods (pkg/dns/server/name_table.go; publishNotReadyAddresses not modelled)
            addresses = tuple(dict.fromkeys(ep.address for ep in svc.endpoints if ep.healthy))
        if not addresses or UNSPECIFIED_IP in addresses:
            continue
        ips = [a for a in addresses if _is_ip(a)]
        if not ips:
            continue
        host = svc.hostname
        if host not in table:
            table[host], registry[host] = list(ips), svc.registry
        elif registry[host] != KUBERNETES:
            if svc.registry == KUBERNETES:
                table[host], registry[host] = list(ips), KUBERNETES
            else:
                table[host].extend(ip for ip in ips if ip not in table[host])
        if svc.registry == KUBERNETES:
            name, ns = svc.object_name, svc.namespace
            forms = [f"{name}.{ns}", f"{name}.{ns}.svc"] + ([name] if ns == pod_ns else [])
            short[host] = forms
    out = {h: tuple(ips) for h, ips in table.items()}
    for host, forms in short.items():
        for form in forms:
            out.setdefault(form, out[host])
    return dict(sorted(out.items()))
