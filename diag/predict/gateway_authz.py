"""AuthorizationPolicy at an egress gateway: which policies apply to the gateway workload, and what
they decide for one request from one source identity.

How istiod and Envoy evaluate them (Istio 1.22–1.30):

- selection (`pilot/pkg/model/authorization.go` `ListAuthorizationPolicies`): a policy in the root
  namespace without a selector applies to every workload of the mesh, one in the gateway's namespace
  without a selector to every workload there, one with `selector.matchLabels` to the workloads
  carrying those labels (in its own namespace, or anywhere from the root namespace); a policy with
  `targetRef(s)` attaches to a Gateway API gateway or a waypoint, not to this Deployment;
- order (`pilot/pkg/security/authz/builder/builder.go`): CUSTOM first, then DENY, then ALLOW: a
  matching DENY denies; when any ALLOW policy applies, a request no ALLOW rule matches is denied;
  AUDIT decides nothing;
- a rule matches when one of its `from`, one of its `to` and all of its `when` match; inside a
  `source`/`operation`, every field set must match, a field matching when one value matches and no
  `not` value does (`pilot/pkg/security/authz/model/model.go`). A policy with no rules matches
  nothing; `rules: [{}]` matches everything;
- principals and namespaces come from the peer certificate: the gateway knows the caller's
  identity only when the sidecar→gateway hop is Istio mTLS terminated by the gateway (a server in
  `ISTIO_MUTUAL` mode); on a plaintext server every principal/namespace condition fails;
- on a TCP/TLS-passthrough server (`pilot/pkg/security/authz/builder` TCP filter) HTTP-only fields
  (hosts, methods, paths, request headers) make an ALLOW rule never match and are dropped from a
  DENY rule (which then denies more);
- a denial is `403 RBAC: access denied` on HTTP, a closed connection on TCP/TLS passthrough.

Principals are matched as written in the policy (`<trust domain>/ns/<ns>/sa/<sa>`, `*` wildcards at
either end); the trust domain is MeshConfig `trustDomain` (default `cluster.local`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from diag.model.resources import AuthorizationPolicy, AuthzOperation, AuthzRule, AuthzSource
from diag.model.snapshot import Snapshot

HTTP_KEYS = ("request.headers", "request.auth", "request.method", "request.path")


@dataclass(frozen=True, kw_only=True)
class Request:
    """What the gateway sees: the caller's principal (None = not authenticated), the Host, the
    destination (pod) port, method and path (None for TCP/TLS passthrough), the SNI."""

    principal: str | None
    host: str
    port: int
    http: bool
    method: str = "GET"
    path: str = "/"
    sni: str | None = None


@dataclass(frozen=True, kw_only=True)
class AuthzDecision:
    """`allowed`, the policy that decided (None: no policy applies), and why."""

    allowed: bool
    policy: str | None
    reason: str
    applied: tuple[str, ...] = ()  # every policy selecting the gateway
    uncertain: tuple[str, ...] = ()  # what could not be evaluated (CUSTOM, unmodelled fields)


def _match(pattern: str, value: str) -> bool:
    """Istio's string match: exact, `prefix*`, `*suffix`, or `*` (any non-empty value)."""
    if pattern == "*":
        return bool(value)
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    return pattern == value


def _field(values: Sequence[str], not_values: Sequence[str], value: str | None) -> bool:
    """A field with values/notValues: unset matches; else the value must be known, hit one value
    (when any are given) and no not-value."""
    if not values and not not_values:
        return True
    if value is None:
        return False
    if values and not any(_match(v, value) for v in values):
        return False
    return not any(_match(v, value) for v in not_values)


def principal_namespace(principal: str | None) -> str | None:
    """`td/ns/NS/sa/SA` → NS."""
    if not principal:
        return None
    parts = principal.split("/")
    return parts[parts.index("ns") + 1] if "ns" in parts[:-1] else None


def _source_ok(src: AuthzSource, req: Request) -> bool:
    return _field(src.principals, src.not_principals, req.principal) and _field(
        src.namespaces, src.not_namespaces, principal_namespace(req.principal)
    )


