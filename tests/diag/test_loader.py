"""Loader: formats, problems naming file and object, MeshConfig files, and fuzzing (never raises)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diag.errors import InputError
from diag.model.loader import load_documents, load_mesh_config, load_paths, load_text
from diag.model.resources import MeshConfig, Service, ServiceEntry, Sidecar

SE = """
apiVersion: networking.istio.io/{version}
kind: ServiceEntry
metadata: {{name: {name}, namespace: apps}}
spec:
  hosts: [{name}.example.com]
  ports: [{{number: 443, name: tls, protocol: tls}}]
  resolution: DNS
"""


@pytest.mark.parametrize("version", ["v1", "v1beta1", "v1alpha3"])
def test_all_served_versions_load(version: str) -> None:
    result = load_text(SE.format(version=version, name="a"))
    assert result.problems == ()
    (se,) = result.objects
    assert isinstance(se, ServiceEntry)
    assert se.ref == "ServiceEntry apps/a"
    assert se.ports[0].protocol == "TLS"  # protocol parsing is case-insensitive
    assert se.location == "MESH_EXTERNAL"


def test_multi_document_with_bad_document_keeps_the_rest() -> None:
    text = (
        SE.format(version="v1", name="a") + "---\nkind: [unclosed\n---\n" + SE.format(version="v1", name="b")
    )
    result = load_text(text, origin="mixed.yaml")
    assert [o.name for o in result.objects] == ["a", "b"]
    (problem,) = result.problems
    assert problem.path == "mixed.yaml" and problem.object == "document 2"
    assert problem.message.startswith("not valid YAML: ") and problem.line is not None and problem.line > 9


def test_kind_list_and_kubectl_json_output() -> None:
    items = [yaml.safe_load(SE.format(version="v1", name=n)) for n in ("a", "b")]
    listing = {"apiVersion": "v1", "kind": "List", "items": items}
    assert [o.name for o in load_text(yaml.safe_dump(listing)).objects] == ["a", "b"]
    as_json = json.dumps({"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntryList", "items": items})
    assert [o.name for o in load_text(as_json).objects] == ["a", "b"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("hosts: 5", "spec.hosts: expected a list"),
        ("hosts: [a.com]\nports: {}", "spec.ports: expected a list"),
        ("hosts: [a.com]\nports: [{name: x}]", "spec.ports[0].number: missing"),
        ("hosts: [a.com]\nports: [{number: true, name: x}]", "expected an integer"),
        ("hosts: [{a: b}]", "spec.hosts[0]: expected a string"),
        (
            "hosts: [a.com]\nendpoints: [{address: 1.2.3.4, ports: 7}]",
            "endpoints[0].ports: expected a mapping",
        ),
    ],
)
def test_malformed_fields_name_object_and_field(spec: str, message: str) -> None:
    doc = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
    doc += "metadata: {name: x, namespace: ns}\nspec:\n"
    doc += "\n".join("  " + line for line in spec.splitlines())
    result = load_text(doc, origin="f.yaml")
    assert result.objects == ()
    (problem,) = result.problems
    assert problem.object == "ServiceEntry ns/x"
    assert message in problem.message


def test_directories_files_and_missing_paths(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.yaml").write_text(SE.format(version="v1", name="a"))
    (tmp_path / "b.yml").write_text(SE.format(version="v1", name="b"))
    (tmp_path / "notes.txt").write_text("not yaml: [")
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00bad")
    (tmp_path / "latin1.yaml").write_bytes(b"kind: Caf\xe9\n")
    result = load_paths([tmp_path, tmp_path / "missing.yaml"])
    assert sorted(o.name for o in result.objects) == ["a", "b"]
    messages = {Path(p.path).name: str(p).split(str(tmp_path))[-1] for p in result.problems}
    assert messages == {
        "bin.yaml": "/bin.yaml:1:3: not a text file (a NUL byte): not YAML or JSON",
        "latin1.yaml": "/latin1.yaml:1:10: not UTF-8 text: YAML and JSON files must be UTF-8",
        "missing.yaml": "/missing.yaml: no such file or directory",
    }


def test_services_namespaces_unknown_kinds_and_istio_configmap() -> None:
    text = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop, annotations: {networking.istio.io/exportTo: ".,ops"}}
spec:
  clusterIP: 10.96.0.10
  ports:
  - {port: 80, name: web}
  - {port: 8080, name: http-alt}
  - {port: 9000, name: x, appProtocol: kubernetes.io/h2c}
  - {port: 3306, name: db}
  - {port: 53, name: dns, protocol: UDP}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio-injection: enabled}}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: r, namespace: shop}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |
    outboundTrafficPolicy: {mode: REGISTRY_ONLY}
    defaultServiceExportTo: ["."]
"""
    result = load_text(text)
    assert result.problems == ()
    svc = next(o for o in result.objects if isinstance(o, Service))
    assert [p.protocol for p in svc.ports] == ["", "HTTP", "HTTP2", "TCP", "UDP"]
    assert svc.export_to == (".", "ops")
    assert result.skipped == {"ReplicaSet": 1}
    assert result.mesh is not None
    assert result.mesh.mode == "REGISTRY_ONLY" and result.mesh.ref == "ConfigMap istio-system/istio"
    assert result.mesh.default_service_export_to == (".",)


