"""AuthorizationPolicies at the egress gateway (`diag.predict.gateway_authz`): selection, DENY
before ALLOW, an ALLOW policy making no-match a deny, identity only over Istio mTLS, TCP rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from diag.model.loader import load_text
from diag.model.resources import AuthorizationPolicy
from diag.model.snapshot import Snapshot
from diag.predict.gateway import with_gateway
from diag.predict.gateway_authz import Request, evaluate, policies_for
from diag.predict.gateway_model import GatewayHop
from diag.predict.model import Call, Source
from diag.predict.sidecar import predict

DATA = Path(__file__).parent / "testdata" / "gateway"
SLEEP = "cluster.local/ns/apps/sa/sleep"


def policy(name: str, spec: str, namespace: str = "istio-system") -> str:
    return (
        f"---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
        f"metadata: {{name: {name}, namespace: {namespace}}}\nspec:\n{spec}\n"
    )


def policies(*docs: str) -> list[AuthorizationPolicy]:
    loaded = load_text("".join(docs))
    assert loaded.problems == ()
    return [o for o in loaded.objects if isinstance(o, AuthorizationPolicy)]


def http(principal: str | None = SLEEP, host: str = "api.example.com", port: int = 8080) -> Request:
    return Request(principal=principal, host=host, port=port, http=True, method="GET", path="/v1?x=1")


ALLOW_SLEEP = policy(
    "allow-sleep", "  action: ALLOW\n  rules: [{from: [{source: {principals: [" + SLEEP + "]}}]}]"
)
DENY_APPS = policy("deny-apps", "  action: DENY\n  rules: [{from: [{source: {namespaces: [apps]}}]}]")


def test_no_policy_allows() -> None:
    decision = evaluate([], http())
    assert decision.allowed and decision.policy is None


def test_allow_matching_principal() -> None:
    decision = evaluate(policies(ALLOW_SLEEP), http())
    assert (decision.allowed, decision.policy) == (True, "AuthorizationPolicy istio-system/allow-sleep")


def test_allow_policy_without_a_match_denies() -> None:
    decision = evaluate(policies(ALLOW_SLEEP), http(principal="cluster.local/ns/apps/sa/other"))
    assert (decision.allowed, decision.policy) == (False, "AuthorizationPolicy istio-system/allow-sleep")
    assert "none of their rules" in decision.reason


def test_deny_is_evaluated_before_allow() -> None:
    decision = evaluate(policies(ALLOW_SLEEP, DENY_APPS), http())
    assert (decision.allowed, decision.policy) == (False, "AuthorizationPolicy istio-system/deny-apps")


def test_audit_decides_nothing() -> None:
    audit = policy("audit-all", "  action: AUDIT\n  rules: [{}]")
    assert evaluate(policies(audit), http()).allowed


@pytest.mark.parametrize(
    ("rule", "request_", "allowed"),
    [
        ("{from: [{source: {principals: ['cluster.local/ns/apps/*']}}]}", http(), True),
        ("{from: [{source: {principals: ['*']}}]}", http(principal=None), False),  # needs an identity
        ("{from: [{source: {notPrincipals: [" + SLEEP + "]}}]}", http(), False),
        ("{from: [{source: {namespaces: [apps]}}]}", http(principal=None), False),
        ("{to: [{operation: {hosts: [api.example.com], ports: ['8080']}}]}", http(), True),
        (
            "{to: [{operation: {hosts: [api.example.com], ports: ['80']}}]}",
            http(),
            False,
        ),  # the pod port counts
        ("{to: [{operation: {paths: [/v1], methods: [GET]}}]}", http(), True),  # the query is not the path
        ("{to: [{operation: {notHosts: ['*.example.com']}}]}", http(), False),
        ("{when: [{key: source.namespace, values: [apps]}]}", http(), True),
        ("{when: [{key: connection.sni, values: [api.example.com]}]}", http(), False),  # no SNI on this call
        ("{}", http(principal=None), True),
    ],
)
def test_allow_rule_fields(rule: str, request_: Request, allowed: bool) -> None:
    decision = evaluate(policies(policy("p", f"  rules: [{rule}]")), request_)
    assert decision.allowed is allowed


def test_tcp_allow_rule_with_http_fields_never_matches() -> None:
    tcp = Request(principal=SLEEP, host="api.example.com", port=8443, http=False, sni="api.example.com")
    allow = policy("allow-hosts", "  rules: [{to: [{operation: {hosts: [api.example.com]}}]}]")
    assert not evaluate(policies(allow), tcp).allowed


def test_tcp_deny_rule_drops_http_fields_and_denies_more() -> None:
    tcp = Request(principal=None, host="api.example.com", port=8443, http=False, sni="api.example.com")
    deny = policy(
        "deny-other", "  action: DENY\n  rules: [{to: [{operation: {hosts: [other.example.com]}}]}]"
    )
    assert not evaluate(policies(deny), tcp).allowed
    assert evaluate(policies(deny), http(host="api.example.com")).allowed  # on HTTP the host counts


def test_custom_is_reported_as_not_evaluated() -> None:
    custom = policy("ext", "  action: CUSTOM\n  provider: {name: opa}\n  rules: [{}]")
    decision = evaluate(policies(custom), http())
    assert decision.allowed and any("CUSTOM" in u for u in decision.uncertain)


def test_selection() -> None:
    docs = (
        policy("root-wide", "  rules: [{}]"),  # root namespace, no selector: the whole mesh
        policy("gw-ns", "  rules: [{}]"),  # (also istio-system)
        policy("other-selector", "  selector: {matchLabels: {app: other}}\n  rules: [{}]"),
        policy("apps-ns", "  rules: [{}]", namespace="apps"),  # another namespace: not the gateway's
        policy("waypoint", "  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: w}]"),
    )
    snap = Snapshot.build(policies(*docs))
    found = policies_for(snap, "istio-system", {"istio": "egressgateway"})
    assert [p.name for p in found] == ["gw-ns", "root-wide"]


# ---- through the gateway hop ---------------------------------------------------------------------


def hop(setup: str, *docs: str, account: str | None = "sleep") -> GatewayHop:
    text = (DATA / "common.yaml").read_text() + "\n---\n" + (DATA / setup).read_text() + "\n" + "".join(docs)
    loaded = load_text(text)
    snap = Snapshot.build(loaded.objects, loaded.mesh)
    source = Source(
        namespace="apps", labels={"app": "sleep"}, mode_override="REGISTRY_ONLY", service_account=account
    )
    call = Call(host="api.example.com", port=80, protocol="http")
    found = with_gateway(snap, source, call, predict(snap, source, call)).gateway
    assert found is not None
    return found


GW_ALLOW = policy(
    "egress-allow-sleep",
    "  selector: {matchLabels: {istio: egressgateway}}\n  action: ALLOW\n"
    "  rules: [{from: [{source: {principals: [" + SLEEP + "]}}]}]",
)


def test_mtls_hop_allows_the_named_service_account() -> None:
    found = hop("tls-origination.yaml", GW_ALLOW)
    assert (found.verdict, found.principal) == ("allowed", SLEEP)
    assert found.policy == "AuthorizationPolicy istio-system/egress-allow-sleep"


def test_mtls_hop_denies_another_service_account() -> None:
    found = hop("tls-origination.yaml", GW_ALLOW, account="reviews")
    assert (found.reason, found.signature, found.origin) == ("denied", "ENVOY_403_RBAC", "via-route")
    assert found.policy == "AuthorizationPolicy istio-system/egress-allow-sleep"
    assert "service account reviews" in found.message and "cluster.local/ns/apps/sa/reviews" in found.message


def test_deny_namespaces_at_the_gateway() -> None:
    deny = policy(
        "egress-deny-apps",
        "  selector: {matchLabels: {istio: egressgateway}}\n  action: DENY\n"
        "  rules: [{from: [{source: {namespaces: [apps]}}]}]",
    )
    found = hop("tls-origination.yaml", GW_ALLOW, deny)
    assert (found.reason, found.policy) == ("denied", "AuthorizationPolicy istio-system/egress-deny-apps")


def test_plaintext_hop_has_no_identity_so_a_principal_rule_denies() -> None:
    found = hop("http.yaml", GW_ALLOW)
    assert (found.reason, found.principal) == ("denied", None)
    assert "without a mesh identity" in found.message
    assert any("does not know the caller's identity" in n for n in found.notes)


def test_service_account_from_a_loaded_pod() -> None:
    pod = "---\napiVersion: v1\nkind: Pod\nmetadata: {name: sleep-1, namespace: apps, labels: {app: sleep}}\n"
    pod += "spec: {serviceAccountName: sleep, containers: [{name: app, image: curl}]}\n"
    found = hop("tls-origination.yaml", GW_ALLOW, pod, account=None)
    assert found.verdict == "allowed"
    assert any("Pod apps/sleep-1" in n for n in found.notes)
    assumed = hop("tls-origination.yaml", GW_ALLOW, account=None)  # no pod: the default account
    assert assumed.reason == "denied" and "service account default" in assumed.message


def test_no_filter_chain_comes_before_the_rbac_filter() -> None:
    """On a TLS passthrough server the RBAC filter sits in the filter chain: without a chain for the
    SNI the connection closes before any policy is evaluated."""
    deny_all = policy(
        "deny-all", "  selector: {matchLabels: {istio: egressgateway}}\n  action: DENY\n  rules: [{}]"
    )
    text = (DATA / "common.yaml").read_text() + "\n---\n" + (DATA / "https-passthrough.yaml").read_text()
    text = text.replace(
        "port: 443, sniHosts: [api.example.com]}]\n    route: [{destination: {host: api.example.com",
        "port: 443, sniHosts: [other.example.com]}]\n    route: [{destination: {host: api.example.com",
    )
    loaded = load_text(text + "\n" + deny_all)
    snap = Snapshot.build(loaded.objects, loaded.mesh)
    source = Source(namespace="apps", mode_override="REGISTRY_ONLY", service_account="sleep")
    call = Call(host="api.example.com", port=443, protocol="https")
    found = with_gateway(snap, source, call, predict(snap, source, call)).gateway
    assert found is not None and found.reason == "no-filter-chain"
    with_chain = load_text(
        (DATA / "common.yaml").read_text()
        + "\n---\n"
        + (DATA / "https-passthrough.yaml").read_text()
        + "\n"
        + deny_all
    )
    snap = Snapshot.build(with_chain.objects, with_chain.mesh)
    found = with_gateway(snap, source, call, predict(snap, source, call)).gateway
    assert found is not None and (found.reason, found.signature) == ("denied", "RESET_BEFORE_RESPONSE")
