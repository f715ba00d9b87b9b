"""From method + URL to what a request is about: verb, group, version, namespace, resource, name,
subresource — staging/src/k8s.io/apiserver/pkg/endpoints/request/requestinfo.go
(``RequestInfoFactory.NewRequestInfo``), including its quirks: ``/api/v1/namespaces/x`` is the
namespace ``x`` *in* namespace ``x``, and ``/watch/`` paths and ``?watch=true`` both make a watch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

NAMESPACE_SUBRESOURCES = {"status", "finalize"}
METHOD_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}


@dataclass(frozen=True)
class RequestInfo:
    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    resource_request: bool = False
    verb: str = ""
    group: str = ""
    version: str = ""
    namespace: str = ""
    resource: str = ""
    name: str = ""
    subresource: str = ""

    @property
    def authz_name(self) -> str:
        """The name authorization sees: a list or watch narrowed by ``fieldSelector=metadata.name=x``
        counts as a request for ``x`` (so resourceNames rules can allow it)."""
        if self.name or self.verb not in ("list", "watch"):
            return self.name
        terms = [t.strip() for t in self.query.get("fieldSelector", "").split(",") if t.strip()]
        for term in terms:
            for op in ("==", "="):
                key, sep, value = term.partition(op)
                if sep and key.strip() == "metadata.name" and not key.endswith("!"):
                    return value.strip()
        return ""

    def flag(self, key: str) -> bool:
        return self.query.get(key, "").lower() in ("1", "true")

    def int_param(self, key: str) -> int | None:
        raw = self.query.get(key)
        if raw in (None, ""):
            return None
        try:
            return int(str(raw))
        except ValueError:
            from lab.apiserver.errors import BadRequest

            raise BadRequest(f'invalid value for {key}: "{raw}"') from None


def parse_request(method: str, target: str) -> RequestInfo:
    split = urlsplit(target)
    path = split.path or "/"
    query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
    parts = [p for p in path.strip("/").split("/") if p]
    plain = RequestInfo(method, path, query, False, method.lower())
    if not parts or parts[0] not in ("api", "apis"):
        return plain
    if parts[0] == "api":
        if len(parts) < 2:
            return plain
        group, version, rest = "", parts[1], parts[2:]
    else:
        if len(parts) < 3:
            return plain
        group, version, rest = parts[1], parts[2], parts[3:]
    if not rest:
        return plain
    watch_prefix = rest[0] == "watch"
    if watch_prefix:
        rest = rest[1:]
    namespace = ""
    if rest and rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    if not rest:
        return plain
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if method in ("GET", "HEAD"):
        watching = watch_prefix or query.get("watch", "").lower() in ("1", "true")
        verb = "get" if name else "watch" if watching else "list"
        if name and watch_prefix:
            verb = "watch"
    elif method == "DELETE":
        verb = "delete" if name else "deletecollection"
    else:
        verb = METHOD_VERBS.get(method, method.lower())
    return RequestInfo(
        method, path, query, True, verb, group, version, namespace, resource, name, subresource
    )
