"""AuthorizationPolicy → Envoy RBAC filters (HTTP and network) for one proxy.

Pilot sources:
- ``pilot/pkg/model/authorization.go`` ``ListAuthorizationPolicies``: policies in the root namespace
  and in the proxy's namespace whose ``selector.matchLabels`` is a subset of the proxy's labels (no
  selector: all); ``targetRef(s)`` policies and CUSTOM/AUDIT actions are not modelled (noted).
- ``pilot/pkg/security/authz/builder/builder.go``: one RBAC filter for the DENY policies, then one for
  the ALLOW policies (so a DENY is evaluated first, and any ALLOW policy denies what it does not
  allow); policy names ``ns[NS]-policy[NAME]-rule[i]``; a policy without rules never matches
  (``rbacPolicyMatchNever``); ``istio.io/dry-run`` policies go to ``shadow_rules`` with the
  ``istio_dry_run_allow_``/``istio_dry_run_deny_`` prefix; the network filter's stat prefix is
  ``tcp.``.
- ``pilot/pkg/security/authz/model/model.go`` ``New``/``Generate``: one permission per ``to`` (and of
  hosts, methods, paths, ports, then ``when``), one principal per ``from`` (and of principals,
  serviceAccounts, namespaces, ipBlocks, then ``when``); a value list is an OR, ``notX`` a NOT of it.
  On a TCP chain HTTP-only fields make an ALLOW rule be skipped and are dropped from a DENY rule.
- ``model/generator.go`` and ``matcher/``: principals ``spiffe://`` + value (``*``: regex ``.+``,
  prefix/suffix wildcards); namespaces → regex ``.*/ns/NS/.*``; hosts ignore case; ports →
  ``destination_port`` (the listener's port, i.e. the target port).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

RBAC_HTTP = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
RBAC_NETWORK = "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC"
DRY_RUN = "istio.io/dry-run"
NEVER = {"permissions": [{"not_rule": {"any": True}}], "principals": [{"not_id": {"any": True}}]}


class HttpOnly(Exception):
    """A field that has no meaning on a TCP chain."""


def quote_meta(text: str) -> str:
    """Go's ``regexp.QuoteMeta`` (escapes only ``\\.+*?()|[]{}^$``)."""
    return "".join("\\" + c if c in "\\.+*?()|[]{}^$" else c for c in text)


def _string(value: str, prefix: str = "") -> dict[str, Any]:
    """``StringMatcherWithPrefix``."""
    if value == "*":
        return {"safe_regex": {"regex": ".+"}}
    if value.startswith("*"):
        if not prefix:
            return {"suffix": value[1:]}
        return {"safe_regex": {"regex": prefix + ".*" + quote_meta(value[1:])}}
    if value.endswith("*"):
        return {"prefix": prefix + value[:-1]}
    return {"exact": prefix + value}


def _header(name: str, value: str, ignore_case: bool = False) -> dict[str, Any]:
    """``HeaderMatcher``/``HostMatcher``."""
    if value == "*":
        return {"name": name, "present_match": True}
    if value.startswith("*"):
        m: dict[str, Any] = {"suffix": value[1:]}
    elif value.endswith("*"):
        m = {"prefix": value[:-1]}
    else:
        m = {"exact": value}
    if ignore_case:
        m["ignore_case"] = True
    return {"name": name, "string_match": m}


def _authenticated(m: dict[str, Any]) -> dict[str, Any]:
    return {"authenticated": {"principal_name": m}}


def _cidr(value: str) -> dict[str, Any]:
    addr, _, length = value.partition("/")
    return {"address_prefix": addr, "prefix_len": int(length) if length else 32}


def _principal(key: str, value: str, tcp: bool) -> dict[str, Any]:
    if key == "principals" or key == "source.principal":
        return _authenticated(_string(value, "spiffe://"))
    if key == "namespaces" or key == "source.namespace":
        regex = ".*".join(quote_meta(p) for p in value.split("*"))
        return _authenticated({"safe_regex": {"regex": f".*/ns/{regex}/.*"}})
    if key == "serviceAccounts" or key == "source.serviceAccount":
        ns, _, sa = value.partition("/")  # qualified with the policy's namespace by _policy
        regex = f"spiffe://.+/ns/{quote_meta(ns)}/(.+/|)sa/{quote_meta(sa)}(/.+)?"
        return _authenticated({"safe_regex": {"regex": regex}})
    if key == "ipBlocks" or key == "source.ip":
        return {"direct_remote_ip": _cidr(value)}
    if key == "remoteIpBlocks" or key == "remote.ip":
        return {"remote_ip": _cidr(value)}
    if key.startswith("request.headers["):
        if tcp:
            raise HttpOnly(key)
        return {"header": _header(key[len("request.headers["):].rstrip("]"), value)}
    raise ValueError(f"unsupported source attribute {key}")


