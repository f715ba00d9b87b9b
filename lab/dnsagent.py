"""The istio-agent DNS proxy stand-in: 127.0.0.1:15053 (UDP+TCP) in a pod netns.

Behaviour copied from istio/istio ``pkg/dns/client/dns.go``: names in the proxy's table (hosts of
visible services → VIPs/addresses, from ``lab.istiod.generate(...).dns``) are answered locally
with TTL 30 (``defaultTTLInSeconds``); other names are forwarded to the upstream resolver; before
the first table arrives every query gets SERVFAIL. Its sockets are owned by the proxy uid/gid so
the conntrack-zone rules of ``addDNSConntrackZones`` (``--sport 15053 -m owner``) apply to its
replies. Not modelled: search-domain expansion and short-name answers, ``ALLOW_ANY_DYNAMIC_DNS``.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence

import dns.message
import dns.rcode

from lab import dnswire
from lab.envoy import PROXY_GID, PROXY_UID
from lab.netns import NetnsThread

AGENT_DNS_ADDRESS = "127.0.0.1"
AGENT_DNS_PORT = 15053
DNS_TTL = 30

Upstream = Callable[[dns.message.Message], Awaitable[dns.message.Message]]


class DnsAgent:
    """Answers from the table, forwards the rest; ``ready`` once a table was loaded."""

    def __init__(
        self, thread: NetnsThread, upstream: Upstream, *, uid: int = PROXY_UID, gid: int = PROXY_GID
    ) -> None:
        self.thread = thread
        self.uid = uid
        self.gid = gid
        self.upstream = upstream
        self.table: dict[str, tuple[str, ...]] | None = None
        self._handles: list[asyncio.BaseTransport | asyncio.AbstractServer] = []
        self.queries: list[str] = []

    @property
    def ready(self) -> bool:
        return self.table is not None

    def load(self, table: Mapping[str, Sequence[str]]) -> None:
        """Replace the name table (what istiod's NDS push would carry)."""
        self.table = {name.lower().rstrip("."): tuple(addrs) for name, addrs in table.items()}

    async def start(self) -> None:
        udp = self.thread.socket(socket.AF_INET, socket.SOCK_DGRAM, uid=self.uid, gid=self.gid)
        udp.bind((AGENT_DNS_ADDRESS, AGENT_DNS_PORT))
        tcp = self.thread.socket(uid=self.uid, gid=self.gid)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind((AGENT_DNS_ADDRESS, AGENT_DNS_PORT))
        transport, server = await dnswire.serve(udp, tcp, self.answer)
        self._handles += [transport, server]

    async def answer(self, query: dns.message.Message) -> dns.message.Message:
        name = query.question[0].name.to_text().rstrip(".").lower() if query.question else ""
        self.queries.append(name)
        if self.table is None:
            resp = dns.message.make_response(query)
            resp.set_rcode(dns.rcode.SERVFAIL)
            return resp
        if name in self.table:
            return dnswire.make_response(query, self.table[name], ttl=DNS_TTL)
        upstream = await self.upstream(query)
        upstream.id = query.id
        return upstream

    async def stop(self) -> None:
        for handle in self._handles:
            handle.close()
        self._handles.clear()
