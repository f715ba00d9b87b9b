"""Istio's sidecar capture rules, generated from istio-iptables' parameters.

Follows istio/istio ``tools/istio-iptables/pkg/capture/run.go`` (``Run``, ``SetupDNSRedir``,
``addDNSConntrackZones``, ``handleInboundPortsInclude``, ``handleOutboundIncludeRules``) and its
goldens (``testdata/inbound-ports-wildcard.golden``, ``outbound-ports-exclude.golden``,
``dns-uid-gid.golden``): rules are emitted in the order ``Run`` appends them, grouped per table as
``iptables-restore`` input. The injector's defaults (``injection-template.yaml``) are
``-p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x "" -b '*' -d 15090,15021,15020``; the gid
defaults to the uid (``tools/common/config/config.go``).
REDIRECT mode only (no TPROXY), no ``-k``/``-c`` interfaces, no owner-group filters.

``family=6`` gives the ``ip6tables-restore`` input ``Run`` builds for a pod with an IPv6 address
(``EnableIPv6``): the same rules with ``AppendVersionedRule``'s IPv6 forms (inbound passthrough
source ``::6/128``, loopback ``::1/128``), the IPv6 members of ``-x``/``-i`` (``SeparateV4V6``;
``*`` covers both families) and of the DNS servers (``DNSServersV6``: ``/128`` matches, and the
nat jump to ``ISTIO_OUTPUT_DNS`` only when this family has a server, ``SetupDNSRedir``); the raw
table's owner zones apply to both families (``AppendRule``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

AGENT_DNS_PORT = 15053
INBOUND_TUNNEL_PORT = 15008
LOOPBACK_CIDR = "127.0.0.1/32"
INBOUND_PASSTHROUGH_SOURCE = "127.0.0.6/32"
_FAMILY = {
    4: {"loopback": LOOPBACK_CIDR, "passthrough": INBOUND_PASSTHROUGH_SOURCE, "host": "/32"},
    6: {"loopback": "::1/128", "passthrough": "::6/128", "host": "/128"},
}


@dataclass(frozen=True)
class CaptureConfig:
    """istio-iptables flags (and the ``traffic.sidecar.istio.io/*`` annotations that feed them).

    ``include_outbound_cidrs``: ``"*"`` (default), ``""`` (capture nothing), or comma-separated CIDRs
    (``-i``). ``exclude_outbound_cidrs`` (``-x``), ``include_inbound_ports`` (``-b``),
    ``exclude_inbound_ports`` (``-d``), ``include_outbound_ports`` (``-q``),
    ``exclude_outbound_ports`` (``-o``). ``redirect_dns`` is ``ISTIO_META_DNS_CAPTURE``;
    ``dns_servers`` are the pod's resolv.conf nameservers (istio-init reads them),
    ``capture_all_dns`` the CNI variant.
    """

    proxy_port: int = 15001
    inbound_capture_port: int = 15006
    proxy_uid: str = "1337"
    proxy_gid: str = "1337"
    include_outbound_cidrs: str = "*"
    exclude_outbound_cidrs: str = ""
    include_inbound_ports: str = "*"
    exclude_inbound_ports: str = "15090,15021,15020"
    include_outbound_ports: str = ""
    exclude_outbound_ports: str = ""
    redirect_dns: bool = False
    dns_servers: tuple[str, ...] = ()
    capture_all_dns: bool = False

    @classmethod
    def from_annotations(cls, annotations: dict[str, str], **kwargs: object) -> CaptureConfig:
        """Apply ``traffic.sidecar.istio.io/*`` annotations the way the injection template does."""
        prefix = "traffic.sidecar.istio.io/"
        fields = {
            "includeOutboundIPRanges": "include_outbound_cidrs",
            "excludeOutboundIPRanges": "exclude_outbound_cidrs",
            "includeInboundPorts": "include_inbound_ports",
            "includeOutboundPorts": "include_outbound_ports",
            "excludeOutboundPorts": "exclude_outbound_ports",
        }
        values: dict[str, object] = {}
        for key, attr in fields.items():
            if prefix + key in annotations:
                values[attr] = annotations[prefix + key]
        if prefix + "excludeInboundPorts" in annotations:
            extra = annotations[prefix + "excludeInboundPorts"]
            values["exclude_inbound_ports"] = "15090,15021,15020" + (f",{extra}" if extra else "")
        values.update(kwargs)
        return cls(**values)  # type: ignore[arg-type]


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _of_family(values: Sequence[str], family: int) -> list[str]:
    """``config.SeparateV4V6``: the members of one IP family (an IPv6 one contains ``:``)."""
    return [v for v in values if (":" in v) == (family == 6)]


def _dns_on(cfg: CaptureConfig) -> bool:
    """``Run``: DNS capture needs CAPTURE_ALL_DNS or a nameserver of either family."""
    return cfg.redirect_dns and (cfg.capture_all_dns or bool(cfg.dns_servers))


def _dns_jump(cfg: CaptureConfig, family: int) -> bool:
    """``SetupDNSRedir``: the nat jump to ISTIO_OUTPUT_DNS only where it has rules."""
    return _dns_on(cfg) and (cfg.capture_all_dns or bool(_of_family(cfg.dns_servers, family)))


def _inbound_rules(cfg: CaptureConfig) -> list[str]:
    """``handleInboundPortsInclude`` (REDIRECT mode)."""
    if not cfg.include_inbound_ports:
        return []
    rules = ["-A PREROUTING -p tcp -j ISTIO_INBOUND"]
    if cfg.include_inbound_ports == "*":
        rules += [f"-A ISTIO_INBOUND -p tcp --dport {p} -j RETURN" for p in _split(cfg.exclude_inbound_ports)]
        rules.append("-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT")
    else:
        rules += [
            f"-A ISTIO_INBOUND -p tcp --dport {p} -j ISTIO_IN_REDIRECT"
            for p in _split(cfg.include_inbound_ports)
        ]
    return rules


def _owner_rules(cfg: CaptureConfig, family: int = 4) -> list[str]:
    """The uid then gid loops of ``Run``."""
    rules: list[str] = []
    dns = cfg.redirect_dns
    loopback = _FAMILY[family]["loopback"]
    for uid in _split(cfg.proxy_uid):
        ports = (
            f"-m multiport ! --dports 53,{INBOUND_TUNNEL_PORT}" if dns else f"! --dport {INBOUND_TUNNEL_PORT}"
        )
        rules.append(
            f"-A ISTIO_OUTPUT -o lo ! -d {loopback} -p tcp {ports} -m owner --uid-owner {uid} "
            "-j ISTIO_IN_REDIRECT"
        )
        lo_match = "-o lo -p tcp ! --dport 53" if dns else "-o lo"
        rules.append(f"-A ISTIO_OUTPUT {lo_match} -m owner ! --uid-owner {uid} -j RETURN")
        rules.append(f"-A ISTIO_OUTPUT -m owner --uid-owner {uid} -j RETURN")
    for gid in _split(cfg.proxy_gid):
        rules.append(
            f"-A ISTIO_OUTPUT -o lo ! -d {loopback} -p tcp ! --dport {INBOUND_TUNNEL_PORT} "
            f"-m owner --gid-owner {gid} -j ISTIO_IN_REDIRECT"
        )
        lo_match = "-o lo -p tcp ! --dport 53" if dns else "-o lo"
        rules.append(f"-A ISTIO_OUTPUT {lo_match} -m owner ! --gid-owner {gid} -j RETURN")
        rules.append(f"-A ISTIO_OUTPUT -m owner --gid-owner {gid} -j RETURN")
    return rules


def _dns_nat_rules(cfg: CaptureConfig, family: int = 4) -> list[str]:
    """``SetupDNSRedir``, nat part."""
    if not _dns_jump(cfg, family):
        return []
    if cfg.capture_all_dns:
        return [
            "-A ISTIO_OUTPUT -j ISTIO_OUTPUT_DNS",
            f"-A ISTIO_OUTPUT_DNS -p tcp --dport 53 -j REDIRECT --to-ports {AGENT_DNS_PORT}",
            f"-A ISTIO_OUTPUT_DNS -p udp --dport 53 -j REDIRECT --to-port {AGENT_DNS_PORT}",
        ]
    servers, host = _of_family(cfg.dns_servers, family), _FAMILY[family]["host"]
    rules = ["-A ISTIO_OUTPUT -j ISTIO_OUTPUT_DNS"]
    rules += [
        f"-A ISTIO_OUTPUT_DNS -p tcp --dport 53 -d {s}{host} -j REDIRECT --to-ports {AGENT_DNS_PORT}"
        for s in servers
    ]
    rules += [
        f"-A ISTIO_OUTPUT_DNS -p udp --dport 53 -d {s}{host} -j REDIRECT --to-port {AGENT_DNS_PORT}"
        for s in servers
    ]
    return rules


def _dns_raw_rules(cfg: CaptureConfig, family: int = 4) -> list[str]:
    """``SetupDNSRedir`` + ``addDNSConntrackZones``, raw part."""
    rules = ["-A OUTPUT -j ISTIO_OUTPUT_DNS"]
    for uid in _split(cfg.proxy_uid):
        rules.append(f"-A ISTIO_OUTPUT_DNS -p udp --dport 53 -m owner --uid-owner {uid} -j CT --zone 1")
        rules.append(
            f"-A ISTIO_OUTPUT_DNS -p udp --sport {AGENT_DNS_PORT} -m owner --uid-owner {uid} -j CT --zone 2"
        )
    for gid in _split(cfg.proxy_gid):
        rules.append(f"-A ISTIO_OUTPUT_DNS -p udp --dport 53 -m owner --gid-owner {gid} -j CT --zone 1")
        rules.append(
            f"-A ISTIO_OUTPUT_DNS -p udp --sport {AGENT_DNS_PORT} -m owner --gid-owner {gid} -j CT --zone 2"
        )
    if cfg.capture_all_dns:
        rules += [
            "-A PREROUTING -j ISTIO_INBOUND",
            "-A ISTIO_OUTPUT_DNS -p udp --dport 53 -j CT --zone 2",
            "-A ISTIO_INBOUND -p udp --sport 53 -j CT --zone 1",
        ]
        return rules
    servers, host = _of_family(cfg.dns_servers, family), _FAMILY[family]["host"]
    if servers:
        rules.append("-A PREROUTING -j ISTIO_INBOUND")
    for s in servers:
        rules.append(f"-A ISTIO_OUTPUT_DNS -p udp --dport 53 -d {s}{host} -j CT --zone 2")
        rules.append(f"-A ISTIO_INBOUND -p udp --sport 53 -s {s}{host} -j CT --zone 1")
    return rules


def _outbound_include_rules(cfg: CaptureConfig, family: int = 4) -> list[str]:
    """``handleOutboundPortsInclude`` then ``handleOutboundIncludeRules`` (this family's CIDRs)."""
    rules = [
        f"-A ISTIO_OUTPUT -p tcp --dport {p} -j ISTIO_REDIRECT" for p in _split(cfg.include_outbound_ports)
    ]
    cidrs = _of_family(_split(cfg.include_outbound_cidrs), family)
    if cfg.include_outbound_cidrs == "*":
        rules.append("-A ISTIO_OUTPUT -j ISTIO_REDIRECT")
    elif cidrs:
        rules += [f"-A ISTIO_OUTPUT -d {c} -j ISTIO_REDIRECT" for c in cidrs]
        rules.append("-A ISTIO_OUTPUT -j RETURN")
    return rules


def nat_rules(cfg: CaptureConfig, family: int = 4) -> list[str]:
    """The nat table's ``-A`` lines in ``Run``'s order (``family`` 4 or 6)."""
    dns_on = _dns_on(cfg)
    fam = _FAMILY[family]
    rules = [
        f"-A ISTIO_INBOUND -p tcp --dport {INBOUND_TUNNEL_PORT} -j RETURN",
        f"-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports {cfg.proxy_port}",
        f"-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports {cfg.inbound_capture_port}",
        *_inbound_rules(cfg),
        "-A OUTPUT -j ISTIO_OUTPUT",
    ]
    for port in _split(cfg.exclude_outbound_ports):
        rules += [
            f"-A ISTIO_OUTPUT -p tcp --dport {port} -j RETURN",
            f"-A ISTIO_OUTPUT -p udp --dport {port} -j RETURN",
        ]
    rules.append(f"-A ISTIO_OUTPUT -o lo -s {fam['passthrough']} -j RETURN")
    effective = cfg if dns_on else CaptureConfig(**{**cfg.__dict__, "redirect_dns": False})
    rules += _owner_rules(effective, family)
    rules += _dns_nat_rules(cfg, family)
    rules.append(f"-A ISTIO_OUTPUT -d {fam['loopback']} -j RETURN")
    excluded = _of_family(_split(cfg.exclude_outbound_cidrs), family)
    rules += [f"-A ISTIO_OUTPUT -d {c} -j RETURN" for c in excluded]
    rules += _outbound_include_rules(cfg, family)
    return rules


def restore_input(cfg: CaptureConfig, family: int = 4) -> str:
    """``iptables-restore --noflush`` input for the pod's netns (``ip6tables-restore`` for
    ``family=6``)."""
    if family not in _FAMILY:
        raise ValueError(f"family must be 4 or 6, not {family!r}")
    chains = ["ISTIO_INBOUND", "ISTIO_REDIRECT", "ISTIO_IN_REDIRECT", "ISTIO_OUTPUT"]
    dns_chain = ["ISTIO_OUTPUT_DNS"] if _dns_jump(cfg, family) else []
    lines = ["*nat", *(f":{c} - [0:0]" for c in [*chains, *dns_chain])]
    lines += nat_rules(cfg, family)
    lines.append("COMMIT")
    if _dns_on(cfg):
        lines += [
            "*raw",
            ":ISTIO_OUTPUT_DNS - [0:0]",
            ":ISTIO_INBOUND - [0:0]",
            *_dns_raw_rules(cfg, family),
            "COMMIT",
        ]
    return "\n".join(lines) + "\n"


def internet_firewall(drop_addresses: Sequence[str]) -> str:
    """``iptables-restore`` input for the internet netns: SYNs to these addresses vanish."""
    lines = ["*filter", *(f"-A INPUT -d {a}/32 -p tcp -j DROP" for a in drop_addresses), "COMMIT"]
    return "\n".join(lines) + "\n"
