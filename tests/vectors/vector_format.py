"""The vector file format: Istio simulation tests transcribed as data (``docs/vectors.md``).

A vector file (``tests/vectors/istio/*.yaml``) holds ``source`` (the Istio file, test function and
commit it was read from), optional ``notes``, and ``cases``. A case is one configuration (the raw
Kubernetes/Istio objects), one mesh config and one proxy, with ``calls`` (each with an
``expect``), and optionally ``route_tables`` and ``listener_shape`` (structural assertions of the
original that are not about one call).

Expectation semantics follow Istio's simulator (``pilot/pkg/simulation/traffic.go``,
``Result.Matches``): a field that is absent is not checked, except ``error``, which is always
checked — an absent ``error`` (or ``error: none``) means the call must not fail.

Loading validates the shape and raises :class:`VectorFormatError` naming the file and case.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

VECTOR_DIR = Path(__file__).parent / "istio"
CASE_DIR = Path(__file__).parent / "meshprobe"
"""``istio/``: Istio's own tests transcribed (the external oracle). ``meshprobe/``: cases written
for meshprobe whose expectations rest on a reading of Istio's source (``source.basis`` names the
files); they run through the same three paths, and the real Envoy in the lab decides the match."""

ERROR_KINDS = (
    "none",
    "no_listener",
    "no_filter_chain",
    "no_route",
    "no_virtual_host",
    "tls_redirect",
    "multiple_filter_chains",
    "protocol_error",
    "tls_error",
)
"""Istio's simulation errors (ErrNoListener, ErrNoFilterChain, ErrNoRoute, ErrNoVirtualHost,
ErrTLSRedirect, ErrMultipleFilterChain, ErrProtocolError, ErrTLSError) plus ``none``."""

EXPECT_FIELDS = ("listener", "filter_chain", "route_config", "vhost", "route", "cluster", "status", "error")
PROTOCOLS = ("http", "http2", "tcp")
FEATURES = (
    "virtualservice",
    "endpointslice",
    "ipv6",
    "dns_capture",
    "auto_allocation",
    "gateway_service_ports",
    "credential_name",
    "istio_mutual",
    "https_redirect",
    "gateway_proxy",
)
"""What a case exercises beyond ServiceEntries, Services, Sidecars, Gateways and the mode
(``requires:``). ``gateway_service_ports``: a gateway listens on the targetPort of the Service port
exposing it; ``credential_name``: a gateway server terminates TLS with a Secret;
``istio_mutual``: the call is mutual TLS with the mesh's certificate; ``https_redirect``: a server's
``tls.httpsRedirect``; ``gateway_proxy``: the proxy
is a gateway (set by the loader for ``proxy.type: router``, never written)."""
PROXY_TYPES = ("sidecar", "router")
"""Istio's proxy types: a sidecar, or a gateway (``model.Router``)."""


class VectorFormatError(ValueError):
    """A vector file does not follow the format."""


@dataclass(frozen=True)
class Expect:
    """What the original asserts for one call; None = not checked (``error`` is always checked).
    ``status`` is an HTTP status the sidecar answers itself with (a redirect, a direct response,
    404 NR), asserted only where the original asserts that status."""

    listener: str | None = None
    filter_chain: str | None = None
    route_config: str | None = None
    vhost: str | None = None
    route: str | None = None
    cluster: str | None = None
    status: str | None = None
    error: str = "none"

    def checked(self) -> dict[str, str]:
        """The fields this expectation checks, with their wanted values."""
        wanted = {name: getattr(self, name) for name in EXPECT_FIELDS}
        return {name: value for name, value in wanted.items() if value is not None}


@dataclass(frozen=True)
class VectorCall:
    """One call as Istio's simulator makes it, with every default written out.

    ``protocol`` is what the client speaks (http, http2, tcp); ``tls`` whether it is wrapped in TLS
    (the sidecar passes it through), ``mtls`` whether that TLS is the mesh's mutual TLS
    (``simulation.Call`` with TLS=MTLS); ``host`` the Host header of plaintext HTTP; ``sni``/``alpn``
    the TLS ClientHello; ``path`` (with its query), ``method`` and ``headers`` (extra request
    headers) what an HTTP request carries. ``simulation_only`` gives the reason a call cannot be
    made on a real socket (the lab path does not run it).
    """

    name: str
    address: str
    port: int
    protocol: str
    tls: bool
    expect: Expect
    host: str | None = None
    sni: str | None = None
    alpn: str | None = None
    path: str = "/"
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    simulation_only: str | None = None
    mtls: bool = False


