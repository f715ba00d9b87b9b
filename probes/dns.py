"""The DNS prober: resolve a target's host the way the pod's libc would, with dnspython.

The pod's ``/etc/resolv.conf`` decides (Kubernetes: ``nameserver <kube-dns>``, ``search
NS.svc.cluster.local svc.cluster.local cluster.local``, ``options ndots:5``): a name with fewer
than ``ndots`` dots is tried with each search suffix first and as-is last; a name with at least
``ndots`` dots as-is first; a trailing dot means as-is only. Like glibc, NXDOMAIN and an empty
answer move on to the next candidate; a timeout stops (DNS_TIMEOUT).

A and AAAA are asked; an empty AAAA beside a good A is normal (docs/signatures.md), never DNS_NO_ANSWER.
Answers inside Istio's auto-allocated VIP ranges (240.240.0.0/16, 2001:2::/48) are flagged
``mesh_vip``: they came from the sidecar agent's DNS proxy (pilot/pkg/serviceregistry/
serviceentry address allocation; pkg/dns/client/dns.go answers for known hosts).

Before DNS, the hosts file is read, as the pod's libc does by default (nsswitch ``hosts: files
dns``; musl reads it first too): the ``hosts`` file beside the resolv.conf in use
(``/etc/hosts``), where kubelet writes ``localhost``, the pod's own name and its ``hostAliases``
(Kubernetes "Adding entries to Pod /etc/hosts with HostAliases"). A name is looked up there as
written — no search domains, letter case ignored, a trailing dot never matches — and an entry
wins over DNS (``source: hosts-file``).

``--resolve HOST:ADDR`` skips both and ``--resolver IP[:PORT]`` asks another server (the hosts
file is then not read either); both are recorded as ``bypassed_pod_dns``. The connect then
reuses the address found here: no second resolution happens anywhere else.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import time
from pathlib import Path

import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

from probes.classify import classify
from probes.model import (
    MESH_VIP_V4,
    MESH_VIP_V6,
    DnsEvidence,
    Phase,
    Phases,
    ProbeResult,
    Signature,
    TargetSpec,
)
from probes.options import ProbeContext

_VIPS = (ipaddress.ip_network(MESH_VIP_V4), ipaddress.ip_network(MESH_VIP_V6))
AAAA_BESIDE_A_BUDGET = 1.0  # seconds: an AAAA that is slow beside a good A does not hold the probe


@dataclasses.dataclass(frozen=True)
class Resolution:
    """What resolution gave: the evidence, the address to dial (None on failure) and a failure."""

    evidence: DnsEvidence
    address: str | None
    elapsed: float
    signature: Signature | None = None  # None: resolved
    error: str | None = None
    error_class: str | None = None

    def failed_result(self, spec: TargetSpec, started: float) -> ProbeResult:
        """The probe's result when the name did not resolve (no address to dial)."""
        return ProbeResult(
            target=spec,
            signature=self.signature or Signature.PROBE_ERROR,
            dns=self.evidence,
            phases=Phases(resolve=self.elapsed),
            error=self.error,
            error_class=self.error_class,
            elapsed=time.perf_counter() - started,
            notes=spec.warnings,
        )


def is_mesh_vip(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip in net for net in _VIPS)


def candidate_names(host: str, search: list[str], ndots: int) -> list[str]:
    """The absolute names a resolv.conf-driven resolver tries for ``host``, in order."""
    if host.endswith("."):
        return [host]
    expanded = [f"{host}.{suffix.strip('.')}." for suffix in search if suffix.strip(".")]
    absolute = f"{host}."
    if host.count(".") >= ndots:
        return [absolute, *expanded]
    return [*expanded, absolute]


