"""The lab "internet": one netns, one asyncio loop, every origin the config names.

Each host gets its own address (``RunNames.host_address``, or the single IPs its ServiceEntry
lists in ``addresses``) and serves HTTP on 80, HTTPS on 443 (its own certificate from the per-run
CA, chosen by SNI among the hosts at that address), an SSH-style banner on 22, and every port a
ServiceEntry names with that port's protocol (``lab.istiod.internet_hosts``). Hosts named
``server-first.*`` speak first on every port (for sniffed-port tests). ``RunNames.drop_address``
silently drops SYNs (``iptables -j DROP`` in this netns). An authoritative DNS server on
``RunNames.dns_address`` answers the lab names and NXDOMAIN for everything else; a UDP echo on
port 7 of that address answers ``udp-echo ADDR:7 <payload>``.

With ``ipv6`` (``Lab(ipv6=True)``) every host also gets an IPv6 address (``lab.ipv6.host_address``,
or the single IPv6 addresses its ServiceEntry lists), serves the same ports on it, and the DNS
server answers AAAA with it (A queries still get only the IPv4 addresses).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dns.message

from lab import dnswire, origin
from lab import ipv6 as lab_ipv6
from lab.certs import LabCA
from lab.iptables import internet_firewall
from lab.names import RunNames
from lab.netns import NetnsThread, delete_netns, ip_batch, nsenter_argv, run

STANDARD_PORTS: Mapping[int, str] = {80: "http", 443: "https", 22: "tcp"}
DROP_HOST = "drop.lab.example"
SERVER_FIRST_HOST = "server-first.lab.example"
SERVER_FIRST_PORTS: tuple[int, ...] = (80, 3306)
UDP_ECHO_PORT = 7


class _UdpEcho(asyncio.DatagramProtocol):
    """UDP echo beside the DNS server (shows UDP is never captured, except DNS with capture)."""

    def __init__(self, label: bytes) -> None:
        self.label = label
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.transport is not None:
            self.transport.sendto(self.label + data, addr)


@dataclass(frozen=True)
class ServedHost:
    """A host of the lab internet with its addresses and port → protocol."""

    name: str
    addresses: tuple[str, ...]
    ports: Mapping[int, str] = field(default_factory=dict)


def _single_ipv4(raw: object, ipv6: bool = False) -> str | None:
    """The address when ``raw`` is one IPv4 address (or one IPv6 address, with ``ipv6``)."""
    try:
        net = ipaddress.ip_network(str(raw), strict=False)
    except ValueError:
        return None
    wanted = (4, 6) if ipv6 else (4,)
    return str(net.network_address) if net.version in wanted and net.num_addresses == 1 else None


def _se_single_addresses(objects: Sequence[Mapping[str, Any]], ipv6: bool = False) -> dict[str, list[str]]:
    """host → the single IPv4 (with ``ipv6`` also IPv6) addresses its ServiceEntries list in
    ``addresses`` (CIDRs are skipped) and, for entries with IP ``endpoints`` (resolution STATIC),
    those endpoint IPs: the origin must own every address the sidecar may dial for it."""
    out: dict[str, list[str]] = {}
    for obj in objects:
        if not isinstance(obj, Mapping) or obj.get("kind") != "ServiceEntry":
            continue
        spec = obj.get("spec") or {}
        addrs = [a for a in (_single_ipv4(r, ipv6) for r in spec.get("addresses") or []) if a]
        for endpoint in spec.get("endpoints") or []:
            ip = _single_ipv4(endpoint.get("address"), ipv6) if isinstance(endpoint, Mapping) else None
            if ip and ip not in addrs:
                addrs.append(ip)
        for host in spec.get("hosts") or []:
            if isinstance(host, str) and addrs and not host.startswith("*"):
                known = out.setdefault(host.lower(), [])
                known.extend(a for a in addrs if a not in known)
    return out


def plan_hosts(
    names: RunNames,
    objects: Sequence[Mapping[str, Any]],
    extra_hosts: Iterable[str] = (),
    previous: Mapping[str, tuple[str, ...]] | None = None,
    *,
    ipv6: bool = False,
) -> list[ServedHost]:
    """Every host the internet serves, with addresses for this run (sorted by name). Hosts kept
    from ``previous`` (host → addresses) keep their addresses across ``apply``. With ``ipv6``
    a host without a pinned IPv6 address gets the run's IPv6 address of the same index."""
    from lab.istiod import internet_hosts

    ports_by_host: dict[str, dict[int, str]] = {}
    for ih in internet_hosts(objects):
        ports_by_host.setdefault(ih.host.lower(), {}).update({p.number: p.protocol for p in ih.ports})
    for host in [*extra_hosts, SERVER_FIRST_HOST]:
        ports_by_host.setdefault(host.lower().rstrip("."), {})
    ports_by_host[SERVER_FIRST_HOST].update({p: "tcp" for p in SERVER_FIRST_PORTS})
    pinned = _se_single_addresses(objects, ipv6)
    previous = previous or {}
    used = {a for addrs in previous.values() for a in addrs}
    next_index = 0
    served = []
    for host in sorted(ports_by_host):
        ports = dict(STANDARD_PORTS)
        ports.update(ports_by_host[host])
        if host.startswith("server-first."):
            ports = {p: "tcp" for p in ports}
        addresses = tuple(pinned.get(host) or previous.get(host) or ())
        if not addresses:
            while names.host_address(next_index) in used:
                next_index += 1
            addresses = (names.host_address(next_index),)
            used.add(addresses[0])
        if ipv6 and not any(lab_ipv6.is_ipv6(a) for a in addresses):
            addresses = (*addresses, _free_ipv6(names, addresses[0], used))
        served.append(ServedHost(host, addresses, ports))
    return served


