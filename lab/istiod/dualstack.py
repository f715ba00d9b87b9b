"""Dual-stack proxies: pilot's second wildcard address.

Pilot sources (``pilot/pkg/networking/core``):

- ``listener_address.go`` ``wildCards``: a proxy whose addresses hold both families
  (``model.Dual``, ``pkg/model`` ``DiscoverIPMode``) has the wildcards ``0.0.0.0`` and ``::``;
- ``listener.go`` ``buildListenerFromEntry``: an outbound listener bound to the wildcard carries the
  second one as ``additional_addresses`` (``bind.Extra()``), with or without ``ISTIO_DUAL_STACK``;
  listeners bound to an IP (a VIP, an endpoint) do not;
- ``listener_builder.go`` ``buildVirtualOutboundListener`` / ``listener_inbound.go``
  ``buildInboundListener``: ``virtualOutbound`` and ``virtualInbound`` get ``::`` only with
  ``ISTIO_DUAL_STACK=true`` (``features.EnableDualStack``, default off). The lab turns that on for a
  dual-stack pod (``dual_stack_flag``): without an IPv6 socket on 15001, the ip6tables REDIRECT of
  an IPv6 connection would be refused.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any

from lab.istiod.envoy import socket_address

IPV6_WILDCARD = "::"
_CATCH_ALL = ("virtualOutbound", "virtualInbound")


def ip_mode(pod_ips: Iterable[str]) -> str:
    """``DiscoverIPMode``: "IPv4", "IPv6" or "Dual" (no address counts as IPv4)."""
    versions = set()
    for ip in pod_ips:
        try:
            versions.add(ipaddress.ip_address(ip).version)
        except ValueError:
            continue
    if versions == {4, 6}:
        return "Dual"
    return "IPv6" if versions == {6} else "IPv4"


def add_second_wildcard(
    listeners: Sequence[dict[str, Any]], pod_ips: Iterable[str], *, dual_stack_flag: bool = True
) -> None:
    """Give a dual-stack proxy's ``0.0.0.0`` listeners ``::`` as an additional address (in place)."""
    if ip_mode(pod_ips) != "Dual":
        return
    for listener in listeners:
        sock = (listener.get("address") or {}).get("socket_address") or {}
        if sock.get("address") != "0.0.0.0":
            continue
        if listener.get("name") in _CATCH_ALL and not dual_stack_flag:
            continue
        extra = {"address": socket_address(IPV6_WILDCARD, int(sock.get("port_value", 0)))}
        listener["additional_addresses"] = [extra]