def _permission(key: str, value: str, tcp: bool) -> dict[str, Any]:
    if key in ("ports", "destination.port"):
        return {"destination_port": int(value)}
    if key == "connection.sni":
        return {"requested_server_name": _string(value)}
    if tcp and key in ("hosts", "methods", "paths"):
        raise HttpOnly(key)
    if key == "hosts":
        return {"header": _header(":authority", value, ignore_case=True)}
    if key == "methods":
        return {"header": _header(":method", value)}
    if key == "paths":
        return {"url_path": {"path": _string(value)}}
    raise ValueError(f"unsupported operation attribute {key}")


def _clause(key: str, values: Sequence[str], not_values: Sequence[str], tcp: bool, deny: bool,
            build: Any, or_key: str, not_key: str) -> list[dict[str, Any]]:
    out = []
    for vals, negate in ((values, False), (not_values, True)):
        items = []
        for v in vals:
            try:
                items.append(build(key, str(v), tcp))
            except HttpOnly:
                if not deny:
                    raise
        if items:
            ored = {or_key: {("rules" if or_key == "or_rules" else "ids"): items}}
            out.append({not_key: ored} if negate else ored)
    return out


_SOURCE_FIELDS = (("principals", "notPrincipals"), ("serviceAccounts", "notServiceAccounts"),
                  ("namespaces", "notNamespaces"), ("remoteIpBlocks", "notRemoteIpBlocks"),
                  ("ipBlocks", "notIpBlocks"))
_OPERATION_FIELDS = (("hosts", "notHosts"), ("methods", "notMethods"), ("paths", "notPaths"),
                     ("ports", "notPorts"))
_PRINCIPAL_KEYS = ("source.", "remote.ip", "request.headers[")


def _qualify(accounts: Any, ns: str) -> list[str]:
    return [str(a) if "/" in str(a) else f"{ns}/{a}" for a in accounts or ()]


def _policy(rule: Mapping[str, Any], tcp: bool, deny: bool, ns: str) -> dict[str, Any]:
    """``Model.New`` + ``Generate`` for one rule (raises on a rule pilot skips)."""
    when_perm: list[dict[str, Any]] = []
    when_prin: list[dict[str, Any]] = []
    for cond in rule.get("when") or ():
        key = str(cond.get("key") or "")
        vals, nots = list(cond.get("values") or ()), list(cond.get("notValues") or ())
        if key == "source.serviceAccount":
            vals, nots = _qualify(vals, ns), _qualify(nots, ns)
        if key.startswith(_PRINCIPAL_KEYS):
            when_prin += _clause(key, vals, nots, tcp, deny, _principal, "or_ids", "not_id")
        else:
            when_perm += _clause(key, vals, nots, tcp, deny, _permission, "or_rules", "not_rule")
    principals = []
    for src in rule.get("from") or ():
        s = dict(src.get("source") or {})
        for k in ("serviceAccounts", "notServiceAccounts"):
            s[k] = _qualify(s.get(k), ns)
        ands = []
        for key, not_key in _SOURCE_FIELDS:
            ands += _clause(key, s.get(key) or (), s.get(not_key) or (), tcp, deny, _principal,
                            "or_ids", "not_id")
        ands += when_prin
        principals.append({"and_ids": {"ids": ands or [{"any": True}]}})
    if not rule.get("from"):
        principals.append({"and_ids": {"ids": when_prin or [{"any": True}]}})
    permissions = []
    for to in rule.get("to") or ():
        o = to.get("operation") or {}
        ands = []
        for key, not_key in _OPERATION_FIELDS:
            ands += _clause(key, o.get(key) or (), o.get(not_key) or (), tcp, deny, _permission,
                            "or_rules", "not_rule")
        ands += when_perm
        permissions.append({"and_rules": {"rules": ands or [{"any": True}]}})
    if not rule.get("to"):
        permissions.append({"and_rules": {"rules": when_perm or [{"any": True}]}})
    return {"permissions": permissions, "principals": principals}


