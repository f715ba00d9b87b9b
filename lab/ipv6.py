"""IPv6 in the lab, opt-in: ``PodSpec(ipv6=True)`` makes a pod dual-stack, ``Lab(ipv6=True)``
gives every internet host an IPv6 address (and AAAA answers).

Every run gets its own unique-local /64, ``fd6d:RRRR:RR00::/64`` (``RR…`` = the run id), used only
inside the run's namespaces, like the IPv4 /16 (``lab.names``); the host's own interfaces and
routes are never touched. Inside it:

- ``::1:0/112``: pod links, one /126 per pod (internet side ``::1:<4N+1>``, pod side ``::1:<4N+2>``),
  added with ``nodad`` so they are usable at once; the pod's default IPv6 route goes to the
  internet side;
- ``::2:0/112``: internet hosts (``host_address``), beside their IPv4 address, so the lab DNS
  answers AAAA for them.

A dual-stack pod's capture rules are ``lab.iptables.restore_input(cfg, 6)`` loaded with
``ip6tables-restore`` (``tools/istio-iptables/pkg/capture/run.go`` with ``EnableIPv6``); its
generated config carries pilot's second wildcard ``::`` (``lab.istiod.dualstack``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from lab.names import RunNames
from lab.netns import ip_batch, nsenter_argv, run

LINK_BLOCK = 1
HOST_BLOCK = 2


def run_prefix(names: RunNames) -> ipaddress.IPv6Network:
    """The run's unique-local /64 (fd00::/8 with a global ID derived from the run id)."""
    rid = names.run_id
    return ipaddress.IPv6Network(f"fd6d:{rid[:4]}:{rid[4:]}00::/64")


def _at(names: RunNames, block: int, offset: int) -> str:
    return str(run_prefix(names)[(block << 16) + offset])


def link_addresses(names: RunNames, index: int) -> tuple[str, str]:
    """(internet side, pod side) of pod ``index``'s /126."""
    if not 0 <= index < 63:
        raise ValueError("at most 63 pods per lab")
    return _at(names, LINK_BLOCK, 4 * index + 1), _at(names, LINK_BLOCK, 4 * index + 2)


def host_address(names: RunNames, index: int) -> str:
    """The IPv6 address of the ``index``-th internet host (0-based)."""
    if not 0 <= index < 0xFFFE:
        raise ValueError("too many internet hosts")
    return _at(names, HOST_BLOCK, index + 1)


def is_ipv6(address: str) -> bool:
    return ":" in address


def lo_commands(addresses: Sequence[str]) -> list[str]:
    """``ip -batch`` lines putting addresses (either family) on ``lo``."""
    return [f"addr add {a}/128 dev lo nodad" if is_ipv6(a) else f"addr add {a}/32 dev lo" for a in addresses]


def add_internet_side(names: RunNames, index: int, veth_internet: str) -> None:
    """The internet end of pod ``index``'s IPv6 link."""
    gateway, _ = link_addresses(names, index)
    ip_batch([f"addr add {gateway}/126 dev {veth_internet} nodad"], names.internet_netns)


def configure_pod(netns: str, veth_pod: str, address: str, gateway: str, capture_rules: str | None) -> None:
    """The pod end: its address, the default IPv6 route and (for an injected, intercepting pod)
    the ip6tables capture rules."""
    ip_batch([f"addr add {address}/126 dev {veth_pod} nodad", f"route add default via {gateway}"], netns)
    if capture_rules is not None:
        run([*nsenter_argv(netns), "ip6tables-restore", "--noflush"], stdin=capture_rules)
