"""Random (often invalid) mesh objects through load → Snapshot.build → predict: answers, never raises."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diag.model.loader import load_documents
from diag.model.resources import MeshConfig, OutboundTrafficPolicy
from diag.model.snapshot import Snapshot
from diag.predict.model import VERDICTS
from diag.predict.sidecar import Call, Source, candidates, near_names, port_owner, predict

_hosts = st.sampled_from(
    ["a.example.com", "*.example.com", "*", "A.Example.com", "b.example.com.", "x", "", "1.2.3.4"]
)
_addrs = st.sampled_from(
    ["1.2.3.4", "10.0.0.0/8", "0.0.0.0/0", "2001:db8::/32", "not-an-ip", "1.2.3.4/32", ""]
)
_protocols = st.sampled_from(["HTTP", "TLS", "HTTPS", "TCP", "", "GRPC", "MONGO", "udp", "bogus"])
_ports = st.fixed_dictionaries(
    {
        "number": st.sampled_from([80, 443, 22, 8080, 0, 70000]),
        "name": st.sampled_from(["p", "q", ""]),
        "protocol": _protocols,
    }
)
_spec = st.fixed_dictionaries(
    {
        "hosts": st.lists(_hosts, max_size=3),
        "ports": st.lists(_ports, max_size=3),
        "addresses": st.lists(_addrs, max_size=2),
        "resolution": st.sampled_from(["DNS", "NONE", "STATIC", "DNS_ROUND_ROBIN", "DYNAMIC_DNS", "WHAT"]),
        "exportTo": st.lists(st.sampled_from([".", "*", "~", "other", "default"]), max_size=2),
        "location": st.sampled_from(["MESH_EXTERNAL", "MESH_INTERNAL"]),
    }
)
_sidecar = st.fixed_dictionaries(
    {
        "egress": st.lists(
            st.fixed_dictionaries(
                {
                    "hosts": st.lists(
                        st.sampled_from(["./*", "*/*", "~/*", "other/*.example.com", "bad"]), max_size=3
                    )
                }
            ),
            max_size=2,
        ),
        "outboundTrafficPolicy": st.sampled_from([{}, {"mode": "ALLOW_ANY"}, {"mode": "REGISTRY_ONLY"}]),
    }
)


@st.composite
def _docs(draw: st.DrawFn) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for i in range(draw(st.integers(min_value=0, max_value=6))):
        ns = draw(st.sampled_from(["default", "other"]))
        if draw(st.booleans()):
            out.append(
                {
                    "apiVersion": "networking.istio.io/v1",
                    "kind": "ServiceEntry",
                    "metadata": {"name": f"se{i}", "namespace": ns},
                    "spec": draw(_spec),
                }
            )
        else:
            out.append(
                {
                    "apiVersion": "networking.istio.io/v1",
                    "kind": "Sidecar",
                    "metadata": {"name": f"sc{i}", "namespace": ns},
                    "spec": draw(_sidecar),
                }
            )
    return out


_calls = st.builds(
    Call,
    host=_hosts.filter(bool),
    port=st.sampled_from([80, 443, 22, 8080, 15001]),
    protocol=st.sampled_from(["http", "https", "tls", "tcp"]),
    address=st.sampled_from([None, "1.2.3.4", "10.1.1.1", "2001:db8::1", "240.240.0.1"]),
    http_version=st.sampled_from(["1.0", "1.1", "2"]),
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    _docs(),
    st.lists(_calls, min_size=1, max_size=4),
    st.booleans(),
    st.sampled_from(["ALLOW_ANY", "REGISTRY_ONLY"]),
)
def test_random_configs_always_predict(
    docs: list[dict[str, object]], calls: list[Call], capture: bool, mode: str
) -> None:
    loaded = load_documents(docs)
    snapshot = Snapshot.build(loaded.objects, MeshConfig(outbound=OutboundTrafficPolicy(mode=mode)))
    source = Source(namespace="default", dns_capture=capture)
    for call in calls:
        p = predict(snapshot, source, call)
        assert p.verdict in VERDICTS
        assert p.path.listener and p.envoy
        candidates(snapshot, call.host, source, call.port)
        near_names(snapshot, call.host)
        port_owner(snapshot, source, call.port)
