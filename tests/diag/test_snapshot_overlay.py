"""`overlay` gives what `Snapshot.build` of the changed objects gives, on random meshes and changes.

Checking a fix (`diag.rules.fixcheck`) replaces a few objects of a large snapshot; the overlay
keeps the untouched services and patches their index entries. Each case here builds the same
objects in full and compares every field of the two snapshots (services by what they are: their
object, host and addresses; lists and index entries in order), then the predictions of a few calls.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from diag.model.loader import load_documents
from diag.model.resources import Resource
from diag.model.snapshot import MeshService, Snapshot
from diag.predict.scope import _export_buckets, _visible_in_order
from diag.predict.sidecar import Call, Source, predict
from diag.rules.fixcheck import _objects
from diag.rules.overlay import overlay

_HOSTS = ["a.example.com", "*.example.com", "b.example.com", "*.b.example.com", "db.internal"]
_PORTS = [
    [{"number": 443, "name": "tls", "protocol": "TLS"}],
    [
        {"number": 80, "name": "http", "protocol": "HTTP"},
        {"number": 443, "name": "https", "protocol": "HTTPS"},
    ],
    [{"number": 5432, "name": "tcp", "protocol": "TCP"}],
    [{"number": 8080, "name": "web"}],
]
_ADDRESSES = [[], [], ["10.0.0.1"], ["10.0.0.2/32"], ["100.64.0.0/24"], ["10.0.0.1", "10.0.0.9"]]


def _entry(name: str, ns: str, hosts: list[str], ports: Any, addresses: list[str], t: int) -> dict[str, Any]:
    resolution = "NONE" if any(h.startswith("*") for h in hosts) or "/" in "".join(addresses) else "DNS"
    spec: dict[str, Any] = {"hosts": hosts, "ports": ports, "resolution": resolution}
    if t % 3:  # some exported to their namespace only, or to another one
        spec["exportTo"] = [".", "*"][t % 2 :] if t % 3 == 1 else ["third"]
    if addresses:
        spec["addresses"] = addresses
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": f"2025-01-0{t + 1}T00:00:00Z"},
        "spec": spec,
    }


_entries = st.builds(
    _entry,
    st.sampled_from(["se0", "se1", "se2", "se3", "se4"]),
    st.sampled_from(["default", "other"]),
    st.lists(st.sampled_from(_HOSTS), min_size=1, max_size=2, unique=True),
    st.sampled_from(_PORTS),
    st.sampled_from(_ADDRESSES),
    st.integers(0, 3),
)


def _service(i: int, ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"svc{i}", "namespace": ns},
        "spec": {"clusterIP": f"10.96.0.{i + 1}", "ports": [{"port": 443, "name": "https"}]},
    }


def _sidecar(ns: str, hosts: list[str], registry_only: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {"egress": [{"hosts": hosts}]}
    if registry_only:
        spec["outboundTrafficPolicy"] = {"mode": "REGISTRY_ONLY"}
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Sidecar",
        "metadata": {"name": "default", "namespace": ns},
        "spec": spec,
    }


_sidecars = st.builds(
    _sidecar,
    st.sampled_from(["default", "other"]),
    st.sampled_from([["./*"], ["*/*"], ["other/*", "./a.example.com"], ["istio-system/*"]]),
    st.booleans(),
)


def _namespace(name: str, label: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {"team": label}}}


_namespaces = st.builds(_namespace, st.sampled_from(["default", "other"]), st.sampled_from(["x", "y"]))
_CALLS = (
    ("a.example.com", 443, "tls"),
    ("x.b.example.com", 80, "http"),
    ("db.internal", 5432, "tcp"),
    ("svc0.default.svc.cluster.local", 443, "https"),
)


def _same(a: Any, b: Any) -> bool:
    """Equal, with services compared by object, host and addresses (a rebuilt service is a new one)."""
    if isinstance(a, MeshService) and isinstance(b, MeshService):
        return all(
            getattr(a, f) == getattr(b, f) for f in ("resource", "host", "addresses", "auto_addresses")
        )
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def _build_after(snapshot: Snapshot, changed: list[Resource]) -> Snapshot:
    """What checking a fix did before the overlay: the snapshot's objects with the fix's in place."""
    refs = {o.ref for o in changed}
    kept = [o for o in _objects(snapshot) if o.ref not in refs]
    return Snapshot.build(kept + changed, snapshot.mesh, istio_version=snapshot.istio_version, validate=False)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(_entries, max_size=8),
    st.lists(st.integers(0, 3), max_size=3, unique=True),
    st.lists(_sidecars, max_size=2),
    st.lists(st.one_of(_entries, _sidecars, _namespaces)),
)
def test_overlay_equals_a_full_build(
    entries: list[dict[str, Any]], services: list[int], sidecars: list[dict[str, Any]],
    changes: list[dict[str, Any]],
) -> None:  # fmt: skip
    docs = [*entries, *(_service(i, "default") for i in services), *sidecars, _namespace("default", "x")]
    snapshot = Snapshot.build(load_documents(docs).objects)
    changed = list(load_documents(changes[:3]).objects)
    changed = list({o.ref: o for o in changed}.values())  # one object per ref, as a fix writes
    _export_buckets(snapshot)  # the parent's, as after the report's own predictions
    full = _build_after(snapshot, changed)
    patched = overlay(snapshot, changed, lambda: _objects(snapshot))
    for ns in ("default", "other", "third"):  # the export buckets carried over, or built anew
        assert _same(tuple(_visible_in_order(patched, ns)), tuple(_visible_in_order(full, ns)))
    for f in dataclasses.fields(Snapshot):
        if f.name != "cache":
            assert _same(getattr(patched, f.name), getattr(full, f.name)), f.name
    # its own caches: empty but for the export buckets (carried over, or built by the check above)
    assert set(patched.cache) == {"export-buckets"} and patched.cache is not snapshot.cache
    for ns in ("default", "other"):
        for host, port, protocol in _CALLS:
            call = Call(host=host, port=port, protocol=protocol)
            now = predict(patched, Source(namespace=ns), call)
            then = predict(full, Source(namespace=ns), call)
            assert _same(now.service, then.service)
            assert dataclasses.replace(now, service=None) == dataclasses.replace(then, service=None)


def test_a_changed_kubernetes_service_is_built_in_full() -> None:
    """A Service's conversion reads other objects: the overlay falls back to a full build."""
    entry = _entry("se0", "default", ["a.example.com"], _PORTS[0], [], 0)
    snapshot = Snapshot.build(load_documents([_service(0, "default"), entry]).objects)
    moved = {"clusterIP": "10.96.9.9", "ports": [{"port": 80, "name": "http"}]}
    changed = list(load_documents([{**_service(0, "default"), "spec": moved}]).objects)
    calls: list[int] = []

    def everything() -> list[Resource]:
        calls.append(1)
        return _objects(snapshot)

    patched = overlay(snapshot, changed, everything)
    assert calls == [1]
    assert [s.addresses for s in patched.mesh_services if s.kind == "Service"] == [("10.96.9.9",)]
    assert 80 in patched.by_port and all(s.kind == "ServiceEntry" for s in patched.by_port.get(443, ()))
