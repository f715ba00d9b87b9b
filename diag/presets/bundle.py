"""What a preset needs to reach (`Reach`) and the safe ServiceEntry that lets each through.

The safety rules are the ones every fix in meshprobe follows (see ``diag/rules/fixes.py``):

- exact hosts only, never a wildcard;
- ``exportTo: ["."]``: the entry changes nothing outside the namespace it is applied to;
- HTTP/HTTPS/TLS entries use ``resolution: DNS`` (NONE would let a client claim any Host/SNI);
- never a TCP entry without ``addresses``: without them it would own ``0.0.0.0:PORT`` for every
  workload that sees it (MP0107). A TCP entry lists its CIDRs and uses ``resolution: NONE``, so it
  reaches only those addresses; when they are unknown there is no entry, only a note.

Entries carry no namespace (``kubectl apply -n NS -f -`` puts them where the workload runs) and
the labels ``app.kubernetes.io/managed-by: meshprobe`` and ``meshprobe.io/preset: NAME``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from diag.errors import UsageError

PROTOCOLS = ("HTTP", "HTTPS", "TLS", "TCP")
_SCHEME_PORTS = {"http": 80, "https": 443}
MAX_NAME = 63
# Broader than this is not a service's address range but a hole in the egress policy.
MIN_PREFIX = {4: 8, 6: 16}


class PresetError(UsageError):
    """A preset that cannot be expanded (unknown name, bad URL, unreadable input): exit 2."""


@dataclass(frozen=True)
class Reach:
    """One destination of a preset: the probe target, and what its entry matches.

    ``target`` is what the probe tries (``https://HOST[:PORT]/PATH``, ``http://...``,
    ``tcp://HOST:PORT``). ``entry_host`` is the entry's ``hosts[0]`` (default: ``host``; an entry
    matched by address may carry a name of its own). ``addresses`` are CIDRs, required for TCP.
    """

    target: str
    host: str
    port: int
    protocol: str
    what: str = ""
    addresses: tuple[str, ...] = ()
    entry_host: str = ""

    @property
    def accepts_4xx(self) -> bool:
        """HTTP(S) targets of a preset count an origin's 4xx as reached (a registry's root
        answering 401 or 404 was reached)."""
        return self.protocol in ("HTTP", "HTTPS")


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def in_cluster(host: str) -> bool:
    """A short name or a name of the cluster's own domain: a Kubernetes Service, never external."""
    return "." not in host or host.endswith((".svc", ".svc.cluster.local", ".cluster.local"))


def url_reach(url: str, what: str, *, keep_path: bool = False) -> Reach:
    """The `Reach` for an HTTP(S) URL: its origin (and, with ``keep_path``, its path). User info,
    query and fragment are dropped, so a token written in a URL never reaches the output."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in _SCHEME_PORTS or not parts.hostname:
        raise PresetError(f"not an http(s) URL: {_shown(url)}")
    try:
        port = parts.port or _SCHEME_PORTS[scheme]
    except ValueError:
        raise PresetError(f"bad port in URL {_shown(url)}") from None
    host = parts.hostname.lower()
    path = (parts.path or "/") if keep_path else "/"
    netloc = f"[{host}]" if ":" in host else host
    if port != _SCHEME_PORTS[scheme]:
        netloc += f":{port}"
    return Reach(f"{scheme}://{netloc}{path}", host, port, scheme.upper(), what)


def tcp_reach(
    host: str, port: int, what: str, addresses: tuple[str, ...] = (), entry_host: str = ""
) -> Reach:
    shown = f"[{host}]" if ":" in host else host
    return Reach(f"tcp://{shown}:{port}", host.lower(), port, "TCP", what, addresses, entry_host)


def _shown(url: str) -> str:
    """A URL for a message, without user info."""
    parts = urlsplit(url.strip())
    if parts.username or parts.password:
        host = parts.hostname or ""
        parts = parts._replace(netloc=host + (f":{parts.port}" if parts.port else ""))
    return repr(parts.geturl()[:120])


def check_cidr(cidr: str) -> str | None:
    """The normalised CIDR, or None when it is not one or is too broad to be a service's range."""
    try:
        net = ipaddress.ip_network(cidr.strip(), strict=False)
    except ValueError:
        return None
    return str(net) if net.prefixlen >= MIN_PREFIX[net.version] else None


def entry_name(preset: str, reach: Reach) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", (reach.entry_host or reach.host).lower()).strip("-") or "host"
    name = f"meshprobe-{preset}-{slug}"[: MAX_NAME - 6].rstrip("-")
    return f"{name}-{reach.port}"


def service_entry(preset: str, reach: Reach) -> tuple[dict[str, Any] | None, str | None]:
    """(the entry, None) or (None, why no safe entry can be written)."""
    host = reach.entry_host or reach.host
    if reach.protocol not in PROTOCOLS:
        return None, f"{reach.target}: unknown protocol {reach.protocol}"
    if in_cluster(reach.host) and not reach.addresses:
        return (
            None,
            f"{reach.host} is a name inside the cluster (a Kubernetes Service): no ServiceEntry needed",
        )
    if reach.protocol == "TCP" and not reach.addresses:
        return None, (
            f"{reach.target} is plain TCP: a ServiceEntry for it needs the addresses it serves from "
            "(an entry without them would capture the port for every host); add them yourself"
        )
    if is_ip(host) or host.endswith(".") or "*" in host:
        return None, f"{reach.target}: no entry for an IP address, wildcard or absolute name"
    spec: dict[str, Any] = {
        "hosts": [host],
        **({"addresses": list(reach.addresses)} if reach.addresses else {}),
        "exportTo": ["."],
        "location": "MESH_EXTERNAL",
        "ports": [{"number": reach.port, "name": f"{reach.protocol.lower()}-{reach.port}",
                   "protocol": reach.protocol}],
        "resolution": "NONE" if reach.addresses else "DNS",
    }  # fmt: skip
    labels = {"app.kubernetes.io/managed-by": "meshprobe", "meshprobe.io/preset": preset}
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": entry_name(preset, reach), "labels": labels},
        "spec": spec,
    }, None
