"""AuthorizationPolicies on the egress gateway: which policies apply and the RBAC filters pilot builds
from them (HTTP chains: ``envoy.filters.http.rbac`` first in the HCM; TCP/passthrough chains:
``envoy.filters.network.rbac`` before ``tcp_proxy``)."""

from __future__ import annotations

from typing import Any

from lab.istiod import GatewayView, generate_gateway
from lab.istiod.samples import authorization_policy
from tests.lab import gateway_cases as cases
from tests.lab.test_istiod_gateway import hcm, listener

GW = GatewayView(ca_file="/etc/ssl/roots.pem", mesh_ca_file="/certs/root.pem",
                 cert_chain_file="/certs/gw.pem", private_key_file="/certs/gw.key")
HTTP_RBAC = "envoy.filters.http.rbac"
NET_RBAC = "envoy.filters.network.rbac"
ANY_PERMISSION = [{"and_rules": {"rules": [{"any": True}]}}]
ANY_PRINCIPAL = [{"and_ids": {"ids": [{"any": True}]}}]


def http_rbac(objects: list[dict[str, Any]], gw: GatewayView = GW) -> list[dict[str, Any]]:
    cfg = generate_gateway(objects, gw)
    chain = listener(cfg, "0.0.0.0_8443")["filter_chains"][0]
    filters = hcm(chain)["http_filters"]
    assert filters[-1]["name"] == "envoy.filters.http.router"
    return [f["typed_config"] for f in filters if f["name"] == HTTP_RBAC]


def tcp_rbac(objects: list[dict[str, Any]], port: str = "0.0.0.0_8443") -> list[dict[str, Any]]:
    chain = listener(generate_gateway(objects, GW), port)["filter_chains"][0]
    names = [f["name"] for f in chain["filters"]]
    assert names[-1] == "envoy.filters.network.tcp_proxy"
    return [f["typed_config"] for f in chain["filters"] if f["name"] == NET_RBAC]


def test_no_policy_no_rbac_filter() -> None:
    assert http_rbac(cases.mutual_http()) == []
    assert tcp_rbac(cases.tls_passthrough()) == []


def test_allow_principals_on_http_chain() -> None:
    (rbac,) = http_rbac([*cases.mutual_http(), cases.allow_sleep()])
    assert rbac["@type"] == "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
    assert rbac["rules"]["action"] == "ALLOW"
    policy = rbac["rules"]["policies"]["ns[istio-system]-policy[allow-sleep]-rule[0]"]
    assert policy["permissions"] == ANY_PERMISSION
    principal = {"authenticated": {"principal_name": {"exact": "spiffe://cluster.local/ns/default/sa/sleep"}}}
    assert policy["principals"] == [{"and_ids": {"ids": [{"or_ids": {"ids": [principal]}}]}}]
    assert "shadow_rules" not in rbac


def test_rbac_filter_comes_before_fault_cors_router() -> None:
    cfg = generate_gateway([*cases.mutual_http(), cases.allow_sleep()], GW)
    filters = hcm(listener(cfg, "0.0.0.0_8443")["filter_chains"][0])["http_filters"]
    assert [f["name"] for f in filters] == [HTTP_RBAC, "envoy.filters.http.fault", "envoy.filters.http.cors",
                                            "envoy.filters.http.router"]


def test_deny_namespaces_regex_on_principal() -> None:
    (rbac,) = http_rbac([*cases.mutual_http(), cases.deny_namespace("default")])
    assert rbac["rules"]["action"] == "DENY"
    policy = rbac["rules"]["policies"]["ns[istio-system]-policy[deny-ns]-rule[0]"]
    regex = {"authenticated": {"principal_name": {"safe_regex": {"regex": ".*/ns/default/.*"}}}}
    assert policy["principals"] == [{"and_ids": {"ids": [{"or_ids": {"ids": [regex]}}]}}]


def test_deny_filter_is_evaluated_before_allow() -> None:
    filters = http_rbac([*cases.mutual_http(), cases.allow_sleep(), cases.deny_namespace()])
    assert [f["rules"]["action"] for f in filters] == ["DENY", "ALLOW"]


def test_policy_selecting_another_workload_does_not_apply() -> None:
    other = authorization_policy("other", selector={"app": "httpbin"}, rules=[{}])
    assert http_rbac([*cases.mutual_http(), other]) == []


def test_policy_in_another_namespace_applies_only_from_the_root_namespace() -> None:
    elsewhere = authorization_policy("elsewhere", namespace="default", rules=[{}])
    assert http_rbac([*cases.mutual_http(), elsewhere]) == []
    rooted = GatewayView(mesh={"rootNamespace": "default"}, mesh_ca_file="/r.pem",
                         cert_chain_file="/c.pem", private_key_file="/k.pem")
    (rbac,) = http_rbac([*cases.mutual_http(), elsewhere], rooted)
    assert list(rbac["rules"]["policies"]) == ["ns[default]-policy[elsewhere]-rule[0]"]


def test_empty_allow_policy_matches_nothing() -> None:
    (rbac,) = http_rbac([*cases.mutual_http(), authorization_policy("allow-nothing", selector={})])
    policy = rbac["rules"]["policies"]["ns[istio-system]-policy[allow-nothing]-rule[0]"]
    assert policy == {"permissions": [{"not_rule": {"any": True}}], "principals": [{"not_id": {"any": True}}]}


