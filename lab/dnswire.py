"""DNS over UDP and TCP on pre-made sockets (asyncio + dnspython), shared by the internet's
authoritative server and the pod agent's DNS proxy."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Awaitable, Callable, Sequence
from typing import cast

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

Answerer = Callable[[dns.message.Message], Awaitable[dns.message.Message]]


def make_response(
    query: dns.message.Message, addresses: Sequence[str] | None, *, ttl: int = 30, authoritative: bool = False
) -> dns.message.Message:
    """An answer for ``query``: NXDOMAIN when ``addresses`` is None, else the A/AAAA among them
    matching the question type (an empty NOERROR for other types)."""
    resp = dns.message.make_response(query)
    if authoritative:
        resp.flags |= dns.flags.AA
    if addresses is None:
        resp.set_rcode(dns.rcode.NXDOMAIN)
        return resp
    if not query.question:
        return resp
    q = query.question[0]
    wanted = [a for a in addresses if (":" in a) == (q.rdtype == dns.rdatatype.AAAA)]
    if q.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA) and wanted:
        rrset = dns.rrset.from_text_list(q.name, ttl, dns.rdataclass.IN, q.rdtype, wanted)
        resp.answer.append(rrset)
    return resp


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, answer: Answerer) -> None:
        self.answer = answer
        self.transport: asyncio.DatagramTransport | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        task = asyncio.get_running_loop().create_task(self._reply(data, addr))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _reply(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            query = dns.message.from_wire(data)
        except Exception:
            return
        resp = await self.answer(query)
        if self.transport is not None:
            self.transport.sendto(resp.to_wire(max_size=65535), addr)


async def _tcp_client(answer: Answerer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readexactly(2)
            data = await reader.readexactly(struct.unpack("!H", head)[0])
            resp = (await answer(dns.message.from_wire(data))).to_wire()
            writer.write(struct.pack("!H", len(resp)) + resp)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, dns.exception.DNSException):
        pass
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def serve(
    udp_sock: socket.socket, tcp_sock: socket.socket, answer: Answerer
) -> tuple[asyncio.DatagramTransport, asyncio.Server]:
    """Serve DNS on two bound sockets; returns handles to close."""
    loop = asyncio.get_running_loop()
    udp_sock.setblocking(False)
    transport, _ = await loop.create_datagram_endpoint(lambda: _Udp(answer), sock=udp_sock)
    tcp_sock.listen(64)
    tcp_sock.setblocking(False)
    server = await asyncio.start_server(lambda r, w: _tcp_client(answer, r, w), sock=tcp_sock)
    return transport, server
