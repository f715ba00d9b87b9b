"""Every generated gateway config loads in Envoy 1.40 (``envoy --mode validate``, no root needed),
with the lab's access logs added as the runtime adds them."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lab.bootstrap import build_bootstrap
from lab.istiod import GatewayView, generate_gateway
from tests.lab import gateway_cases as cases
from tests.lab.test_istiod_envoy import envoy_or_skip

CASES: dict[str, Callable[[], list[dict[str, Any]]]] = dict(cases.ALL)


def validate(objects: list[dict[str, Any]], tmp_path: Path) -> Any:
    envoy = envoy_or_skip()
    import trustme

    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "root.pem"))
    leaf = ca.issue_cert("istio-egressgateway.istio-system.svc")
    leaf.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "chain.pem"))
    gw = GatewayView(ca_file=str(tmp_path / "root.pem"), mesh_ca_file=str(tmp_path / "root.pem"),
                     cert_chain_file=str(tmp_path / "chain.pem"), private_key_file=str(tmp_path / "key.pem"),
                     connect_timeout_s=0.25)
    cfg = generate_gateway(objects, gw)
    bootstrap = build_bootstrap(cfg.listeners, cfg.clusters, admin_port=0,
                                access_log_path=str(tmp_path / "access.log"),
                                node_id="router~127.0.0.1~istio-egressgateway.istio-system~istio-system.svc.cluster.local")
    path = tmp_path / "envoy.json"
    path.write_text(json.dumps(bootstrap))
    done = subprocess.run([envoy, "--mode", "validate", "-c", str(path), "-l", "error"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    return cfg


@pytest.mark.parametrize("name", list(CASES))
def test_gateway_config_loads_in_envoy(name: str, tmp_path: Path) -> None:
    cfg = validate(CASES[name](), tmp_path)
    assert cfg.listeners, cfg.notes
    assert any(c["name"] == "BlackHoleCluster" for c in cfg.clusters)
