"""Label and field selectors, parsed and matched as the API server does.

Label selector syntax: staging/src/k8s.io/apimachinery/pkg/labels/selector.go (``=``, ``==``,
``!=``, ``in``, ``notin``, ``key``, ``!key``). A ``metav1.LabelSelector`` object (``matchLabels``,
``matchExpressions`` with ``In``, ``NotIn``, ``Exists``, ``DoesNotExist``), as workload controllers
match pods with it: staging/src/k8s.io/apimachinery/pkg/apis/meta/v1/helpers.go
``LabelSelectorAsSelector`` (an empty selector matches everything, a missing one nothing).
Field selectors: ``=``, ``==``, ``!=`` over the fields each resource registers
(pkg/registry/core/pod/strategy.go ``ToSelectableFields``, pkg/registry/core/event/strategy.go);
an unsupported field is a 400 ``field label not supported``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lab.apiserver.errors import BadRequest

Matcher = Callable[[Mapping[str, Any]], bool]

_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_TERM = re.compile(
    rf"\s*(?:(?P<not>!)\s*(?P<nkey>{_KEY})"
    rf"|(?P<key>{_KEY})\s*(?:(?P<op>==|=|!=)\s*(?P<value>[-A-Za-z0-9_.]*)"
    rf"|\s+(?P<setop>in|notin)\s*\((?P<values>[^)]*)\))?)\s*(?:,|$)"
)


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        return not present or value not in self.values  # "!=", "notin"


def parse_label_selector(text: str | None) -> tuple[Requirement, ...]:
    """Requirements of a label selector string; 400 BadRequest when it does not parse."""
    if not text or not text.strip():
        return ()
    out: list[Requirement] = []
    pos = 0
    while pos < len(text):
        match = _TERM.match(text, pos)
        if match is None or match.end() == pos:
            raise BadRequest(f"unable to parse requirement: found '{text[pos:]}', expected: identifier")
        pos = match.end()
        if match.group("nkey"):
            out.append(Requirement(match.group("nkey"), "!"))
        elif match.group("op"):
            op = "!=" if match.group("op") == "!=" else "="
            out.append(Requirement(match.group("key"), op, (match.group("value"),)))
        elif match.group("setop"):
            values = tuple(v.strip() for v in match.group("values").split(",") if v.strip())
            out.append(Requirement(match.group("key"), match.group("setop"), values))
        else:
            out.append(Requirement(match.group("key"), "exists"))
    return tuple(out)


def label_matcher(text: str | None) -> Matcher:
    requirements = parse_label_selector(text)

    def matches(obj: Mapping[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(r.matches(labels) for r in requirements)

    return matches


def selector_from_labels(match_labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(match_labels.items()))


LABEL_SELECTOR_OPS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}


def label_selector_requirements(selector: Mapping[str, Any] | None) -> tuple[Requirement, ...] | None:
    """A ``metav1.LabelSelector`` as requirements (None for a missing selector, which matches nothing)."""
    if selector is None:
        return None
    out = [
        Requirement(str(k), "=", (str(v),)) for k, v in sorted((selector.get("matchLabels") or {}).items())
    ]
    for expr in selector.get("matchExpressions") or []:
        op = LABEL_SELECTOR_OPS.get(str(expr.get("operator")))
        if op is None:
            raise BadRequest(f'"{expr.get("operator")}" is not a valid label selector operator')
        out.append(Requirement(str(expr.get("key")), op, tuple(str(v) for v in expr.get("values") or ())))
    return tuple(out)


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """Whether ``labels`` satisfy a ``metav1.LabelSelector``."""
    requirements = label_selector_requirements(selector)
    return requirements is not None and all(r.matches(labels or {}) for r in requirements)


def format_label_selector(selector: Mapping[str, Any] | None) -> str:
    """``metav1.FormatLabelSelector``: ``app=api,tier in (a,b)``, or ``<none>`` when empty."""
    parts = [f"{k}={v}" for k, v in sorted(((selector or {}).get("matchLabels") or {}).items())]
    for expr in (selector or {}).get("matchExpressions") or []:
        op, key = str(expr.get("operator")), expr.get("key")
        values = ",".join(str(v) for v in expr.get("values") or ())
        parts.append(
            {"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})", "Exists": f"{key}"}.get(
                op, f"!{key}"
            )
        )
    return ",".join(parts) or "<none>"


POD_FIELDS = (
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
)
EVENT_FIELDS = (
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
)
SELECTABLE = {
    ("", "pods"): POD_FIELDS,
    ("", "events"): EVENT_FIELDS,
    ("", "namespaces"): ("status.phase",),
    ("batch", "jobs"): ("status.successful",),
}


def _field_value(obj: Mapping[str, Any], path: str) -> str:
    if path == "source":
        return str((obj.get("source") or {}).get("component", ""))
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    if node is None:
        return ""
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node)


def field_matcher(text: str | None, group: str, plural: str) -> Matcher:
    """A matcher for ``fieldSelector``; 400 for a field this resource does not select on."""
    terms: list[tuple[str, bool, str]] = []
    allowed = ("metadata.name", "metadata.namespace", *SELECTABLE.get((group, plural), ()))
    for raw in (text or "").split(","):
        if not raw.strip():
            continue
        match = re.fullmatch(r"\s*([^=!\s]+)\s*(==|=|!=)\s*(.*?)\s*", raw)
        if match is None:
            raise BadRequest(f"invalid selector: '{text}'; can't understand '{raw}'")
        field, op, value = match.groups()
        if field not in allowed:
            raise BadRequest(
                f'"{field}" is not a known field selector: only "' + '", "'.join(allowed) + '"'
                if group
                else f"field label not supported: {field}"
            )
        terms.append((field, op == "!=", value))

    def matches(obj: Mapping[str, Any]) -> bool:
        return all((_field_value(obj, f) == v) != negate for f, negate, v in terms)

    return matches
