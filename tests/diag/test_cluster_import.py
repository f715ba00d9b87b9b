"""`diag.cluster` loads only the parts of the ``kubernetes`` client it uses (bare packages, see the
module docstring), falls back to the whole client when that layout is not there, and either way
talks to an API server over HTTPS with the real client. Each case runs in a fresh interpreter:
what is in ``sys.modules`` is the thing under test."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.apiserver import ApiServer
from lab.certs import LabCA

ROOT = Path(__file__).resolve().parents[2]
# Modules only the packages' __init__ import: the bare path must not load any of them.
INIT_ONLY = [
    "kubernetes.watch",
    "kubernetes.dynamic",
    "kubernetes.stream",
    "kubernetes.informer",
    "kubernetes.leaderelection",
    "kubernetes.utils.create_from_yaml",
]

CONNECT_AND_USE = """
import json, sys
from diag import cluster
{setup}
c = cluster.Cluster.connect(sys.argv[1], namespace="shop")
loaded = cluster._kubernetes()
body = {{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {{"name": "probe-cm"}}, "data": {{"k": "v"}}}}
c.request("POST", cluster.resource_path("", "v1", "configmaps", "shop"), body=body)
back = c.get(cluster.resource_path("", "v1", "configmaps", "shop", "probe-cm"))
try:
    c.get(cluster.resource_path("", "v1", "configmaps", "shop", "absent"))
    missing = "no error"
except cluster.NotFound as exc:
    missing = type(exc).__name__
init_only = [m for m in {init_only!r} if m in sys.modules]
ran_init = "__version__" in vars(sys.modules["kubernetes"])
c.request("DELETE", cluster.resource_path("", "v1", "configmaps", "shop", "probe-cm"))
c.close()
{after}
print(json.dumps({{"bare": loaded.bare, "data": back.get("data"), "namespace": c.namespace,
                  "missing": missing, "init_only": init_only, "ran_init": ran_init, **extra}}))
"""


@pytest.fixture(scope="module")
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("apiserver")
    with ApiServer(workdir, LabCA(workdir)) as server:
        server.store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
        yield str(server.kubeconfig())


def _run(kubeconfig: str, setup: str = "", after: str = "extra = {}") -> dict[str, Any]:
    code = CONNECT_AND_USE.format(setup=setup, after=textwrap.dedent(after), init_only=INIT_ONLY)
    done = subprocess.run(
        [sys.executable, "-c", code, kubeconfig], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    return out


def test_bare_path_loads_only_what_connect_uses_and_talks_https(kubeconfig: str) -> None:
    out = _run(kubeconfig)
    assert out["bare"] is True
    assert out["init_only"] == []
    assert out["ran_init"] is False
    assert out["data"] == {"k": "v"}
    assert out["namespace"] == "shop"
    assert out["missing"] == "NotFound"


def test_whole_client_is_the_fallback_when_the_layout_differs(kubeconfig: str) -> None:
    """A module the bare path expects is missing (another client version): the usual import runs,
    nothing half-loaded stays behind, and the run behaves the same."""
    setup = 'cluster._MODULES = (*cluster._MODULES, "kubernetes.client.no_such_module")'
    out = _run(kubeconfig, setup=setup)
    assert out["bare"] is False
    assert out["ran_init"] is True
    assert "kubernetes.watch" in out["init_only"]  # the package's own __init__ imported it
    assert out["data"] == {"k": "v"}
    assert out["missing"] == "NotFound"


def test_the_whole_client_still_works_after_the_bare_path(kubeconfig: str) -> None:
    """Code that imports the client the usual way later in the same process gets the packages as
    their ``__init__`` builds them: typed APIs, model deserialization, watch, the version."""
    after = """
    from importlib.metadata import version
    import kubernetes
    from kubernetes import client, config, watch
    cfg = client.Configuration()
    config.load_kube_config(config_file=sys.argv[1], client_configuration=cfg)
    names = [n.metadata.name for n in client.CoreV1Api(client.ApiClient(cfg)).list_namespace().items]
    extra = {"names": names, "version_ok": kubernetes.__version__ == version("kubernetes"),
             "watch": watch.Watch.__name__, "utils": callable(kubernetes.utils.create_from_dict)}
    """
    out = _run(kubeconfig, after=after)
    assert out["bare"] is True
    assert "shop" in out["names"]
    assert out["version_ok"] is True
    assert out["watch"] == "Watch"
    assert out["utils"] is True


def test_a_missing_name_on_a_bare_package_is_still_an_attribute_error(kubeconfig: str) -> None:
    after = """
    import kubernetes
    try:
        kubernetes.no_such_name
        extra = {"error": None}
    except AttributeError as exc:
        extra = {"error": str(exc)}
    """
    out = _run(kubeconfig, after=after)
    assert out["bare"] is True
    assert "no_such_name" in out["error"]
