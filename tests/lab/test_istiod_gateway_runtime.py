"""The generated gateway config run in a real Envoy (in a private network namespace): routes reach
the upstream, a host the Gateway does not serve gets 404, and AuthorizationPolicies answer 403
``RBAC: access denied`` as istio's gateway does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lab.bootstrap import build_bootstrap
from lab.istiod import GatewayView, generate_gateway
from lab.istiod.samples import authorization_policy, gateway, gateway_server, service_entry, virtual_service
from tests.lab import gateway_cases as cases
from tests.lab.test_istiod_envoy import envoy_or_skip

pytestmark = pytest.mark.lab
APP = "app.example"
SEL = cases.GW_SELECTOR
DENIED = [403, "RBAC: access denied"]


def app_objects(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    """Gateway HTTP server on 80 (no Service: the listener is 0.0.0.0_80) routing app.example to a
    STATIC ServiceEntry endpoint on 127.0.0.1:9080."""
    return [
        *cases.base()[:2],
        service_entry("app", [APP], [(9080, "HTTP")], resolution="STATIC", namespace="istio-system",
                      endpoints=[{"address": "127.0.0.1"}]),
        gateway("istio-egressgateway", [gateway_server(80, "HTTP", [APP])]),
        virtual_service("app", [APP], [{"route": [{"destination": {"host": APP, "port": {"number": 9080}}}]}],
                        gateways=["istio-egressgateway"], namespace="istio-system"),
        *extra,
    ]


SCENARIOS: list[tuple[str, list[dict[str, Any]], list[tuple[str, str]], list[list[Any]]]] = [
    ("no policy", app_objects(), [("GET", APP), ("GET", "other.example")],
     [[200, f"upstream GET {APP}"], [404, ""]]),
    ("deny all", app_objects(authorization_policy("deny-all", selector=SEL, action="DENY", rules=[{}])),
     [("GET", APP)], [DENIED]),
    ("allow principals over plaintext", app_objects(cases.allow_sleep()), [("GET", APP)], [DENIED]),
    ("allow GET on the listener port", app_objects(authorization_policy(
        "allow-get", selector=SEL, rules=[{"to": [{"operation": {"methods": ["GET"], "ports": ["80"]}}]}])),
     [("GET", APP), ("POST", APP)], [[200, f"upstream GET {APP}"], DENIED]),
    ("policy for another workload", app_objects(authorization_policy(
        "other", selector={"app": "httpbin"}, action="DENY", rules=[{}])),
     [("GET", APP)], [[200, f"upstream GET {APP}"]]),
]


def test_gateway_config_serves_and_enforces_authorization(tmp_path: Path) -> None:
    envoy = envoy_or_skip()
    specs = []
    for i, (_, objects, requests, _) in enumerate(SCENARIOS):
        cfg = generate_gateway(objects, GatewayView(connect_timeout_s=1.0))
        bootstrap = build_bootstrap(cfg.listeners, cfg.clusters, admin_port=0,
                                    access_log_path=str(tmp_path / "access.log"))
        path = tmp_path / f"envoy-{i}.json"
        path.write_text(json.dumps(bootstrap))
        specs.append({"bootstrap": str(path), "port": 80, "requests": requests})
    (tmp_path / "cases.json").write_text(json.dumps(specs))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    command = ["unshare", "--net", sys.executable, "-m", "tests.lab.gateway_probe", envoy,
               str(tmp_path / "cases.json")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout)
    for (name, _, _, expected), got in zip(SCENARIOS, results, strict=True):
        assert got == expected, name
    details = [json.loads(line)["response_code_details"]
               for line in (tmp_path / "access.log").read_text().splitlines()]
    # a DENY match names the policy (pilot's policy name), an ALLOW miss names none
    assert "rbac_access_denied_matched_policy[ns[istio-system]-policy[deny-all]-rule[0]]" in details
    assert details.count("rbac_access_denied_matched_policy[none]") == 2
    assert "route_not_found" in details
