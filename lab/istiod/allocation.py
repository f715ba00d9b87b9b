"""ServiceEntry address auto-allocation (240.240.0.0/16), as istiod's IP allocator does it.

Pilot sources: ``pilot/pkg/networking/serviceentry/ip_autoallocation.go``
``shouldV2AutoAllocateIPFromPieces`` (not for resolution NONE, not with ``addresses``, not with the
label ``networking.istio.io/enable-autoallocate-ip: "false"``) and
``pilot/pkg/controllers/ipallocate/ipallocate.go`` (``statusPatchForAddresses``: one address per
non-wildcard host; ``prefixUse.allocateNext``: sequential from the first usable address of
``PILOT_IP_AUTOALLOCATE_IPV4_PREFIX`` = 240.240.0.0/16, skipping used ones; addresses already in
``status.addresses`` are kept). The lab allocates in creation order (then namespace/name) so the
result is deterministic; istiod allocates in event order. IPv6 (2001:2::/48) is not allocated: the
lab is IPv4-only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from lab.istiod.resources import ServiceEntry

AUTO_PREFIX_V4 = ipaddress.IPv4Network("240.240.0.0/16")
OPT_OUT_LABEL = "networking.istio.io/enable-autoallocate-ip"


def qualifies(se: ServiceEntry) -> bool:
    """Would istiod allocate addresses for this entry at all?"""
    if se.resolution == "NONE" or se.addresses:
        return False
    return se.meta.labels.get(OPT_OUT_LABEL, "").lower() != "false"


def allocate_vips(entries: Iterable[ServiceEntry]) -> dict[tuple[str, str, str], str]:
    """(namespace, name, host) → allocated IPv4 for every qualifying entry's non-wildcard hosts."""
    ordered = sorted(entries, key=lambda se: (se.meta.created, se.meta.namespace, se.meta.name))
    used: set[ipaddress.IPv4Address] = set()
    out: dict[tuple[str, str, str], str] = {}
    for se in ordered:
        if not qualifies(se):
            continue
        for host, value in se.status_addresses:
            try:
                addr = ipaddress.ip_address(value)
            except ValueError:
                continue
            if isinstance(addr, ipaddress.IPv4Address):
                used.add(addr)
                out[(se.meta.namespace, se.meta.name, host.lower())] = str(addr)
    cursor = AUTO_PREFIX_V4.network_address + 1
    for se in ordered:
        if not qualifies(se):
            continue
        for host in se.hosts:
            key = (se.meta.namespace, se.meta.name, host.lower())
            if host.startswith("*") or key in out:
                continue
            while cursor in used:
                cursor += 1
            if cursor not in AUTO_PREFIX_V4:
                return out  # exhausted; istiod logs an error and leaves the host without an address
            used.add(cursor)
            out[key] = str(cursor)
            cursor += 1
    return out
