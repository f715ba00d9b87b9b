"""What one path (prediction, live-path matcher, real lab) says a call did, and how it is compared
with a vector's expectation, by the rules of Istio's ``Result.Matches``
(``pilot/pkg/simulation/traffic.go``): only the expected fields are compared, ``error`` always.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tests.vectors.vector_format import EXPECT_FIELDS, Expect, RouteTable

LIVEPATH_ERRORS = {
    "cluster": "none",
    "direct_response": "none",
    "redirect": "none",
    "no_listener": "no_listener",
    "no_filter_chain": "no_filter_chain",
    "no_route_config": "no_route",
    "no_vhost": "no_virtual_host",
    "no_route": "no_route",
    "tls_redirect": "tls_redirect",
    "protocol_error": "protocol_error",
}
"""``diag.live.path`` outcomes in Istio's simulation error vocabulary (an outcome not listed is
reported as itself, so it never equals an expected kind by accident). A route's redirect or direct
response is no error in Istio's simulator (it reports the route matched); its
``ErrTLSRedirect`` is a virtual host's ``require_tls`` (a Gateway server's httpsRedirect; sidecar
outbound config never sets it)."""


@dataclass(frozen=True)
class Observed:
    """One path's answer, in the vector's field names."""

    listener: str | None = None
    filter_chain: str | None = None
    route_config: str | None = None
    vhost: str | None = None
    route: str | None = None
    cluster: str | None = None
    status: str | None = None
    error: str = "none"
    detail: str = ""

    def describe(self) -> str:
        """A one-line summary for failure messages."""
        fields = {name: getattr(self, name) for name in EXPECT_FIELDS}
        text = ", ".join(f"{k}={v}" for k, v in fields.items() if v not in (None, ""))
        return f"{text} {self.detail}".strip()


def restrict(expect: Expect, observable: Iterable[str]) -> dict[str, str]:
    """The expected fields a path can observe (the others are not compared on that path)."""
    allowed = set(observable)
    return {k: v for k, v in expect.checked().items() if k in allowed}


def mismatches(wanted: Mapping[str, str], observed: Observed) -> list[str]:
    """One line per expected field the observation gets wrong (empty: the call passes)."""
    wrong = []
    for name, wanted_value in wanted.items():
        got = getattr(observed, name)
        if got != wanted_value:
            wrong.append(f"{name}: want {wanted_value!r}, got {got!r}")
    return wrong


def route_table_mismatches(
    table: RouteTable, route_configs: Mapping[str, Mapping[str, tuple[str, ...]]]
) -> list[str]:
    """Compare an asserted vhost table with the actual ``route config -> domain -> clusters``."""
    actual = route_configs.get(table.route_config)
    if actual is None:
        return [f"route config {table.route_config!r} not found (have {sorted(route_configs)})"]
    wrong = []
    for domain, wanted in table.domains.items():
        got = actual.get(domain)
        if got != wanted:
            wrong.append(f"{table.route_config} {domain}: want {wanted}, got {got}")
    return wrong