def test_operation_fields_on_http_chain() -> None:
    (rbac,) = http_rbac([*cases.mutual_http(), cases.allow_operations()])
    policy = rbac["rules"]["policies"]["ns[istio-system]-policy[allow-get]-rule[0]"]
    assert policy["principals"] == ANY_PRINCIPAL
    (perm,) = policy["permissions"]
    rules = perm["and_rules"]["rules"]
    host = {"name": ":authority", "string_match": {"exact": cases.CNN, "ignore_case": True}}
    assert rules[0] == {"or_rules": {"rules": [{"header": host}]}}
    method = {"name": ":method", "string_match": {"exact": "GET"}}
    assert rules[1] == {"or_rules": {"rules": [{"header": method}]}}
    assert rules[2] == {"or_rules": {"rules": [{"url_path": {"path": {"prefix": "/status"}}}]}}
    private = {"url_path": {"path": {"exact": "/status/private"}}}
    assert rules[3] == {"not_rule": {"or_rules": {"rules": [private]}}}
    assert rules[4] == {"or_rules": {"rules": [{"destination_port": 8080}]}}


def test_tcp_chain_gets_network_rbac_with_tcp_stat_prefix() -> None:
    filters = tcp_rbac([*cases.tls_passthrough(), cases.allow_sleep(), cases.deny_namespace()])
    assert [f["rules"]["action"] for f in filters] == ["DENY", "ALLOW"]
    assert all(f["stat_prefix"] == "tcp." for f in filters)
    assert filters[0]["@type"] == "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC"


def test_http_only_fields_skip_an_allow_rule_on_tcp_and_widen_a_deny_rule() -> None:
    deny_get = authorization_policy("deny-get", selector=cases.GW_SELECTOR, action="DENY",
                                    rules=[{"to": [{"operation": {"methods": ["GET"]}}]}])
    cfg = generate_gateway([*cases.tls_passthrough(), cases.allow_operations(), deny_get], GW)
    chain = listener(cfg, "0.0.0.0_8443")["filter_chains"][0]
    deny, allow = [f["typed_config"] for f in chain["filters"] if f["name"] == NET_RBAC]
    # DENY: the method is dropped, so every TCP connection is denied
    policy = deny["rules"]["policies"]["ns[istio-system]-policy[deny-get]-rule[0]"]
    assert policy["permissions"] == ANY_PERMISSION
    # ALLOW: the rule is skipped, leaving an ALLOW filter with no policies (nothing allowed)
    assert allow["rules"] == {"action": "ALLOW", "policies": {}}
    assert any("policy[allow-get]-rule[0]: skipped on TCP chains" in n for n in cfg.notes)


def test_dry_run_policy_becomes_shadow_rules() -> None:
    dry = authorization_policy("dry", selector=cases.GW_SELECTOR, action="DENY", rules=[{}],
                               annotations={"istio.io/dry-run": "true"})
    (rbac,) = tcp_rbac([*cases.tcp_server(), dry], "0.0.0.0_9000")
    assert "rules" not in rbac
    assert rbac["shadow_rules"]["action"] == "DENY"
    assert rbac["shadow_rules_stat_prefix"] == "istio_dry_run_deny_"


def test_service_accounts_when_conditions_and_unknown_keys() -> None:
    policy = authorization_policy("sa", selector=cases.GW_SELECTOR, rules=[
        {"from": [{"source": {"serviceAccounts": ["sleep", "other-ns/curl"]}}],
         "when": [{"key": "destination.port", "values": ["8443"]},
                  {"key": "source.namespace", "notValues": ["blocked"]}]},
        {"when": [{"key": "destination.labels[app]", "values": ["x"]}]},
    ])
    cfg = generate_gateway([*cases.mutual_http(), policy], GW)
    filters = hcm(listener(cfg, "0.0.0.0_8443")["filter_chains"][0])["http_filters"]
    rbac = next(f["typed_config"] for f in filters if f["name"] == HTTP_RBAC)
    assert list(rbac["rules"]["policies"]) == ["ns[istio-system]-policy[sa]-rule[0]"]
    rule = rbac["rules"]["policies"]["ns[istio-system]-policy[sa]-rule[0]"]
    ids = rule["principals"][0]["and_ids"]["ids"]
    regexes = [i["authenticated"]["principal_name"]["safe_regex"]["regex"] for i in ids[0]["or_ids"]["ids"]]
    # an unqualified service account is in the policy's namespace
    assert regexes == ["spiffe://.+/ns/istio-system/(.+/|)sa/sleep(/.+)?",
                       "spiffe://.+/ns/other-ns/(.+/|)sa/curl(/.+)?"]
    blocked = {"authenticated": {"principal_name": {"safe_regex": {"regex": ".*/ns/blocked/.*"}}}}
    assert ids[1] == {"not_id": {"or_ids": {"ids": [blocked]}}}
    port = {"or_rules": {"rules": [{"destination_port": 8443}]}}
    assert rule["permissions"] == [{"and_rules": {"rules": [port]}}]
    assert any("policy[sa]-rule[1]: skipped" in n for n in cfg.notes)
