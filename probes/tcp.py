"""The TCP prober: connect to the address DNS gave, then listen for a short read window.

Outcomes: a banner (server-first protocol: OK), FIN/RST (`TCP_CLOSED_AFTER_CONNECT`: what a
sidecar's BlackHoleCluster or an unmatched TCP chain looks like, and what a sidecar does when its
upstream connect fails), or silence.

Behind a sidecar, ``connect()`` always succeeds, because the kernel completes the handshake with
Envoy's listener: a connect to a captured destination proves nothing about the host.
`TcpEvidence.captured` and ``note`` say so (the report labels it "to sidecar", docs/schema.md).
Silence is therefore read differently: from a host connected directly, silence after the short
read window is a client-first protocol (OK, ``silent=True``: the host itself accepted the
connection); through the sidecar, the probe keeps listening up to ``--timeout`` — Envoy closes the
connection when it cannot reach the destination (after its connect timeout) — and silence until
then is `READ_TIMEOUT` with ``silent=True``: the sidecar accepted, nothing came back, and nothing
shows the destination was reached (a client-first server and a destination still being dialled
look the same). Never OK (``docs/signatures.md``).

`open_connection` is shared with the TLS prober: one timed connect that never raises.
"""

from __future__ import annotations

import dataclasses
import socket
import time

from probes.classify import Classified, classify
from probes.dns import resolve
from probes.model import Phase, Phases, ProbeResult, Signature, TargetSpec, TcpEvidence
from probes.options import ProbeContext

BANNER_BYTES = 256
CAPTURED_NOTE = "connect reached the local sidecar, not {host}: it proves nothing about the host"


@dataclasses.dataclass
class Connection:
    sock: socket.socket | None
    seconds: float
    failure: Classified | None = None


def open_connection(address: str, port: int, timeout: float) -> Connection:
    """Connect to ``address`` (an IP: no name resolution here); never raises."""
    started = time.perf_counter()
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle wait on the first request
    sock.settimeout(timeout)
    try:
        sock.connect((address, port))
    except Exception as exc:
        sock.close()
        return Connection(None, time.perf_counter() - started, classify(exc, Phase.CONNECT))
    return Connection(sock, time.perf_counter() - started)


def tcp_evidence(address: str, port: int, ctx: ProbeContext, host: str, **fields: object) -> TcpEvidence:
    """TcpEvidence with the capture verdict and its note filled in."""
    captured = ctx.captured(address, port)
    hostport = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    note = CAPTURED_NOTE.format(host=host) if captured else None
    return TcpEvidence(address=hostport, captured=captured, note=note, **fields)  # type: ignore[arg-type]


def probe(spec: TargetSpec, ctx: ProbeContext) -> ProbeResult:
    """Resolve, connect, then read for ``read_window`` seconds; never raises for network outcomes."""
    started = time.perf_counter()
    res = resolve(spec.host, spec.ip_literal, ctx)
    if res.address is None:
        return res.failed_result(spec, started)
    conn = open_connection(res.address, spec.port, ctx.options.timeout)
    phases = Phases(resolve=res.elapsed, connect=conn.seconds)
    if conn.sock is None:
        assert conn.failure is not None
        return ProbeResult(
            target=spec,
            signature=conn.failure.signature,
            dns=res.evidence,
            phases=phases,
            tcp=tcp_evidence(res.address, spec.port, ctx, spec.host),
            error=conn.failure.error,
            error_class=conn.failure.error_class,
            elapsed=time.perf_counter() - started,
        )
    captured = ctx.captured(res.address, spec.port)
    window = ctx.options.read_window
    if captured:  # up to --timeout in all: the sidecar may still close it (see the docstring)
        window = max(window, ctx.options.timeout - conn.seconds)
    with conn.sock as sock:
        signature, first_byte, fields, failure = _read_window(sock, window, bool(captured))
    return ProbeResult(
        target=spec,
        signature=signature,
        dns=res.evidence,
        phases=dataclasses.replace(phases, first_byte=first_byte),
        tcp=tcp_evidence(res.address, spec.port, ctx, spec.host, **fields),
        error=failure.error if failure else None,
        error_class=failure.error_class if failure else None,
        elapsed=time.perf_counter() - started,
        notes=spec.warnings,
    )


def _read_window(
    sock: socket.socket, window: float, captured: bool = False
) -> tuple[Signature, float | None, dict[str, object], Classified | None]:
    started = time.perf_counter()
    sock.settimeout(window)
    try:
        data = sock.recv(BANNER_BYTES)
    except TimeoutError:
        if captured:
            return Signature.READ_TIMEOUT, None, {"silent": True}, None
        return Signature.OK, None, {"silent": True}, None
    except OSError as exc:
        found = classify(exc, Phase.FIRST_BYTE)
        if found.signature is Signature.RESET_BEFORE_RESPONSE:
            return Signature.TCP_CLOSED_AFTER_CONNECT, None, {"closed_by_peer": True}, found
        return found.signature, None, {}, found
    if not data:
        return Signature.TCP_CLOSED_AFTER_CONNECT, None, {"closed_by_peer": True}, None
    banner = data.decode("utf-8", "replace").rstrip("\r\n")
    return Signature.OK, time.perf_counter() - started, {"banner": banner}, None