def policies_for(objects: Sequence[Mapping[str, Any]], namespace: str, labels: Mapping[str, str],
                 root_namespace: str, notes: list[str]) -> list[Mapping[str, Any]]:
    """``ListAuthorizationPolicies`` for a proxy (raw objects, oldest first)."""
    out = []
    for obj in objects:
        if obj.get("kind") != "AuthorizationPolicy" or not str(obj.get("apiVersion") or "").startswith(
                "security.istio.io/"):
            continue
        md = obj.get("metadata") or {}
        ns = str(md.get("namespace") or "default")
        spec = obj.get("spec") or {}
        if ns not in (namespace, root_namespace):
            continue
        ref = f"AuthorizationPolicy {ns}/{md.get('name')}"
        if spec.get("targetRef") or spec.get("targetRefs"):
            notes.append(f"{ref}: targetRef is not modelled: ignored")
            continue
        selector = (spec.get("selector") or {}).get("matchLabels") or {}
        if any(labels.get(str(k)) != str(v) for k, v in selector.items()):
            continue
        out.append(obj)

    def key(o: Mapping[str, Any]) -> tuple[str, str, str]:
        md = o.get("metadata") or {}
        return str(md.get("creationTimestamp") or ""), str(md.get("name")), str(md.get("namespace"))

    out.sort(key=key)
    return out


def rbac_configs(policies: Sequence[Mapping[str, Any]], tcp: bool, notes: list[str]) -> list[dict[str, Any]]:
    """The RBAC filter configs (without ``@type``): DENY first, then ALLOW."""
    out = []
    for action in ("DENY", "ALLOW"):
        enforce: dict[str, Any] = {}
        shadow: dict[str, Any] = {}
        present = has_enforce = has_dry = False
        for obj in policies:
            spec = obj.get("spec") or {}
            got = str(spec.get("action") or "ALLOW")
            md = obj.get("metadata") or {}
            if got in ("CUSTOM", "AUDIT"):
                if action == "DENY":
                    ref = f"AuthorizationPolicy {md.get('namespace')}/{md.get('name')}"
                    notes.append(f"{ref}: action {got} is not modelled: ignored")
                continue
            if got != action:
                continue
            present = True
            dry = str((md.get("annotations") or {}).get(DRY_RUN, "")).lower() == "true"
            has_dry, has_enforce = has_dry or dry, has_enforce or not dry
            target = shadow if dry else enforce
            rules = list(spec.get("rules") or ())
            for i, rule in enumerate(rules):
                name = f"ns[{md.get('namespace')}]-policy[{md.get('name')}]-rule[{i}]"
                try:
                    target[name] = _policy(rule or {}, tcp, action == "DENY", str(md.get("namespace")))
                except (HttpOnly, ValueError, TypeError) as exc:
                    notes.append(f"{name}: skipped on {'TCP' if tcp else 'HTTP'} chains: {exc}")
            if not rules:
                target[f"ns[{md.get('namespace')}]-policy[{md.get('name')}]-rule[0]"] = NEVER
        if not present:
            continue
        config: dict[str, Any] = {}
        if has_enforce:
            config["rules"] = {"action": action, "policies": enforce}
        if has_dry:
            config["shadow_rules"] = {"action": action, "policies": shadow}
            config["shadow_rules_stat_prefix"] = f"istio_dry_run_{action.lower()}_"
        out.append(config)
    return out


def http_filters(policies: Sequence[Mapping[str, Any]], notes: list[str]) -> list[dict[str, Any]]:
    return [{"name": "envoy.filters.http.rbac", "typed_config": {"@type": RBAC_HTTP, **c}}
            for c in rbac_configs(policies, False, notes)]


def network_filters(policies: Sequence[Mapping[str, Any]], notes: list[str]) -> list[dict[str, Any]]:
    return [{"name": "envoy.filters.network.rbac",
             "typed_config": {"@type": RBAC_NETWORK, "stat_prefix": "tcp.", **c}}
            for c in rbac_configs(policies, True, notes)]