def _operation_ok(op: AuthzOperation, req: Request, deny: bool) -> bool | None:
    """None: the operation has HTTP-only fields on a TCP request and the rule is an ALLOW one."""
    http_fields = (op.hosts, op.not_hosts, op.methods, op.not_methods, op.paths, op.not_paths)
    if not req.http and any(http_fields):
        if not deny:
            return None
        return _field(op.ports, op.not_ports, str(req.port))  # HTTP fields dropped: denies more
    host = req.host.lower()
    return (
        _field([h.lower() for h in op.hosts], [h.lower() for h in op.not_hosts], host)
        and _field(op.ports, op.not_ports, str(req.port))
        and _field(op.methods, op.not_methods, req.method if req.http else None)
        and _field(op.paths, op.not_paths, req.path.split("?", 1)[0] if req.http else None)
    )


def _condition_value(key: str, req: Request) -> tuple[bool, str | None]:
    """(modelled, value) of a `when` key."""
    values = {
        "source.principal": req.principal,
        "source.namespace": principal_namespace(req.principal),
        "destination.port": str(req.port),
        "connection.sni": req.sni,
    }
    if key in values:
        return True, values[key]
    return False, None


def rule_matches(rule: AuthzRule, req: Request, deny: bool, uncertain: list[str]) -> bool:
    """One rule against the request (see the module docstring)."""
    if rule.sources and not any(_source_ok(s, req) for s in rule.sources):
        return False
    for src in rule.sources:
        uncertain.extend(f"source.{k}" for k in src.other)
    if rule.operations:
        results = [_operation_ok(op, req, deny) for op in rule.operations]
        if not any(r is True for r in results):
            return False
    for cond in rule.conditions:
        modelled, value = _condition_value(cond.key, req)
        if not modelled:
            uncertain.append(f"when {cond.key}")
            if not req.http and cond.key.startswith(HTTP_KEYS) and not deny:
                return False
            continue
        if not _field(cond.values, cond.not_values, value):
            return False
    return True


def _selects(policy: AuthorizationPolicy, namespace: str, labels: Mapping[str, str], root: str) -> bool:
    if policy.has_target_ref or policy.namespace not in (namespace, root):
        return False
    if policy.selector is None:
        return True
    return all(labels.get(k) == v for k, v in policy.selector.items())


def policies_for(snapshot: Snapshot, namespace: str, labels: Mapping[str, str]) -> list[AuthorizationPolicy]:
    """The policies that apply to a workload (namespace + pod labels), in a stable order."""
    root = snapshot.mesh.root_namespace
    found = [p for p in snapshot.authorization_policies if _selects(p, namespace, labels, root)]
    return sorted(found, key=lambda p: (p.namespace, p.name))


def evaluate(policies: Sequence[AuthorizationPolicy], req: Request) -> AuthzDecision:
    """CUSTOM (not evaluated), DENY, then ALLOW, as Envoy's RBAC filters run them."""
    applied = tuple(p.ref for p in policies)
    uncertain: list[str] = []
    for p in policies:
        if p.action == "CUSTOM":
            uncertain.append(f"{p.ref} (CUSTOM: an external authorizer decides)")
    for p in policies:
        if p.action == "DENY" and any(rule_matches(r, req, True, uncertain) for r in p.rules):
            return AuthzDecision(
                allowed=False,
                policy=p.ref,
                reason="a DENY rule matches",
                applied=applied,
                uncertain=tuple(uncertain),
            )
    allows = [p for p in policies if p.action == "ALLOW"]
    for p in allows:
        if any(rule_matches(r, req, False, uncertain) for r in p.rules):
            return AuthzDecision(
                allowed=True,
                policy=p.ref,
                reason="an ALLOW rule matches",
                applied=applied,
                uncertain=tuple(uncertain),
            )
    if allows:
        return AuthzDecision(
            allowed=False,
            policy=allows[0].ref,
            reason="ALLOW policies apply and none of their rules matches",
            applied=applied,
            uncertain=tuple(uncertain),
        )
    return AuthzDecision(
        allowed=True,
        policy=None,
        reason="no ALLOW or DENY policy applies",
        applied=applied,
        uncertain=tuple(uncertain),
    )
