"""Server-side printing: the ``meta.k8s.io/v1`` Table a client gets when it asks for
``as=Table`` (``kubectl get``), with the columns of pkg/printers/internalversion/printers.go for
the built-in kinds (core, batch, apps, discovery) and the ``additionalPrinterColumns`` of Istio's
CRDs; ages in the wording of apimachinery's ``duration.HumanDuration``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from lab.apiserver.defaults import parse_rfc3339
from lab.apiserver.resources import ResourceType
from lab.apiserver.selectors import format_label_selector

Row = Callable[[dict[str, Any]], list[Any]]
NONE = "<none>"


def human_age(seconds: float) -> str:
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 120:
        return f"{max(s, 0)}s"
    minutes, hours, days = s // 60, s // 3600, s // 86400
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 192:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 730:
        return f"{days}d"
    return f"{days // 365}y{days % 365}d" if days < 2920 and days % 365 else f"{days // 365}y"


def age(stamp: str | None) -> str:
    return human_age(time.time() - parse_rfc3339(stamp)) if stamp else "<unknown>"


def _meta_age(obj: dict[str, Any]) -> str:
    return age(obj["metadata"].get("creationTimestamp"))


def _pod_status(pod: dict[str, Any]) -> str:
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Unknown"
    running = False
    for cs in reversed(status.get("containerStatuses") or []):
        state = cs.get("state") or {}
        if (state.get("waiting") or {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif state.get("terminated"):
            term = state["terminated"]
            reason = term.get("reason") or (
                f"Signal:{term['signal']}" if term.get("signal") else f"ExitCode:{term.get('exitCode', 0)}"
            )
        elif state.get("running") and cs.get("ready"):
            running = True
    if reason == "Completed" and running:
        reason = "Running"
    if pod["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    return str(reason)


def _pod(pod: dict[str, Any]) -> list[Any]:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    ready = sum(1 for cs in statuses if cs.get("ready"))
    restarts = sum(int(cs.get("restartCount") or 0) for cs in statuses)
    return [
        pod["metadata"]["name"],
        f"{ready}/{len(spec.get('containers') or [])}",
        _pod_status(pod),
        str(restarts),
        _meta_age(pod),
        status.get("podIP") or NONE,
        spec.get("nodeName") or NONE,
        NONE,
        NONE,
    ]


def _ports(spec: dict[str, Any]) -> str:
    out = []
    for p in spec.get("ports") or []:
        node = f":{p['nodePort']}" if p.get("nodePort") else ""
        out.append(f"{p.get('port')}{node}/{p.get('protocol', 'TCP')}")
    return ",".join(out) or NONE


def _service(svc: dict[str, Any]) -> list[Any]:
    spec = svc.get("spec") or {}
    external = ",".join(spec.get("externalIPs") or []) or (spec.get("externalName") or NONE)
    selector = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items())) or NONE
    return [
        svc["metadata"]["name"],
        spec.get("type", "ClusterIP"),
        spec.get("clusterIP") or NONE,
        external,
        _ports(spec),
        _meta_age(svc),
        selector,
    ]


def _job(job: dict[str, Any]) -> list[Any]:
    spec, status = job.get("spec") or {}, job.get("status") or {}
    kinds = {c["type"] for c in status.get("conditions") or [] if c.get("status") == "True"}
    state = (
        "Failed"
        if "Failed" in kinds
        else "Complete"
        if "Complete" in kinds
        else "Suspended"
        if spec.get("suspend")
        else "Running"
    )
    start, end = status.get("startTime"), status.get("completionTime")
    duration = human_age((parse_rfc3339(end) if end else time.time()) - parse_rfc3339(start)) if start else ""
    return [
        job["metadata"]["name"],
        state,
        f"{status.get('succeeded', 0)}/{spec.get('completions', 1)}",
        duration,
        _meta_age(job),
    ]


def _template(obj: dict[str, Any]) -> tuple[str, str]:
    """The Containers and Images cells of a workload (``layoutContainerCells``)."""
    spec = (((obj.get("spec") or {}).get("template") or {}).get("spec")) or {}
    containers = spec.get("containers") or []
    return ",".join(str(c.get("name", "")) for c in containers), ",".join(
        str(c.get("image", "")) for c in containers
    )


def _deployment(obj: dict[str, Any]) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return [
        obj["metadata"]["name"],
        f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
        status.get("updatedReplicas", 0),
        status.get("availableReplicas", 0),
        _meta_age(obj),
        *_template(obj),
        format_label_selector(spec.get("selector")),
    ]


def _replica_set(obj: dict[str, Any]) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return [
        obj["metadata"]["name"],
        spec.get("replicas", 1),
        status.get("replicas", 0),
        status.get("readyReplicas", 0),
        _meta_age(obj),
        *_template(obj),
        format_label_selector(spec.get("selector")),
    ]


def _stateful_set(obj: dict[str, Any]) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    ready = f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}"
    return [obj["metadata"]["name"], ready, _meta_age(obj), *_template(obj)]


def _daemon_set(obj: dict[str, Any]) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    node_selector = ((spec.get("template") or {}).get("spec") or {}).get("nodeSelector") or {}
    return [
        obj["metadata"]["name"],
        status.get("desiredNumberScheduled", 0),
        status.get("currentNumberScheduled", 0),
        status.get("numberReady", 0),
        status.get("updatedNumberScheduled", 0),
        status.get("numberAvailable", 0),
        ",".join(f"{k}={v}" for k, v in sorted(node_selector.items())) or NONE,
        _meta_age(obj),
        *_template(obj),
        format_label_selector(spec.get("selector")),
    ]


def _endpoint_slice(obj: dict[str, Any]) -> list[Any]:
    """``formatDiscoveryPorts`` and ``formatDiscoveryEndpoints`` (three addresses, then a count)."""
    ports = ",".join(
        str(p["port"]) if p.get("port") is not None else "<unset>" for p in obj.get("ports") or []
    )
    addresses = [a for ep in obj.get("endpoints") or [] for a in ep.get("addresses") or []]
    shown = ",".join(addresses[:3]) + (f" + {len(addresses) - 3} more..." if len(addresses) > 3 else "")
    return [
        obj["metadata"]["name"],
        obj.get("addressType", ""),
        ports or "<unset>",
        shown or "<unset>",
        _meta_age(obj),
    ]


def _event(ev: dict[str, Any]) -> list[Any]:
    involved = ev.get("involvedObject") or {}
    seen = ev.get("lastTimestamp") or ev.get("eventTime") or ev["metadata"].get("creationTimestamp")
    return [
        age(str(seen)[:19] + "Z" if seen else None),
        ev.get("type", ""),
        ev.get("reason", ""),
        f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}",
        ev.get("message", ""),
    ]


def _binding(obj: dict[str, Any]) -> list[Any]:
    ref = obj.get("roleRef") or {}
    return [obj["metadata"]["name"], f"{ref.get('kind')}/{ref.get('name')}", _meta_age(obj)]


def _jsonpath(*path: str) -> Callable[[dict[str, Any]], Any]:
    def get(obj: dict[str, Any]) -> Any:
        node: Any = obj
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        return json.dumps(node) if isinstance(node, list | dict) else node

    return get


def _columns(*names: str) -> list[tuple[str, int]]:
    return [(n.lstrip("+"), 1 if n.startswith("+") else 0) for n in names]


BUILTIN: dict[tuple[str, str], tuple[list[tuple[str, int]], Row]] = {
    ("", "pods"): (
        _columns(
            "Name",
            "Ready",
            "Status",
            "Restarts",
            "Age",
            "+IP",
            "+Node",
            "+Nominated Node",
            "+Readiness Gates",
        ),
        _pod,
    ),
    ("", "services"): (
        _columns("Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "+Selector"),
        _service,
    ),
    ("", "namespaces"): (
        _columns("Name", "Status", "Age"),
        lambda o: [o["metadata"]["name"], (o.get("status") or {}).get("phase", ""), _meta_age(o)],
    ),
    ("", "configmaps"): (
        _columns("Name", "Data", "Age"),
        lambda o: [
            o["metadata"]["name"],
            len(o.get("data") or {}) + len(o.get("binaryData") or {}),
            _meta_age(o),
        ],
    ),
    ("", "serviceaccounts"): (
        _columns("Name", "Secrets", "Age"),
        lambda o: [o["metadata"]["name"], len(o.get("secrets") or []), _meta_age(o)],
    ),
    ("", "events"): (_columns("Last Seen", "Type", "Reason", "Object", "Message"), _event),
    ("batch", "jobs"): (_columns("Name", "Status", "Completions", "Duration", "Age"), _job),
    ("apps", "deployments"): (
        _columns("Name", "Ready", "Up-to-date", "Available", "Age", "+Containers", "+Images", "+Selector"),
        _deployment,
    ),
    ("apps", "replicasets"): (
        _columns("Name", "Desired", "Current", "Ready", "Age", "+Containers", "+Images", "+Selector"),
        _replica_set,
    ),
    ("apps", "statefulsets"): (_columns("Name", "Ready", "Age", "+Containers", "+Images"), _stateful_set),
    ("apps", "daemonsets"): (
        _columns(
            "Name",
            "Desired",
            "Current",
            "Ready",
            "Up-to-date",
            "Available",
            "Node Selector",
            "Age",
            "+Containers",
            "+Images",
            "+Selector",
        ),
        _daemon_set,
    ),
    ("discovery.k8s.io", "endpointslices"): (
        _columns("Name", "AddressType", "Ports", "Endpoints", "Age"),
        _endpoint_slice,
    ),
    ("rbac.authorization.k8s.io", "rolebindings"): (_columns("Name", "Role", "Age"), _binding),
    ("rbac.authorization.k8s.io", "clusterrolebindings"): (_columns("Name", "Role", "Age"), _binding),
}
ISTIO_COLUMNS: dict[str, list[tuple[str, Callable[[dict[str, Any]], Any]]]] = {
    "serviceentries": [
        ("Hosts", _jsonpath("spec", "hosts")),
        ("Location", _jsonpath("spec", "location")),
        ("Resolution", _jsonpath("spec", "resolution")),
    ],
    "destinationrules": [("Host", _jsonpath("spec", "host"))],
    "virtualservices": [("Gateways", _jsonpath("spec", "gateways")), ("Hosts", _jsonpath("spec", "hosts"))],
    "authorizationpolicies": [("Action", _jsonpath("spec", "action"))],
    "peerauthentications": [("Mode", _jsonpath("spec", "mtls", "mode"))],
    "workloadentries": [("Address", _jsonpath("spec", "address"))],
}


def _layout(rtype: ResourceType) -> tuple[list[tuple[str, int]], Row]:
    found = BUILTIN.get((rtype.group, rtype.plural))
    if found is not None:
        return found
    extra = ISTIO_COLUMNS.get(rtype.plural, []) if rtype.group.endswith("istio.io") else []
    names = ["Name", *(name for name, _ in extra), "Age"]
    return _columns(*names), lambda o: [o["metadata"]["name"], *(get(o) for _, get in extra), _meta_age(o)]


def _row_object(obj: dict[str, Any], include: str) -> dict[str, Any] | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}


def table(
    rtype: ResourceType, items: list[dict[str, Any]], rv: str, include: str = "Metadata"
) -> dict[str, Any]:
    """A Table of ``items`` (``includeObject``: None, Metadata or Object)."""
    columns, row = _layout(rtype)
    definitions = [
        {
            "name": name,
            "type": "string",
            "format": "name" if name == "Name" else "",
            "description": "",
            "priority": priority,
        }
        for name, priority in columns
    ]
    rows = []
    for item in items:
        entry: dict[str, Any] = {"cells": row(item)}
        shown = _row_object(item, include)
        if shown is not None:
            entry["object"] = shown
        rows.append(entry)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv},
        "columnDefinitions": definitions,
        "rows": rows,
    }


def wants_table(accept: str) -> bool:
    return "as=Table" in accept.replace(" ", "")