def resolve(host: str, ip_literal: bool, ctx: ProbeContext) -> Resolution:
    """Resolve ``host`` for a probe; never raises."""
    started = time.perf_counter()
    if ip_literal:
        v6 = ":" in host
        evidence = DnsEvidence(
            query=host, a=() if v6 else (host,), aaaa=(host,) if v6 else (), source="ip-literal"
        )
        return Resolution(evidence, host, 0.0)
    mapped = ctx.resolve_map.get(host) or ctx.resolve_map.get(host.rstrip("."))
    if mapped is not None:
        v6 = ":" in mapped
        evidence = DnsEvidence(
            query=host,
            a=() if v6 else (mapped,),
            aaaa=(mapped,) if v6 else (),
            bypassed_pod_dns=True,
            source="resolve-flag",
            mesh_vip=is_mesh_vip(mapped),
        )
        return Resolution(evidence, mapped, time.perf_counter() - started)
    if ctx.options.resolver is None:
        found = hosts_file_lookup(host, hosts_file_for(ctx.options.resolv_conf))
        if found is not None:
            a, aaaa = found
            evidence = DnsEvidence(
                query=host,
                names_tried=(host,),
                answered_name=host,
                a=a,
                aaaa=aaaa,
                source="hosts-file",
                mesh_vip=any(is_mesh_vip(x) for x in a + aaaa),
            )
            return Resolution(evidence, (a or aaaa)[0], time.perf_counter() - started)
    return _resolve_with_dns(host, ctx, started)


def hosts_file_for(resolv_conf: str) -> Path:
    """The hosts file of the pod whose resolv.conf is used: the one beside it (``/etc/hosts``)."""
    return Path(resolv_conf).parent / "hosts"


def hosts_file_lookup(host: str, path: Path) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """(IPv4, IPv6) addresses the hosts file gives ``host``, in file order; None when it names it
    nowhere (or cannot be read). A name with a trailing dot is never in a hosts file."""
    if host.endswith(".") or not host:
        return None
    try:
        stat = path.stat()
    except OSError:
        return None
    table = _hosts_table(str(path), stat.st_mtime_ns, stat.st_size)
    return table.get(host.lower())


@functools.lru_cache(maxsize=4)
def _hosts_table(path: str, mtime_ns: int, size: int) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """name → (IPv4, IPv6) from a hosts file (``IP name [alias...]``, ``#`` comments); cached per
    file version (mtime and size)."""
    found: dict[str, tuple[list[str], list[str]]] = {}
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) < 2:
            continue
        try:
            ip = ipaddress.ip_address(fields[0].split("%", 1)[0])
        except ValueError:
            continue
        for name in fields[1:]:
            v4, v6 = found.setdefault(name.lower(), ([], []))
            target = v4 if ip.version == 4 else v6
            if str(ip) not in target:
                target.append(str(ip))
    return {name: (tuple(v4), tuple(v6)) for name, (v4, v6) in found.items()}


def _resolve_with_dns(host: str, ctx: ProbeContext, started: float) -> Resolution:
    bypassed = ctx.options.resolver is not None
    source = "resolver-flag" if bypassed else "resolv.conf"
    try:
        resolver = ctx.resolver()
    except Exception as exc:  # no usable resolv.conf: the probe cannot resolve anything
        found = classify(exc, Phase.RESOLVE)
        evidence = DnsEvidence(query=host, bypassed_pod_dns=bypassed, source=source)
        return Resolution(evidence, None, 0.0, found.signature, found.error, found.error_class)
    search = [s.to_text() for s in resolver.search]
    names = candidate_names(host, search, int(getattr(resolver, "ndots", None) or 1))
    deadline = started + ctx.options.timeout
    tried: list[str] = []
    outcomes: list[Signature] = []
    failure: tuple[str, str] | None = None
    for name in names:
        tried.append(name)
        step = _query_name(resolver, name, deadline)
        if step.addresses:
            a, aaaa = step.addresses
            evidence = DnsEvidence(
                query=host,
                names_tried=tuple(tried),
                answered_name=name,
                a=a,
                aaaa=aaaa,
                rcode="NOERROR",
                resolver=step.server,
                mesh_vip=any(is_mesh_vip(x) for x in a + aaaa),
                bypassed_pod_dns=bypassed,
                source=source,
            )
            return Resolution(evidence, (a or aaaa)[0], time.perf_counter() - started)
        outcomes.append(step.signature)
        failure = (step.error, step.error_class)
        if step.signature is Signature.DNS_TIMEOUT or step.signature is Signature.PROBE_ERROR:
            break
    signature = _decisive(outcomes)
    rcode = {
        Signature.DNS_NXDOMAIN: "NXDOMAIN",
        Signature.DNS_SERVFAIL: "SERVFAIL",
        Signature.DNS_NO_ANSWER: "NOERROR",
    }.get(signature)
    evidence = DnsEvidence(
        query=host,
        names_tried=tuple(tried),
        rcode=rcode,
        bypassed_pod_dns=bypassed,
        source=source,
        resolver=_server_text(resolver),
    )
    error, error_class = failure or ("no answer", "")
    return Resolution(evidence, None, time.perf_counter() - started, signature, error, error_class or None)


