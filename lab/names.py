"""Per-run names and addresses of the lab.

Every kernel object the lab creates carries the run id (6 hex digits): network namespaces
``mplab-<run>-inet`` and ``mplab-<run>-p<N>``, veths ``mp<run>i<N>`` / ``mp<run>p<N>`` (created
directly inside our namespaces, never in the host's). Addresses live only inside those namespaces;
the /16 is derived from the run id inside 10.64.0.0/10 so two runs never even look alike:

- ``10.B.0.0/24``: pod links, one /30 per pod (internet side ``.4N+1``, pod side ``.4N+2``);
- ``10.B.1.53``: the internet's DNS server; ``10.B.1.99``: the address that silently drops SYNs;
- ``10.B.1.10``: the API server as pods reach it (``lab.kubeapi``);
- ``10.B.2.0/23`` onwards: one address per internet host.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from dataclasses import dataclass

NETNS_PREFIX = "mplab-"
_RUN_ID = re.compile(r"^[0-9a-f]{6}$")


def new_run_id() -> str:
    """A fresh random run id (6 lowercase hex digits)."""
    return secrets.token_hex(3)


@dataclass(frozen=True)
class RunNames:
    """Names and addresses for one lab run."""

    run_id: str

    def __post_init__(self) -> None:
        if not _RUN_ID.match(self.run_id):
            raise ValueError(f"bad run id {self.run_id!r}")

    @property
    def second_octet(self) -> int:
        return 64 + int(self.run_id, 16) % 64

    @property
    def internet_netns(self) -> str:
        return f"{NETNS_PREFIX}{self.run_id}-inet"

    def pod_netns(self, index: int) -> str:
        return f"{NETNS_PREFIX}{self.run_id}-p{index}"

    def veth_internet_side(self, index: int) -> str:
        return f"mp{self.run_id}i{index}"

    def veth_pod_side(self, index: int) -> str:
        return f"mp{self.run_id}p{index}"

    def link_addresses(self, index: int) -> tuple[str, str]:
        """(internet side, pod side) of pod ``index``'s /30."""
        if not 0 <= index < 63:
            raise ValueError("at most 63 pods per lab")
        base = 4 * index
        return f"10.{self.second_octet}.0.{base + 1}", f"10.{self.second_octet}.0.{base + 2}"

    @property
    def dns_address(self) -> str:
        return f"10.{self.second_octet}.1.53"

    @property
    def api_address(self) -> str:
        return f"10.{self.second_octet}.1.10"

    @property
    def drop_address(self) -> str:
        return f"10.{self.second_octet}.1.99"

    def host_address(self, index: int) -> str:
        """The address of the ``index``-th internet host (0-based)."""
        network = ipaddress.ip_network(f"10.{self.second_octet}.2.0/23")
        if index + 1 >= network.num_addresses - 1:
            raise ValueError("too many internet hosts")
        return str(network[index + 1])

    def owns_netns(self, name: str) -> bool:
        return name.startswith(f"{NETNS_PREFIX}{self.run_id}-")
