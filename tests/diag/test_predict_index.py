"""The prediction's lookup indexes give what a full scan gives, on random meshes.

`ChainIndex` answers a server name from its own suffixes (`wildcard_hits`) and keeps the listener's
inspectors as flags, so a call does not scan every chain of the listener (docs/benchmarks.md,
explain_scale). Each test here puts the index beside a scan of every chain — the matching rule
written out once more, as Envoy's `FilterChainManagerImpl` applies it (exact server name, else the
longest wildcard, else chains without names) — and asserts the same answer, chain for chain.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from diag.model.loader import load_documents
from diag.model.resources import MeshConfig
from diag.model.snapshot import MeshService, Snapshot
from diag.predict.listeners import ChainIndex, ChainModel, ListenerModel
from diag.predict.scope import _order_key, _visible_in_order
from diag.predict.sidecar import Call, Source, predict
from diag.predict.visibility import in_discovery_scope, service_exported

_LABELS = ("a", "b", "ab", "example", "com", "B")


def _name(labels: list[str], wild: str) -> str:
    body = ".".join(labels)
    return {"": body, "dot": f"*.{body}", "bare": f"*{body}", "star": "*"}[wild]


_names = st.builds(
    _name,
    st.lists(st.sampled_from(_LABELS), min_size=1, max_size=4),
    st.sampled_from(["", "dot", "dot", "bare", "star"]),
)
_chains = st.lists(
    st.builds(
        lambda sni, n: ChainModel(sni=tuple(sni), cluster=f"outbound|443||c{n}"),
        st.lists(_names, max_size=3),
        st.integers(0, 10_000),
    ),
    max_size=12,
)


def _scan_wildcards(chains: tuple[ChainModel, ...], sni: str) -> list[ChainModel]:
    """Every wildcard chain scored: the best `*` name covering the SNI, longest names kept."""
    scored = []
    for chain in chains:
        best = None
        for name in chain.sni:
            if name == "*" or not name.startswith("*"):
                if name == sni:
                    best = 10_000
                    break
                continue
            suffix = name[1:].lower()
            if sni.lower().endswith(suffix) and sni.lower() != name[2:].lower():
                best = max(best or 0, len(name))
        if best is not None:
            scored.append((chain, best))
    if not scored:
        return []
    top = max(s for _, s in scored)
    return [c for c, s in scored if s == top]


@settings(max_examples=300, deadline=None)
@given(_chains, _names.filter(lambda n: not n.startswith("*")))
def test_wildcard_index_equals_a_scan(chains: list[ChainModel], sni: str) -> None:
    index = ChainIndex.build(chains, None)
    assume(sni not in index.exact_sni)  # an exact name is looked up first (`_sni_pool`)
    assert index.wildcard_hits(sni) == _scan_wildcards(index.wildcard_sni, sni)


@settings(max_examples=100, deadline=None)
@given(_chains)
def test_inspector_flags_equal_a_scan(chains: list[ChainModel]) -> None:
    listener = ListenerModel(bind="0.0.0.0", port=443, protocol="TLS")
    for chain in chains:
        listener.add_chain(chain, dedupe=True)
    assert listener.has_tls_inspector == any(c.sni for c in listener.chains)
    assert listener.has_http_inspector == any(c.alpn for c in listener.chains)


_HOSTS = ["a.example.com", "*.example.com", "*.b.example.com", "x.b.example.com", "*ample.com", "*.com"]
_entry = st.fixed_dictionaries(
    {
        "hosts": st.lists(st.sampled_from(_HOSTS), min_size=1, max_size=2, unique=True),
        "ports": st.sampled_from(
            [
                [{"number": 443, "name": "tls", "protocol": "TLS"}],
                [{"number": 443, "name": "https", "protocol": "HTTPS"}],
                [{"number": 443, "name": "tcp", "protocol": "TCP"}],
                [{"number": 443, "name": "web"}],
                [{"number": 80, "name": "http", "protocol": "HTTP"}],
            ]
        ),
        "resolution": st.sampled_from(["NONE", "DNS", "DYNAMIC_DNS"]),
        "exportTo": st.sampled_from([[], ["."], ["*"], ["other"]]),
    }
)


@st.composite
def _meshes(draw: st.DrawFn) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for i in range(draw(st.integers(1, 10))):
        spec: dict[str, Any] = draw(_entry)
        hosts: list[str] = spec["hosts"]
        if spec["resolution"] == "DYNAMIC_DNS" and not all(h.startswith("*") for h in hosts):
            spec = {**spec, "resolution": "NONE"}
        docs.append(
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "ServiceEntry",
                "metadata": {"name": f"se{i}", "namespace": draw(st.sampled_from(["default", "other"]))},
                "spec": spec,
            }
        )
    return docs


_SNIS = ["a.example.com", "c.example.com", "x.b.example.com", "y.b.example.com", "example.com", "zample.com"]


def _scanning_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replace the suffix lookup with the scan above (the behaviour before the index)."""
    def scan(self: ChainIndex, sni: str) -> list[ChainModel]:
        return _scan_wildcards(self.wildcard_sni, sni)

    monkeypatch.setattr(ChainIndex, "wildcard_hits", scan)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_meshes(), st.sampled_from(_SNIS), st.sampled_from(["tls", "https"]), st.booleans())
