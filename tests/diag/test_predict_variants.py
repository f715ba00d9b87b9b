"""predict() variants: port capture, auto ports with/without VIP, CIDRs, Kubernetes Services,
conflicts, VirtualServices and upstream TLS (the rules in docs/model.md; sidecar and serviceentry
simulation tests in pilot/pkg/networking/core)."""

from __future__ import annotations

import pytest

from diag.model.loader import load_text
from diag.model.mesh import parse_mesh_config
from diag.model.snapshot import Snapshot
from diag.predict.sidecar import Call, Source, bound_addresses, dns_answer, port_owner, predict

REG = {"outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}}


def snap(text: str, mesh: dict[str, object] | None = None) -> Snapshot:
    loaded = load_text(text)
    assert loaded.problems == (), loaded.problems
    snapshot = Snapshot.build(
        loaded.objects, parse_mesh_config(mesh if mesh is not None else REG, "MeshConfig test")
    )
    assert snapshot.invalid == (), snapshot.invalid
    return snapshot


def se(
    name: str, hosts: str, ports: str, resolution: str = "DNS", extra: str = "", ns: str = "default"
) -> str:
    return (
        f"apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
        f"metadata: {{name: {name}, namespace: {ns}, creationTimestamp: '2026-01-01T00:00:0{len(name) % 10}Z'}}\n"  # noqa: E501
        f"spec:\n  hosts: {hosts}\n  ports: {ports}\n  resolution: {resolution}\n{extra}---\n"
    )


SRC = Source(namespace="default")
CAPTURE = Source(namespace="default", dns_capture=True)


@pytest.mark.parametrize("resolution", ["DNS", "NONE"])
def test_tcp_entry_without_address_captures_the_port(resolution: str) -> None:
    s = snap(se("gh", "[github.com]", "[{number: 22, name: ssh, protocol: TCP}]", resolution))
    for address in ("10.250.0.16", "10.250.0.17"):
        p = predict(s, SRC, Call(host="other.example", port=22, protocol="tcp", address=address))
        assert (p.verdict, p.envoy, p.path.listener, p.path.filter_chain) == (
            "allowed",
            "outbound|22||github.com",
            "0.0.0.0_22",
            "{}",
        )
    owner = port_owner(s, SRC, 22)
    assert owner is not None and owner.reason == "tcp-no-address" and owner.ref == "ServiceEntry default/gh"


def test_dns_capture_gives_dns_entries_a_vip_and_ends_capture() -> None:
    s = snap(se("gh", "[github.com]", "[{number: 22, name: ssh, protocol: TCP}]"))
    assert port_owner(s, CAPTURE, 22) is None
    (vip,) = dns_answer(s, CAPTURE, "github.com") or ()
    assert vip.startswith("240.240.")
    ok = predict(s, CAPTURE, Call(host="github.com", port=22, protocol="tcp"))
    assert (ok.verdict, ok.path.listener, ok.dialled_address) == ("allowed", f"{vip}_22", vip)
    other = predict(s, CAPTURE, Call(host="x", port=22, protocol="tcp", address="10.250.0.17"))
    assert (other.verdict, other.path.listener) == ("blocked", "virtualOutbound")
    assert bound_addresses(s, CAPTURE, "github.com", 22) == (vip,)
    assert bound_addresses(s, SRC, "github.com", 22) == ("0.0.0.0",)
    assert dns_answer(s, SRC, "github.com") is None  # no capture, no agent answer


def test_status_addresses_used_only_with_capture_and_not_for_none() -> None:
    status = "status:\n  addresses: [{value: 240.240.0.7, host: db.example.com}]\n"
    text = (
        se("db", "[db.example.com]", "[{number: 5432, name: pg, protocol: TCP}]").removesuffix("---\n")
        + status
    )
    s = snap(text)
    assert bound_addresses(s, CAPTURE, "db.example.com", 5432) == ("240.240.0.7",)
    assert bound_addresses(
        s, Source(namespace="default", dns_capture=True, istio_version="1.24.2"), "db.example.com", 5432
    ) == ("0.0.0.0",)  # v2 allocation off before 1.25
    none = snap(se("db", "[db.example.com]", "[{number: 5432, name: pg, protocol: TCP}]", "NONE"))
    owner = port_owner(none, CAPTURE, 5432)
    assert owner is not None and owner.service.resolution == "NONE"


def test_auto_port_with_and_without_vip() -> None:
    s = snap(se("api", "[api.example.com]", "[{number: 8080, name: web}]"))
    # Without a VIP: 0.0.0.0 with a match-all TCP chain (captures non-HTTP) plus the shared HTTP route.
    http = predict(s, SRC, Call(host="api.example.com", port=8080, protocol="http"))
    assert (http.envoy, http.path.route, http.path.vhost) == (
        "outbound|8080||api.example.com",
        "8080",
        "api.example.com:8080",
    )
    unknown = predict(s, SRC, Call(host="else.example", port=8080, protocol="http"))
    assert unknown.envoy == "block_all"  # "Auto without a VIP ... HTTP happens to work"
    tls = predict(s, SRC, Call(host="else.example", port=8080, protocol="tls"))
    assert (tls.verdict, tls.envoy) == ("allowed", "outbound|8080||api.example.com")  # captured
    owner = port_owner(s, SRC, 8080)
    assert owner is not None and owner.reason == "auto-no-address"
    # With a VIP: VIP_port listener, sniffed route "host:port" with one vhost and no catch-all.
    vip = predict(s, CAPTURE, Call(host="api.example.com", port=8080, protocol="http"))
    assert vip.path.route == "api.example.com:8080" and vip.path.vhost == "api.example.com:8080"
    assert vip.path.listener == f"{vip.dialled_address}_8080"


PASSTHROUGH_PORTS = (
    "[{number: 80, name: a, protocol: HTTP}, {number: 81, name: b}, {number: 82, name: c, protocol: TCP},"
    " {number: 83, name: d, protocol: TLS}, {number: 84, name: e, protocol: HTTPS},"
    " {number: 85, name: f, protocol: GRPC}, {number: 86, name: g, protocol: HTTP2}]"
)


@pytest.mark.parametrize("mode", ["REGISTRY_ONLY", "ALLOW_ANY"])
@pytest.mark.parametrize("vip", [True, False])
def test_passthrough_traffic_matrix(mode: str, vip: bool) -> None:
    """TestPassthroughTraffic: calls to another destination than the entry's."""
    extra = "  addresses: [1.2.3.4]\n" if vip else ""
    s = snap(
        se("istio", "[istio.io]", PASSTHROUGH_PORTS, "STATIC", extra),
        {"outboundTrafficPolicy": {"mode": mode}},
    )
    catch = "BlackHoleCluster" if mode == "REGISTRY_ONLY" else "PassthroughCluster"
    vhost = "block_all" if mode == "REGISTRY_ONLY" else "PassthroughCluster"
    for port in range(80, 87):
        for proto in ("http", "tls", "tcp"):
            p = predict(s, SRC, Call(host="other.example", port=port, protocol=proto, address="5.6.7.8"))
            captured = not vip and port in (81, 82) and not (port == 81 and proto == "http")
            if captured:
                expected = f"outbound|{port}||istio.io"
            elif proto == "http" and (port in (80, 85, 86) or (port == 81 and not vip)):
                expected = vhost
            else:
                expected = catch
            assert p.envoy == expected, (port, proto, p.path)


def test_cidr_entries_and_overlaps() -> None:
    text = se(
        "wide",
        "[blah1.somedomain]",
        "[{number: 9999, name: t, protocol: TCP}]",
        "NONE",
        "  addresses: [10.0.0.0/8]\n",
    )
    text += se(
        "narrow",
        "[blah2.somedomain]",
        "[{number: 9999, name: t, protocol: TCP}]",
        "NONE",
        "  addresses: [10.1.2.3/32]\n",
    )
    s = snap(text)
    assert (
        predict(s, SRC, Call(host="x", port=9999, protocol="tcp", address="10.9.9.9")).envoy
        == "outbound|9999||blah1.somedomain"
    )
    narrow = predict(s, SRC, Call(host="x", port=9999, protocol="tcp", address="10.1.2.3"))
    assert (narrow.envoy, narrow.path.listener) == ("outbound|9999||blah2.somedomain", "10.1.2.3_9999")
    outside = predict(s, SRC, Call(host="x", port=9999, protocol="tcp", address="192.168.0.1"))
    assert (outside.envoy, outside.path.filter_chain) == ("BlackHoleCluster", "PassthroughFilterChain")
    assert predict(
        s, SRC, Call(host="x", port=9999, protocol="tcp", address="10.9.9.9")
    ).path.filter_chain == ("{prefix_ranges=10.0.0.0/8}")


def test_identical_cidrs_keep_the_first() -> None:
    cidr = "  addresses: [2001:db8::1/32]\n"
    text = se("first", "[blah1.somedomain]", "[{number: 9999, name: t, protocol: TCP}]", "NONE", cidr)
    text += se(
        "second",
        "[blah2.somedomain]",
        "[{number: 9999, name: t, protocol: TCP}]",
        "NONE",
        "  addresses: [2001:db8::2/32]\n",
    )
    p = predict(snap(text), SRC, Call(host="x", port=9999, protocol="tcp", address="2001:db8:1::1"))
    assert (p.path.listener, p.envoy) == ("0.0.0.0_9999", "outbound|9999||blah1.somedomain")


def test_vip_bound_tls_matches_any_sni_and_other_ips_miss() -> None:
    s = snap(
        se(
            "api",
            "[api.example.com]",
            "[{number: 443, name: tls, protocol: TLS}]",
            "DNS",
            "  addresses: [1.2.3.4]\n",
        )
    )
    same = predict(
        s,
        SRC,
        Call(host="api.example.com", port=443, protocol="tls", sni="whatever.example", address="1.2.3.4"),
    )
    assert (same.verdict, same.path.filter_chain) == ("allowed", "{}")
    rotated = predict(s, SRC, Call(host="api.example.com", port=443, protocol="tls", address="9.9.9.9"))
    assert (rotated.verdict, rotated.path.listener) == ("blocked", "virtualOutbound")  # MP0114
    assert bound_addresses(s, SRC, "api.example.com", 443) == ("1.2.3.4",)
    default = predict(s, SRC, Call(host="api.example.com", port=443, protocol="tls"))
    assert default.verdict == "allowed" and default.assumptions  # assumed it resolves to 1.2.3.4


KUBE = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  clusterIP: 10.96.0.10
  ports: [{port: 80, name: http}, {port: 5432, name: tcp-db}]
---
apiVersion: v1
kind: Service
metadata: {name: legacy, namespace: shop}
spec:
  type: ExternalName
  externalName: db.vendor.example
  ports: [{port: 3306, name: mysql}]
---
apiVersion: v1
kind: Service
metadata: {name: sts, namespace: shop}
spec:
  clusterIP: None
  ports: [{port: 7000, name: tcp}]
---
"""


def test_kubernetes_services() -> None:
    s = snap(KUBE)
    shop = Source(namespace="shop")
    assert predict(s, SRC, Call(host="example.com", port=80, protocol="http")).envoy == "block_all"
    short = predict(s, shop, Call(host="web", port=80, protocol="http"))
    assert (short.verdict, short.path.vhost) == ("allowed", "web.shop.svc.cluster.local:80")
    other_ns = predict(s, SRC, Call(host="web", port=80, protocol="http"))
    assert other_ns.envoy == "block_all"  # the bare short name is only a domain in the same namespace
    db = predict(s, SRC, Call(host="web.shop.svc.cluster.local", port=5432, protocol="tcp"))
    assert (db.path.listener, db.dialled_address, db.envoy) == (
        "10.96.0.10_5432",
        "10.96.0.10",
        "outbound|5432||web.shop.svc.cluster.local",
    )
    assert db.upstream_tls is not None and db.upstream_tls.mode == "AUTO_ISTIO_MUTUAL"
    # ExternalName Services are aliases since 1.21 (ENABLE_EXTERNAL_NAME_ALIAS): no listener, no capture.
    assert port_owner(s, SRC, 3306) is None
    assert (
        predict(s, SRC, Call(host="x", port=3306, protocol="tcp", address="10.0.0.9")).path.listener
        == "virtualOutbound"
    )
    assert (
        predict(s, SRC, Call(host="x", port=7000, protocol="tcp", address="10.0.0.9")).path.listener
        == "virtualOutbound"
    )


def test_external_name_alias_of_an_in_mesh_service() -> None:
    alias = (
        "apiVersion: v1\nkind: Service\nmetadata: {name: alias, namespace: shop}\n"
        "spec: {type: ExternalName, externalName: web.shop.svc.cluster.local}\n---\n"
    )
    s = snap(KUBE + alias)
    for host in ("alias.shop.svc.cluster.local", "alias.shop"):
        p = predict(s, SRC, Call(host=host, port=80, protocol="http"))
        assert (p.envoy, p.path.vhost) == (
            "outbound|80||web.shop.svc.cluster.local",
            "web.shop.svc.cluster.local:80",
        )
    tcp = predict(s, SRC, Call(host="alias.shop.svc.cluster.local", port=5432, protocol="tcp"))
    assert (tcp.dialled_address, tcp.envoy) == ("10.96.0.10", "outbound|5432||web.shop.svc.cluster.local")


def test_kubernetes_service_beats_entry_with_same_host() -> None:
    text = KUBE + se(
        "shadow", "[web.shop.svc.cluster.local]", "[{number: 80, name: http, protocol: HTTP}]", ns="shop"
    )
    p = predict(snap(text), SRC, Call(host="web.shop.svc.cluster.local", port=80, protocol="http"))
    assert p.service is not None and p.service.ref == "Service shop/web"


def test_oldest_entry_wins_and_own_namespace_preferred() -> None:
    old = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: old, namespace: a, creationTimestamp: '2025-01-01T00:00:00Z'}\n"  # noqa: E501
    new = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: new, namespace: b, creationTimestamp: '2026-01-01T00:00:00Z'}\n"  # noqa: E501
    spec = "spec: {hosts: [dup.example.com], ports: [{number: 443, name: tls, protocol: TLS}], resolution: DNS}\n---\n"  # noqa: E501
    s = snap(old + spec + new + spec)
    assert predict(s, Source(namespace="c"), Call(host="dup.example.com", port=443)).matched == (
        "ServiceEntry a/old",
    )
    assert predict(s, Source(namespace="b"), Call(host="dup.example.com", port=443)).matched == (
        "ServiceEntry b/new",
    )


def test_mongo_mysql_conflict_drops_newcomer() -> None:
    text = se("a", "[a.example.com]", "[{number: 27017, name: mongo, protocol: MONGO}]", "NONE")
    text += se("bb", "[b.example.com]", "[{number: 27017, name: tcp, protocol: TCP}]", "NONE")
    p = predict(snap(text), SRC, Call(host="b.example.com", port=27017, protocol="tcp", address="1.1.1.1"))
    assert p.envoy == "outbound|27017||a.example.com"


def test_virtual_service_to_egress_gateway_and_missing_cluster() -> None:
    gw = (
        "apiVersion: v1\nkind: Service\nmetadata: {name: istio-egressgateway, namespace: istio-system}\n"
        "spec: {clusterIP: 10.96.1.1, ports: [{port: 80, name: http}]}\n---\n"
    )
    vs = (
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: via-gw, namespace: default}\n"  # noqa: E501
        "spec:\n  hosts: [api.example.com]\n  http:\n  - route:\n    - destination:\n"
        "        host: istio-egressgateway.istio-system.svc.cluster.local\n        port: {number: 80}\n"
    )
    text = se("api", "[api.example.com]", "[{number: 80, name: http, protocol: HTTP}]") + gw + vs
    p = predict(snap(text), SRC, Call(host="api.example.com", port=80, protocol="http"))
    assert p.envoy == "outbound|80||istio-egressgateway.istio-system.svc.cluster.local"
    assert p.matched[0] == "VirtualService default/via-gw" and p.verdict == "allowed"
    missing = predict(
        snap(se("api", "[api.example.com]", "[{number: 80, name: http, protocol: HTTP}]") + vs),
        SRC,
        Call(host="api.example.com", port=80, protocol="http"),
    )
    assert missing.verdict == "blocked" and any("503 NC" in n for n in missing.notes)


def test_upstream_tls_rules() -> None:
    dr = (
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: tls, namespace: default}\n"  # noqa: E501
        "spec: {host: api.example.com, trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}}\n---\n"
    )
    ext = se("api", "[api.example.com]", "[{number: 443, name: tls, protocol: TLS}]")
    p = predict(snap(ext + dr), SRC, Call(host="api.example.com", port=443))
    assert (
        p.upstream_tls is not None and p.upstream_tls.mode == "ISTIO_MUTUAL"
    )  # a user DR wins for MESH_EXTERNAL
    assert "DestinationRule default/tls" in p.matched
    internal = se(
        "in",
        "[in.example.com]",
        "[{number: 443, name: tls, protocol: TLS}]",
        "STATIC",
        "  location: MESH_INTERNAL\n  endpoints: [{address: 10.0.0.5, labels: {security.istio.io/tlsMode: istio}}]\n",  # noqa: E501
    )
    q = predict(snap(internal), SRC, Call(host="in.example.com", port=443))
    assert q.upstream_tls is not None and q.upstream_tls.mode == "AUTO_ISTIO_MUTUAL"
    plain = se(
        "in",
        "[in.example.com]",
        "[{number: 443, name: tls, protocol: TLS}]",
        "DNS",
        "  location: MESH_INTERNAL\n",
    )
    r = predict(snap(plain), SRC, Call(host="in.example.com", port=443))
    assert r.upstream_tls is not None and r.upstream_tls.mode == "NONE"  # MESH_INTERNAL alone is not mTLS


def test_egress_proxy_and_unmodelled_filters() -> None:
    text = (
        "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: proxy, namespace: default}\n"
        "spec:\n  outboundTrafficPolicy: {mode: ALLOW_ANY, egressProxy: {host: squid.corp.example, port: {number: 3128}}}\n---\n"  # noqa: E501
        "apiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nmetadata: {name: lua, namespace: istio-system}\n"  # noqa: E501
        "spec: {configPatches: []}\n---\n"
    )
    p = predict(snap(text), SRC, Call(host="example.com", port=443))
    assert (p.verdict, p.envoy, p.mode, p.mode_from) == (
        "passthrough",
        "outbound|3128||squid.corp.example",
        "ALLOW_ANY",
        "Sidecar default/proxy",
    )
    assert p.unmodelled == ("EnvoyFilter istio-system/lua",)


@pytest.mark.parametrize(
    ("port", "listener", "chain"),
    [
        (15001, "virtualOutbound", "virtualOutbound-blackhole"),
        (15006, "virtualInbound", "virtualInbound-blackhole"),
    ],
)
def test_capture_ports_are_loop_guarded(port: int, listener: str, chain: str) -> None:
    s = snap("", {"outboundTrafficPolicy": {"mode": "ALLOW_ANY"}})
    p = predict(s, SRC, Call(host="x", port=port, protocol="tcp", address="1.3.3.7"))
    assert (p.path.listener, p.path.filter_chain, p.envoy, p.verdict) == (
        listener,
        chain,
        "BlackHoleCluster",
        "blocked",
    )


@pytest.mark.parametrize(
    ("mesh_capture", "proxy_configs", "labels", "captures"),
    [
        ("false", [], {}, False),
        ("true", [], {}, True),
        ("false", [("istio-system", None, "true")], {}, True),
        ("true", [("default", None, "false")], {}, False),
        ("false", [("default", {"app": "a"}, "true"), ("default", None, "false")], {"app": "a"}, True),
        ("false", [("default", {"app": "a"}, "true")], {"app": "b"}, False),
    ],
)
def test_dns_capture_layers(
    mesh_capture: str,
    proxy_configs: list[tuple[str, dict[str, str] | None, str]],
    labels: dict[str, str],
    captures: bool,
) -> None:
    text = se("gh", "[github.com]", "[{number: 22, name: ssh, protocol: TCP}]")
    for i, (ns, selector, value) in enumerate(proxy_configs):
        sel = f"  selector: {{matchLabels: {selector}}}\n" if selector else ""
        text += (
            "apiVersion: networking.istio.io/v1beta1\nkind: ProxyConfig\n"
            f"metadata: {{name: pc{i}, namespace: {ns}}}\n"
            f"spec:\n{sel}  environmentVariables: {{ISTIO_META_DNS_CAPTURE: '{value}'}}\n---\n"
        )
    mesh = {"defaultConfig": {"proxyMetadata": {"ISTIO_META_DNS_CAPTURE": mesh_capture}}}
    s = snap(text, mesh)
    source = Source(namespace="default", labels=labels)
    assert (dns_answer(s, source, "github.com") is not None) is captures


def test_service_without_cluster_ip_gets_a_stand_in_not_a_wildcard_bind() -> None:
    text = "apiVersion: v1\nkind: Service\nmetadata: {name: db, namespace: data}\n"
    text += "spec: {ports: [{port: 5432, name: tcp}]}\n"
    s = snap(text)
    assert port_owner(s, SRC, 5432) is None  # a ClusterIP Service never captures the port
    p = predict(s, SRC, Call(host="db.data.svc.cluster.local", port=5432, protocol="tcp"))
    assert p.verdict == "allowed" and p.path.listener == f"{p.dialled_address}_5432"
    assert p.assumptions and "no clusterIP" in p.assumptions[0]