@dataclass(frozen=True)
class Proxy:
    """The proxy the config is generated for: a sidecar, or (``type: router``) a gateway proxy,
    which Gateways select by its labels."""

    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    dns_capture: bool = False
    ips: tuple[str, ...] = ("1.1.1.1",)
    type: str = "sidecar"

    @property
    def is_gateway(self) -> bool:
        return self.type == "router"


@dataclass(frozen=True)
class RouteTable:
    """One route configuration's virtual hosts as the original asserts them: domain -> sorted
    cluster names of the vhost's routes, or None for "no vhost has exactly this domain"."""

    route_config: str
    domains: Mapping[str, tuple[str, ...] | None]


@dataclass(frozen=True)
class ListenerShape:
    """How many listeners bind one port (``count`` exact, or at least ``min_count``)."""

    port: int
    count: int | None = None
    min_count: int | None = None


@dataclass(frozen=True)
class VectorCase:
    """One configuration with its calls and structural assertions."""

    file: str
    name: str
    mesh: Mapping[str, Any]
    proxy: Proxy
    config: tuple[Mapping[str, Any], ...]
    calls: tuple[VectorCall, ...]
    requires: frozenset[str] = frozenset()
    route_tables: tuple[RouteTable, ...] = ()
    listener_shape: tuple[ListenerShape, ...] = ()

    @property
    def id(self) -> str:
        """``file-stem/case-name``, unique across all vectors."""
        return f"{Path(self.file).stem}/{self.name}"

    @property
    def mode(self) -> str:
        """The mesh's outbound traffic policy mode (ALLOW_ANY when unset, as in pilot)."""
        policy = self.mesh.get("outboundTrafficPolicy") or {}
        return str(policy.get("mode", "ALLOW_ANY"))


@dataclass(frozen=True)
class VectorFile:
    """One transcribed Istio test (or group of tests)."""

    path: Path
    source: Mapping[str, str]
    cases: tuple[VectorCase, ...]


def _fail(where: str, message: str) -> VectorFormatError:
    return VectorFormatError(f"{where}: {message}")