def _free_ipv6(names: RunNames, ipv4: str, used: set[str]) -> str:
    """An unused IPv6 host address, the one with the IPv4 host address's index when possible."""
    network = ipaddress.ip_network(f"10.{names.second_octet}.2.0/23")
    address = ipaddress.ip_address(ipv4)
    index = int(address) - int(network.network_address) - 1 if address in network else 0
    while lab_ipv6.host_address(names, index) in used:
        index += 1
    used.add(lab_ipv6.host_address(names, index))
    return lab_ipv6.host_address(names, index)


class Internet:
    """The running internet (servers on the caller's asyncio loop, sockets in ``thread``'s netns)."""

    def __init__(self, names: RunNames, thread: NetnsThread, ca: LabCA, hosts: Sequence[ServedHost]) -> None:
        self.names = names
        self.thread = thread
        self.ca = ca
        self.hosts = list(hosts)
        self.records: dict[str, tuple[str, ...]] = {}
        self._servers: list[asyncio.AbstractServer] = []
        self._udp: list[asyncio.DatagramTransport] = []
        self.history: dict[str, tuple[str, ...]] = {}  # every host ever served → its addresses
        self.lo_addresses: set[str] = set()  # addresses already on the netns' lo
        self.set_hosts(hosts)

    def set_hosts(self, hosts: Sequence[ServedHost]) -> None:
        self.hosts = list(hosts)
        self.history.update({h.name: h.addresses for h in hosts})
        records = {h.name: h.addresses for h in hosts}
        records[DROP_HOST] = (self.names.drop_address,)
        self.records = records

    def addresses(self) -> list[str]:
        """Every address the internet netns must own."""
        out = {self.names.dns_address, self.names.drop_address}
        for host in self.hosts:
            out.update(host.addresses)
        return sorted(out)

    def origins(self) -> list[origin.Origin]:
        by_addr_port: dict[tuple[str, int], tuple[list[str], str]] = {}
        for host in self.hosts:
            for address in host.addresses:
                for port, proto in host.ports.items():
                    hosts, _ = by_addr_port.setdefault((address, port), ([], proto))
                    hosts.append(host.name)
        return [origin.Origin(tuple(h), a, p, proto) for (a, p), (h, proto) in sorted(by_addr_port.items())]

    async def start(self) -> None:
        """Bind and serve every origin plus DNS. Addresses must already exist in the netns."""
        for o in self.origins():
            await self._start_origin(o)
        udp = self.thread.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind((self.names.dns_address, 53))
        tcp = self._tcp_socket(self.names.dns_address, 53)
        transport, server = await dnswire.serve(udp, tcp, self.answer)
        self._udp.append(transport)
        self._servers.append(server)
        echo = self.thread.socket(socket.AF_INET, socket.SOCK_DGRAM)
        echo.bind((self.names.dns_address, UDP_ECHO_PORT))
        echo.setblocking(False)
        label = f"udp-echo {self.names.dns_address}:{UDP_ECHO_PORT} ".encode()
        echo_transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: _UdpEcho(label), sock=echo
        )
        self._udp.append(echo_transport)

    def _tcp_socket(self, address: str, port: int) -> socket.socket:
        sock = self.thread.socket(socket.AF_INET6 if lab_ipv6.is_ipv6(address) else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(128)
        sock.setblocking(False)
        return sock

    async def _start_origin(self, o: origin.Origin) -> None:
        sock = self._tcp_socket(o.address, o.port)
        if o.protocol == "tcp":
            server = await asyncio.start_server(lambda r, w: origin.serve_banner(o, r, w), sock=sock)
        elif o.protocol in ("https", "tls"):
            ctx = self.ca.sni_server_context(o.hosts)
            server = await asyncio.start_server(
                lambda r, w: origin.serve_http(o, r, w), sock=sock, ssl=ctx, ssl_handshake_timeout=5
            )
        else:
            server = await asyncio.start_server(lambda r, w: origin.serve_http(o, r, w), sock=sock)
        self._servers.append(server)

    async def answer(self, query: dns.message.Message) -> dns.message.Message:
        """Authoritative: the lab names, NXDOMAIN for everything else."""
        name = query.question[0].name.to_text().rstrip(".").lower() if query.question else ""
        return dnswire.make_response(query, self.records.get(name), ttl=30, authoritative=True)

    async def resolve(self, query: dns.message.Message) -> dns.message.Message:
        """The upstream the pod agents forward to (same answers, no packets)."""
        return await self.answer(query)

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for transport in self._udp:
            transport.close()
        for server in self._servers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 1.0)
        self._servers.clear()
        self._udp.clear()


