"""The egress-gateway part of the model: Gateway servers and AuthorizationPolicies as loaded."""

from __future__ import annotations

import pytest

from diag.model.loader import load_text
from diag.model.resources import AuthorizationPolicy, Gateway
from diag.model.snapshot import Snapshot

GATEWAY = """
apiVersion: networking.istio.io/{version}
kind: Gateway
metadata: {{name: egress, namespace: istio-system}}
spec:
  selector: {{istio: egressgateway}}
  servers:
  - port: {{number: 80, name: http, protocol: HTTP}}
    hosts: [apps/api.example.com]
  - port: {{number: 443, name: tls, protocol: TLS}}
    hosts: [api.example.com]
    tls: {{}}
  - port: {{number: 8443, name: mtls, protocol: HTTPS}}
    name: origination
    hosts: ["*"]
    tls: {{mode: istio_mutual}}
"""

POLICY = """
apiVersion: security.istio.io/{version}
kind: AuthorizationPolicy
metadata: {{name: egress-allow, namespace: istio-system}}
spec:
  selector: {{matchLabels: {{istio: egressgateway}}}}
  action: {action}
  rules:
  - from:
    - source: {{principals: [cluster.local/ns/apps/sa/sleep], notNamespaces: [dev], ipBlocks: [10.0.0.0/8]}}
    to:
    - operation: {{hosts: [api.example.com], ports: ["8080"], methods: [GET], notPaths: [/admin]}}
    when:
    - {{key: destination.port, values: ["8080"]}}
"""


@pytest.mark.parametrize("version", ["v1", "v1beta1", "v1alpha3"])
def test_gateway_servers(version: str) -> None:
    loaded = load_text(GATEWAY.format(version=version))
    assert loaded.problems == ()
    (gw,) = loaded.objects
    assert isinstance(gw, Gateway)
    assert gw.selector == {"istio": "egressgateway"}
    http, tls, mtls = gw.servers
    assert (http.port.number, http.port.protocol, http.hosts, http.tls_mode) == (
        80, "HTTP", ("apps/api.example.com",), "",
    )  # fmt: skip
    assert tls.tls_mode == "PASSTHROUGH"  # `tls: {}`: the mode enum's zero value
    assert (mtls.tls_mode, mtls.name, mtls.port.name) == ("ISTIO_MUTUAL", "origination", "mtls")


@pytest.mark.parametrize("version", ["v1", "v1beta1"])
@pytest.mark.parametrize("action", ["ALLOW", "DENY", "audit", "CUSTOM"])
def test_authorization_policy(version: str, action: str) -> None:
    loaded = load_text(POLICY.format(version=version, action=action))
    assert loaded.problems == ()
    snap = Snapshot.build(loaded.objects)
    (policy,) = snap.authorization_policies
    assert isinstance(policy, AuthorizationPolicy)
    assert policy.ref == "AuthorizationPolicy istio-system/egress-allow"
    assert policy.action == action.upper()
    assert policy.selector == {"istio": "egressgateway"}
    (rule,) = policy.rules
    (src,) = rule.sources
    assert src.principals == ("cluster.local/ns/apps/sa/sleep",)
    assert src.not_namespaces == ("dev",)
    assert src.other == ("ipBlocks",)  # kept as "not modelled"
    (op,) = rule.operations
    assert (op.hosts, op.ports, op.methods, op.not_paths) == (
        ("api.example.com",),
        ("8080",),
        ("GET",),
        ("/admin",),
    )
    (cond,) = rule.conditions
    assert (cond.key, cond.values) == ("destination.port", ("8080",))


def test_policy_without_rules_and_with_an_empty_rule() -> None:
    text = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-nothing, namespace: istio-system}
spec: {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-all, namespace: istio-system}
spec:
  rules: [{}]
  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]
"""
    loaded = load_text(text)
    assert loaded.problems == ()
    nothing, everything = loaded.objects
    assert isinstance(nothing, AuthorizationPolicy) and isinstance(everything, AuthorizationPolicy)
    assert (nothing.action, nothing.selector, nothing.rules) == ("ALLOW", None, ())
    assert len(everything.rules) == 1 and everything.has_target_ref


def test_malformed_policy_is_a_problem_naming_the_field() -> None:
    text = POLICY.format(version="v1", action="ALLOW").replace("principals: [cluster.local/ns/apps/sa/sleep]",
                                                               "principals: {a: b}")  # fmt: skip
    loaded = load_text(text)
    assert loaded.objects == ()
    assert any("principals" in p.message for p in loaded.problems)
