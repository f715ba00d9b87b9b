"""Host-name matching as Istio does it (``pkg/config/host/name.go`` ``Matches``/``SubsetOf``), label
selectors for ``discoverySelectors`` (Kubernetes ``LabelSelector``: matchLabels + matchExpressions)
and the Kubernetes short forms of a host (``httproute.go`` ``GenerateAltVirtualHosts``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def subset_of(name: str, pattern: str) -> bool:
    """``host.Name.SubsetOf``: every host ``name`` covers is also covered by ``pattern``."""
    if pattern == "*":
        return True
    if pattern.startswith("*"):
        suffix = pattern[1:]
        if name.startswith("*"):
            return name[1:].endswith(suffix)
        return name.endswith(suffix)
    return name == pattern


def matches(a: str, b: str) -> bool:
    """``host.Name.Matches``: the two host names (either may be a wildcard) overlap."""
    return subset_of(a, b) or subset_of(b, a)


def most_specific(hostname: str, candidates: Sequence[str]) -> str | None:
    """``MostSpecificHostMatch``: an exact candidate, else the longest wildcard covering ``hostname``."""
    if hostname in candidates:
        return hostname
    best: str | None = None
    for cand in candidates:
        if cand.startswith("*") and subset_of(hostname, cand) and (best is None or len(cand) > len(best)):
            best = cand
    return best


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A Kubernetes LabelSelector against labels (an empty selector matches everything)."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(str(key)) != str(value):
            return False
    for expr in selector.get("matchExpressions") or ():
        key, op = str(expr.get("key")), str(expr.get("operator"))
        values = [str(v) for v in expr.get("values") or ()]
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def alt_hosts(hostname: str, proxy_ns: str, domain: str = "cluster.local") -> list[str]:
    """``GenerateAltVirtualHosts`` for a proxy in ``proxy_ns`` (port suffixes omitted)."""
    suffix = f".svc.{domain}"
    if not hostname.endswith(suffix) or ".svc." not in hostname:
        return []
    head = hostname[: hostname.index(".svc.")]
    if "." not in head:
        return []
    name, ns = head.split(".", 1)
    if ns == proxy_ns:
        return [name, f"{head}.svc", head]
    return [head, f"{head}.svc"]