Call = Callable[[Coroutine[Any, Any, Any]], Any]


def start_internet(
    names: RunNames, ca: LabCA, hosts: Sequence[ServedHost], stack: contextlib.ExitStack, call: Call
) -> Internet:
    """Create the internet netns (addresses on ``lo``, the SYN-drop rule) and start serving;
    every step's undo is registered on ``stack``. ``call`` runs a coroutine on the lab's loop."""
    name = names.internet_netns
    run(["ip", "netns", "add", name])
    stack.callback(delete_netns, name)
    thread = NetnsThread(name)
    stack.callback(thread.close)
    internet = Internet(names, thread, ca, hosts)
    ip_batch(["link set lo up", *lab_ipv6.lo_commands(internet.addresses())], name)
    internet.lo_addresses.update(internet.addresses())
    run([*nsenter_argv(name), "iptables-restore", "--noflush"], stdin=internet_firewall([names.drop_address]))
    call(internet.start())
    stack.callback(lambda: call(internet.stop()))
    return internet


def refresh_internet(internet: Internet, hosts: Sequence[ServedHost], call: Call) -> None:
    """Serve a new host list (after ``apply``): add addresses not yet on ``lo``, restart the
    servers. Addresses are never removed, so a host dropped and re-added keeps its address."""
    if list(hosts) == internet.hosts:
        return
    wanted = set(Internet(internet.names, internet.thread, internet.ca, hosts).addresses())
    missing = sorted(wanted - internet.lo_addresses)
    if missing:
        ip_batch(lab_ipv6.lo_commands(missing), internet.names.internet_netns)
        internet.lo_addresses.update(missing)
    call(internet.stop())
    internet.set_hosts(hosts)
    call(internet.start())