def test_predictions_equal_a_scan(
    monkeypatch: pytest.MonkeyPatch, docs: list[dict[str, Any]], sni: str, protocol: str, capture: bool
) -> None:
    snapshot = Snapshot.build(load_documents(docs).objects)
    source = Source(namespace="default", dns_capture=capture)
    call = Call(host=sni, port=443, protocol=protocol)
    indexed = predict(snapshot, source, call)
    with monkeypatch.context() as patched:
        _scanning_index(patched)
        scanned = predict(snapshot, source, call)
    assert indexed == scanned


_exports = st.lists(st.sampled_from([".", "*", "~", "a", "b", "c"]), max_size=3)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), _exports, st.integers(0, 3)), max_size=12),
    st.sampled_from(["a", "b", "c", "d"]),
    st.sampled_from([[], [{"matchLabels": {"kubernetes.io/metadata.name": "a"}}]]),
    _exports,
)
def test_visibility_buckets_equal_a_scan(
    entries: list[tuple[str, list[str], int]],
    namespace: str,
    selectors: list[dict[str, Any]],
    default_export: list[str],
) -> None:
    """The per-snapshot exportTo buckets list what checking every service for this namespace lists,
    in the same (pilot's) order: private / explicitly exported first, then public."""
    docs = [
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "ServiceEntry",
            "metadata": {"name": f"se{i}", "namespace": ns, "creationTimestamp": f"2025-01-0{t + 1}T00:00Z"},
            "spec": {
                "hosts": [f"h{i % 4}.example.com"],
                "ports": [{"number": 443, "name": "tls", "protocol": "TLS"}],
                "resolution": "DNS",
                **({"exportTo": export} if export else {}),
            },
        }
        for i, (ns, export, t) in enumerate(entries)
    ]
    mesh = MeshConfig(
        discovery_selectors=tuple(selectors), default_service_export_to=tuple(default_export or ["*"])
    )
    snapshot = Snapshot.build(load_documents(docs).objects, mesh)
    private: list[MeshService] = []
    public: list[MeshService] = []
    for svc in sorted(snapshot.mesh_services, key=_order_key):
        if not in_discovery_scope(snapshot, svc.namespace).allowed:
            continue
        export = svc.export_to or snapshot.mesh.default_service_export_to
        if "*" in export:
            public.append(svc)
        elif service_exported(snapshot, svc, namespace).allowed:
            private.append(svc)
    assert _visible_in_order(snapshot, namespace) == private + public