def _require(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise _fail(where, f"missing {key!r}")
    value = data[key]
    if not isinstance(value, kind):
        raise _fail(where, f"{key!r} has the wrong type ({type(value).__name__})")
    return value


def _expect(raw: Any, where: str) -> Expect:
    if not isinstance(raw, Mapping):
        raise _fail(where, "expect must be a mapping")
    unknown = set(raw) - set(EXPECT_FIELDS)
    if unknown:
        raise _fail(where, f"unknown expect fields {sorted(unknown)}")
    error = str(raw.get("error", "none"))
    if error not in ERROR_KINDS:
        raise _fail(where, f"unknown error kind {error!r}")
    values = {k: str(v) for k, v in raw.items() if k != "error" and v is not None}
    return Expect(error=error, **values)


def _call(raw: Any, where: str) -> VectorCall:
    if not isinstance(raw, Mapping):
        raise _fail(where, "a call must be a mapping")
    name = str(_require(raw, "name", str, where))
    where = f"{where} call {name}"
    protocol = str(_require(raw, "protocol", str, where))
    if protocol not in PROTOCOLS:
        raise _fail(where, f"protocol must be one of {PROTOCOLS}")
    tls = bool(_require(raw, "tls", bool, where))
    alpn = raw.get("alpn")
    if alpn is not None and not tls:
        raise _fail(where, "alpn needs tls (as in Istio's simulator)")
    mtls = raw.get("mtls", False)
    if not isinstance(mtls, bool) or (mtls and not tls):
        raise _fail(where, "mtls must be a boolean and needs tls")
    return VectorCall(
        name=name,
        address=str(_require(raw, "address", str, where)),
        port=int(_require(raw, "port", int, where)),
        protocol=protocol,
        tls=tls,
        expect=_expect(_require(raw, "expect", Mapping, where), where),
        host=raw.get("host"),
        sni=raw.get("sni"),
        alpn=alpn,
        path=str(raw.get("path", "/")),
        method=str(raw.get("method", "GET")),
        headers=_headers(raw.get("headers"), where),
        simulation_only=raw.get("simulation_only"),
        mtls=mtls,
    )


def _headers(raw: Any, where: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or not all(isinstance(v, str) for v in raw.values()):
        raise _fail(where, "headers must map names to strings")
    return {str(k): v for k, v in raw.items()}


def _route_tables(raw: Any, where: str) -> tuple[RouteTable, ...]:
    tables = []
    for item in raw or ():
        domains: dict[str, tuple[str, ...] | None] = {}
        for domain, clusters in dict(item["domains"]).items():
            domains[str(domain)] = None if clusters is None else tuple(sorted(map(str, clusters)))
        tables.append(RouteTable(str(_require(item, "route_config", str, where)), domains))
    return tuple(tables)


def _case(raw: Any, file: Path) -> VectorCase:
    where = f"{file.name}"
    if not isinstance(raw, Mapping):
        raise _fail(where, "a case must be a mapping")
    name = str(_require(raw, "name", str, where))
    where = f"{file.name} case {name}"
    proxy_raw = _require(raw, "proxy", Mapping, where)
    requires = frozenset(map(str, raw.get("requires") or ()))
    if not requires <= set(FEATURES):
        raise _fail(where, f"unknown requires {sorted(requires - set(FEATURES))}")
    proxy_type = str(proxy_raw.get("type", "sidecar"))
    if proxy_type not in PROXY_TYPES:
        raise _fail(where, f"proxy type must be one of {PROXY_TYPES}")
    if proxy_type == "router" and proxy_raw.get("dns_capture"):
        raise _fail(where, "a gateway proxy has no DNS capture")
    if "gateway_proxy" in requires:
        raise _fail(where, "gateway_proxy is implied by proxy type router, not written")
    if proxy_type == "router":
        requires |= {"gateway_proxy"}
    calls = tuple(_call(c, where) for c in _require(raw, "calls", list, where))
    if len({c.name for c in calls}) != len(calls):
        raise _fail(where, "call names must be unique")
    shapes = tuple(ListenerShape(**dict(s)) for s in raw.get("listener_shape") or ())
    return VectorCase(
        file=file.name,
        name=name,
        mesh=dict(_require(raw, "mesh", Mapping, where)),
        proxy=Proxy(
            namespace=str(_require(proxy_raw, "namespace", str, where)),
            labels=dict(proxy_raw.get("labels") or {}),
            dns_capture=bool(proxy_raw.get("dns_capture", False)),
            ips=tuple(map(str, proxy_raw.get("ips") or ("1.1.1.1",))),
            type=proxy_type,
        ),
        config=tuple(dict(o) for o in _require(raw, "config", list, where)),
        calls=calls,
        requires=requires,
        route_tables=_route_tables(raw.get("route_tables"), where),
        listener_shape=shapes,
    )


def load_file(path: Path) -> VectorFile:
    """Parse and check one vector file."""
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, Mapping):
        raise _fail(path.name, "top level must be a mapping")
    source = _require(data, "source", Mapping, path.name)
    keys = ("repo", "file", "test", "commit")
    if source.get("repo") == "meshprobe":
        keys = ("repo", "basis", "commit")
    for key in keys:
        _require(source, key, str, f"{path.name} source")
    cases = tuple(_case(c, path) for c in _require(data, "cases", list, path.name))
    if len({c.name for c in cases}) != len(cases):
        raise _fail(path.name, "case names must be unique")
    return VectorFile(path, {k: str(v) for k, v in source.items()}, cases)


@cache
def load_all(directories: tuple[Path, ...] = (VECTOR_DIR, CASE_DIR)) -> tuple[VectorFile, ...]:
    """Every vector file, Istio's first, each directory sorted by name (parsed once per process)."""
    return tuple(load_file(p) for d in directories for p in sorted(d.glob("*.yaml")))


def all_cases(files: Sequence[VectorFile] | None = None) -> tuple[VectorCase, ...]:
    """Every case of every file."""
    return tuple(case for f in (files if files is not None else load_all()) for case in f.cases)
