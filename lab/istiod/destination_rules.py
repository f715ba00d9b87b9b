"""Which DestinationRule applies to a service for one proxy, and its TLS settings per port.

Pilot source: ``pilot/pkg/model/push_context.go`` ``destinationRule``: rules in the proxy's own
namespace first, then rules exported from the service's namespace, then from the root namespace;
within a namespace the most specific host wins (``MostSpecificHostMatch``); ``exportTo`` (default
``defaultDestinationRuleExportTo``, else ``*``) limits who sees a rule. Short DR hosts are
qualified with the rule's namespace (``ResolveShortnameToFQDN``). When several rules have the same
host in one namespace the oldest is used (pilot merges them; the lab does not — docs/lab-config.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from lab.istiod.hosts import most_specific
from lab.istiod.model import MeshService
from lab.istiod.resources import DestinationRule, TlsSettings
from lab.istiod.scope import MeshSettings, export_set, visible_to


def _fqdn(dr: DestinationRule, domain: str = "cluster.local") -> str:
    host = dr.host.lower()
    if "." in host or host == "*":
        return host
    return f"{host}.{dr.meta.namespace}.svc.{domain}"


def _best_in(rules: Sequence[DestinationRule], hostname: str) -> DestinationRule | None:
    hosts = [_fqdn(r) for r in rules]
    best = most_specific(hostname, hosts)
    if best is None:
        return None
    return next(r for r in rules if _fqdn(r) == best)


def destination_rule_for(rules: Sequence[DestinationRule], mesh: MeshSettings, proxy_ns: str,
                         svc: MeshService) -> DestinationRule | None:
    ordered = sorted((r for r in rules if not r.workload_selector),
                     key=lambda r: (r.meta.created, r.meta.name))

    def exported(ns: str) -> list[DestinationRule]:
        out = []
        for r in ordered:
            export = export_set(frozenset(r.export_to) or None, mesh.default_dr_export_to)
            if r.meta.namespace == ns and visible_to(export, ns, proxy_ns):
                out.append(r)
        return out

    for ns in (proxy_ns, svc.namespace, mesh.root_namespace):
        found = _best_in(exported(ns), svc.hostname)
        if found is not None:
            return found
    return None


def tls_for_port(rule: DestinationRule | None, port: int) -> TlsSettings | None:
    """Port-level TLS overrides the rule-level TLS (``applyTrafficPolicy`` port settings)."""
    if rule is None:
        return None
    return rule.port_tls.get(port, rule.tls)