@pytest.mark.parametrize(
    ("text", "mode", "capture"),
    [
        ("", "ALLOW_ANY", None),
        ("outboundTrafficPolicy: {}", "REGISTRY_ONLY", None),  # block present, mode = proto zero value
        ("outboundTrafficPolicy: {mode: ALLOW_ANY}", "ALLOW_ANY", None),
        ("defaultConfig: {proxyMetadata: {ISTIO_META_DNS_CAPTURE: 'true'}}", "ALLOW_ANY", True),
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio-canary, namespace: istio-system}\n"
            "data:\n  mesh: 'outboundTrafficPolicy: {mode: REGISTRY_ONLY}'",
            "REGISTRY_ONLY",
            None,
        ),
    ],
)
def test_load_mesh_config(tmp_path: Path, text: str, mode: str, capture: bool | None) -> None:
    path = tmp_path / "mesh.yaml"
    path.write_text(text)
    mesh = load_mesh_config(path)
    assert isinstance(mesh, MeshConfig)
    assert mesh.mode == mode
    assert mesh.default_config.dns_capture is capture


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("outboundTrafficPolicy: [", "not valid YAML"),
        ("- a\n- b", "must be a mapping"),
        ("rootNamespace: 5", "rootNamespace"),
        ("apiVersion: v1\nkind: ConfigMap\ndata: {other: x}", "no data.mesh"),
        ("defaultServiceExportTo: 3", "defaultServiceExportTo"),
    ],
)
def test_load_mesh_config_errors_are_input_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "mesh.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        load_mesh_config(path)
    with pytest.raises(InputError, match="cannot read"):
        load_mesh_config(tmp_path / "absent.yaml")


def test_sidecar_and_pod_proxy_config() -> None:
    text = """
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: s, namespace: a}
spec:
  outboundTrafficPolicy: {egressProxy: {host: proxy.corp, port: {number: 3128}}}
  egress: [{hosts: ["./*"]}]
---
apiVersion: v1
kind: Pod
metadata:
  name: p
  namespace: a
  annotations: {proxy.istio.io/config: '{"proxyMetadata": {"ISTIO_META_DNS_CAPTURE": "true"}}'}
spec: {containers: [{name: app}, {name: istio-proxy}]}
"""
    result = load_text(text)
    sidecar, pod = result.objects
    assert isinstance(sidecar, Sidecar) and sidecar.outbound_traffic_policy is not None
    assert sidecar.outbound_traffic_policy.mode == "REGISTRY_ONLY"  # mode unset in a present block
    assert sidecar.outbound_traffic_policy.egress_proxy is not None
    assert pod.proxy_config is not None and pod.proxy_config.dns_capture is True  # type: ignore[attr-defined]


# ---- fuzzing: any input gives objects and problems, never an exception ------------------------

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
_fields = st.sampled_from(
    [
        "hosts",
        "ports",
        "addresses",
        "resolution",
        "location",
        "endpoints",
        "exportTo",
        "egress",
        "outboundTrafficPolicy",
        "workloadSelector",
        "host",
        "trafficPolicy",
        "subsets",
        "http",
        "tls",
        "tcp",
        "gateways",
        "servers",
        "clusterIP",
        "type",
        "externalName",
        "selector",
    ]
)
_kinds = st.sampled_from(
    [
        "ServiceEntry",
        "Sidecar",
        "DestinationRule",
        "VirtualService",
        "Gateway",
        "Service",
        "Namespace",
        "Pod",
        "EnvoyFilter",
        "WasmPlugin",
        "ProxyConfig",
        "ConfigMap",
        "List",
        "Deployment",
    ]
)


@st.composite
def _objects(draw: st.DrawFn) -> object:
    kind = draw(_kinds)
    api = "v1" if kind in ("Service", "Namespace", "Pod", "ConfigMap", "List") else "networking.istio.io/v1"
    doc: dict[str, object] = {
        "apiVersion": draw(st.one_of(st.just(api), _values)),
        "kind": kind,
        "metadata": draw(st.one_of(st.fixed_dictionaries({"name": st.text(max_size=8)}), _values)),
        "spec": draw(st.one_of(st.dictionaries(_fields, _values, max_size=6), _values)),
    }
    if draw(st.booleans()):
        doc["status"] = draw(_values)
    if kind in ("ConfigMap", "List"):
        doc["data"] = draw(st.one_of(st.fixed_dictionaries({"mesh": st.text(max_size=40)}), _values))
        doc["items"] = draw(st.one_of(st.lists(_values, max_size=3), _values))
    return doc


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_objects(), max_size=4))
def test_fuzz_random_objects_never_raise(docs: list[object]) -> None:
    result = load_documents(docs, origin="fuzz")
    assert len(result.objects) + len(result.problems) <= 4 * 5 + len(docs) * 10
    text = yaml.safe_dump_all(docs)
    again = load_text(text, origin="fuzz.yaml")
    assert all(p.path == "fuzz.yaml" for p in again.problems)


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_random_bytes_never_raise(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "input.yaml"
    path.write_bytes(data)
    result = load_paths([path])
    assert all(p.path == str(path) for p in result.problems)


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet="-:{}[]&*!|>'\"%@` \n\tabc123#.,?", max_size=200))
def test_fuzz_yamlish_text_never_raises(text: str) -> None:
    result = load_text(text, origin="t.yaml")
    assert all(p.path == "t.yaml" for p in result.problems)