def _decisive(outcomes: list[Signature]) -> Signature:
    """Across the candidates: a timeout wins, then SERVFAIL, then an empty answer, else NXDOMAIN."""
    for signature in (
        Signature.DNS_TIMEOUT,
        Signature.PROBE_ERROR,
        Signature.DNS_SERVFAIL,
        Signature.DNS_NO_ANSWER,
        Signature.PROTOCOL_ERROR,
    ):
        if signature in outcomes:
            return signature
    return Signature.DNS_NXDOMAIN


@dataclasses.dataclass(frozen=True)
class _Step:
    addresses: tuple[tuple[str, ...], tuple[str, ...]] | None
    signature: Signature = Signature.OK
    error: str = ""
    error_class: str = ""
    server: str | None = None


def _query_name(resolver: dns.resolver.Resolver, name: str, deadline: float) -> _Step:
    qname = dns.name.from_text(name)
    try:
        a_answer = resolver.resolve(
            qname,
            dns.rdatatype.A,
            search=False,
            raise_on_no_answer=False,
            lifetime=max(0.05, deadline - time.perf_counter()),
        )
    except Exception as exc:
        found = classify(exc, Phase.RESOLVE)
        return _Step(None, found.signature, found.error, found.error_class)
    a = tuple(r.to_text() for r in a_answer.rrset) if a_answer.rrset is not None else ()
    server = f"{a_answer.nameserver}:{a_answer.port}"
    budget = deadline - time.perf_counter()
    if a:
        budget = min(budget, AAAA_BESIDE_A_BUDGET)
    try:
        aaaa_answer = resolver.resolve(
            qname, dns.rdatatype.AAAA, search=False, raise_on_no_answer=False, lifetime=max(0.05, budget)
        )
        aaaa = tuple(r.to_text() for r in aaaa_answer.rrset) if aaaa_answer.rrset is not None else ()
    except Exception as exc:
        if a:  # an AAAA failure beside a good A is not a failure
            return _Step((a, ()), server=server)
        found = classify(exc, Phase.RESOLVE)
        return _Step(None, found.signature, found.error, found.error_class, server)
    if a or aaaa:
        return _Step((a, aaaa), server=server)
    return _Step(None, Signature.DNS_NO_ANSWER, f"{name} has no A or AAAA records", "", server)


def _server_text(resolver: dns.resolver.Resolver) -> str | None:
    servers = [str(s) for s in resolver.nameservers]
    return f"{servers[0]}:{resolver.port}" if servers else None


def probe(spec: TargetSpec, ctx: ProbeContext) -> ProbeResult:
    """The DNS-only prober: resolve ``spec.host`` and report (OK when it resolves)."""
    res = resolve(spec.host, spec.ip_literal, ctx)
    return ProbeResult(
        target=spec,
        signature=res.signature or Signature.OK,
        phases=Phases(resolve=res.elapsed),
        dns=res.evidence,
        error=res.error,
        error_class=res.error_class,
        elapsed=res.elapsed,
    )
