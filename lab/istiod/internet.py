"""What the lab internet must serve: the non-wildcard hosts the config names, with their ports.

A ServiceEntry port's protocol decides what the lab's server on that port speaks: HTTP-family →
``http``, HTTPS → ``https``, TLS → ``tls``, TCP/unset/others → ``tcp``. The standard ports keep
what the real internet speaks there whatever an entry declares (80 http, 443 https, 22 tcp
banner): an entry declaring HTTP on 443 is a misconfiguration of the *mesh*, the origin still
speaks TLS (the client's TLS then meets a sidecar that expects HTTP: MP0103). A ``targetPort`` is
served too (443 → https).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lab.istiod.resources import parse_objects
from lab.istiod.views import InternetHost, InternetPort

_HTTP_FAMILY = frozenset({"HTTP", "HTTP2", "GRPC", "GRPC-WEB"})
STANDARD_PORTS = {80: "http", 443: "https", 22: "tcp"}


def internet_protocol(istio_protocol: str) -> str:
    """The protocol a lab origin should speak on a port declared with ``istio_protocol``."""
    proto = istio_protocol.upper()
    if proto in _HTTP_FAMILY:
        return "http"
    if proto == "HTTPS":
        return "https"
    if proto == "TLS":
        return "tls"
    return "tcp"


def hosts_from_objects(objects: Sequence[Mapping[str, Any]]) -> list[InternetHost]:
    parsed = parse_objects(objects)
    ports_by_host: dict[str, dict[int, str]] = {}
    for se in parsed.service_entries:
        for host in se.hosts:
            if host.startswith("*") or not host:
                continue
            ports = ports_by_host.setdefault(host.lower(), {})
            for port in se.ports:
                for number in (port.number, port.target_port):
                    if number is not None:
                        served = STANDARD_PORTS.get(number) or internet_protocol(port.protocol)
                        ports.setdefault(number, served)
    for svc in parsed.services:
        if svc.type == "ExternalName" and svc.external_name and not svc.external_name.startswith("*"):
            ports = ports_by_host.setdefault(svc.external_name.lower(), {})
            for kport in svc.ports:
                ports.setdefault(kport.port, STANDARD_PORTS.get(kport.port, "tcp"))
    return [
        InternetHost(host=h, ports=tuple(InternetPort(n, p) for n, p in sorted(ports.items())))
        for h, ports in sorted(ports_by_host.items())
    ]
