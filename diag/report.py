"""The report: the ``meshprobe.report/v1`` document (`docs/schema.md`) and the exit code.

`Report` holds plain results (one `TargetResult` per target, plus config `findings`);
`Report.to_json()` renders the documented schema (`docs/schema.md`,
`docs/schema/report.schema.json`) deterministically: targets in the order given, each target's
diagnoses in root-cause order (the order of `diag.rules.ALL_RULES`) and de-duplicated, findings
sorted by level, code, resources and message and de-duplicated, `by_code` sorted.

Exit codes (`docs/exit-codes.md`): 0 every target met its expectation; 1 at least one failed
target is the mesh's doing (`failure_is_mesh`: a mesh code at level error, or at level warning when
no DNS/upstream error explains it); 3 failures, none attributable to the mesh (DNS, upstream: codes
in `NOT_MESH_CODES`, or no diagnosis at all).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from diag.errors import EXIT_MESH_FAILURE, EXIT_NOT_MESH, EXIT_OK
from diag.rules.base import Diagnosis
from probes.model import ProbeResult, Signature, accepted, to_json

SCHEMA = "meshprobe.report/v1"
NOT_MESH_CODES = frozenset({"MP0201", "MP0202", "MP0203"})
LEVEL_RANK = {"error": 0, "warning": 1, "info": 2}
OBSERVED_KEYS = (
    "signature",
    "origin",
    "phases",
    "http",
    "tls",
    "dns",
    "tcp",
    "redirects",
    "error",
    "elapsed",
)


@dataclass(frozen=True)
class SourceInfo:
    """Who made the calls (the report's ``source``)."""

    kind: str = "offline"  # pod | like | ephemeral | local | offline
    namespace: str = "default"
    context: str | None = None
    dataplane: str = "sidecar"  # sidecar | ambient | none
    sidecar: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "context": self.context,
            "namespace": self.namespace,
            "dataplane": self.dataplane,
            "sidecar": dict(self.sidecar) if self.sidecar is not None else None,
        }


@dataclass(frozen=True)
class MeshInfo:
    """The effective outbound policy and where it comes from (the report's ``mesh``)."""

    outbound_policy: str = "UNKNOWN"
    source: str = ""
    istio_version: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "outbound_policy": self.outbound_policy,
            "from": self.source,
            "istio_version": self.istio_version,
        }


@dataclass(frozen=True)
class TargetResult:
    """One target's layers of evidence and its diagnoses. ``actual``/``predicted`` are any objects
    with ``as_dict()``/``to_json()`` (``diag.live.path.LivePath``, ``diag.predict.sidecar.Prediction``)."""

    target: str
    host: str
    port: int
    protocol: str
    url: str = ""
    expect: str = "allowed"
    outcome: str = "fail"
    observed: ProbeResult | None = None
    actual: Any = None
    predicted: Any = None
    diagnoses: tuple[Diagnosis, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "url": self.url,
            "host": self.host,
            "port": self.port,
            "protocol": self.protocol,
            "expect": self.expect,
            "outcome": self.outcome,
            "observed": observed_json(self.observed, self.via),
            "actual": self.actual.as_dict() if self.actual is not None else None,
            "predicted": self.predicted.to_json() if self.predicted is not None else None,
            "via": self.via,
            "diagnoses": [d.to_json() for d in unique(self.diagnoses)],
        }

    @property
    def via(self) -> dict[str, Any]:
        """The report's ``via``: direct, or through egress gateway G (the hop `predicted.gateway`
        describes), from the live path's cluster when it is known, else the predicted one."""
        hop = getattr(self.predicted, "gateway", None)
        source = "actual" if self.actual is not None else "predicted"
        if hop is not None:
            return {"kind": "gateway", "gateway": hop.gateway, "inferred": hop.inferred, "from": source}
        if self.actual is None and self.predicted is None:
            return {"kind": "unknown", "gateway": None}
        return {"kind": "direct", "gateway": None, "from": source}


@dataclass(frozen=True)
class Report:
    """The whole document."""

    source: SourceInfo = field(default_factory=SourceInfo)
    mesh: MeshInfo = field(default_factory=MeshInfo)
    targets: tuple[TargetResult, ...] = ()
    findings: tuple[Diagnosis, ...] = ()
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        from probes import __version__

        diagnoses = [d for t in self.targets for d in unique(t.diagnoses)] + sorted_findings(self.findings)
        by_code = Counter(d.code for d in diagnoses)
        return {
            "schema": SCHEMA,
            "meshprobe_version": __version__,
            "source": self.source.to_json(),
            "mesh": self.mesh.to_json(),
            "targets": [t.to_json() for t in self.targets],
            "findings": [f.to_json() for f in sorted_findings(self.findings)],
            "notes": list(self.notes),
            "summary": {
                "passed": sum(1 for t in self.targets if t.outcome == "pass"),
                "failed": sum(1 for t in self.targets if t.outcome != "pass"),
                "by_code": {code: by_code[code] for code in sorted(by_code)},
            },
        }

    @property
    def exit_code(self) -> int:
        """0 all met, 1 a mesh-attributable failure, 3 failures not the mesh's doing."""
        failed = [t for t in self.targets if t.outcome != "pass"]
        if not failed:
            return EXIT_OK
        return EXIT_MESH_FAILURE if any(failure_is_mesh(t.diagnoses) for t in failed) else EXIT_NOT_MESH


def failure_is_mesh(diagnoses: Sequence[Diagnosis]) -> bool:
    """A failed target is the mesh's doing when a mesh code says so at level error, or at level
    warning when no DNS/upstream code explains the failure at level error."""
    if any(d.level == "error" and mesh_attributable(d) for d in diagnoses):
        return True
    if any(d.level == "error" and d.code in NOT_MESH_CODES for d in diagnoses):
        return False
    return any(mesh_attributable(d) for d in diagnoses)


def mesh_attributable(diagnosis: Diagnosis) -> bool:
    """An error or warning whose code is not DNS/upstream."""
    return diagnosis.level in ("error", "warning") and diagnosis.code not in NOT_MESH_CODES


def unique(diagnoses: Iterable[Diagnosis]) -> list[Diagnosis]:
    """First occurrence of each (code, message, resources), order kept."""
    seen: set[tuple[str, str, tuple[str, ...]]] = set()
    out: list[Diagnosis] = []
    for d in diagnoses:
        if d.key() not in seen:
            seen.add(d.key())
            out.append(d)
    return out


def sorted_findings(findings: Iterable[Diagnosis]) -> list[Diagnosis]:
    """De-duplicated, ordered by level, code, resources, message."""
    return sorted(
        unique(findings), key=lambda d: (LEVEL_RANK.get(d.level, 9), d.code, sorted(d.resources), d.message)
    )


def observed_json(result: ProbeResult | None, via: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """The report's ``observed`` object: the probe result's evidence fields, and ``answered_by``:
    which hop produced the reply (`answered_by`)."""
    if result is None:
        return None
    full = to_json(result)
    out = {k: full.get(k) for k in OBSERVED_KEYS}
    out["answered_by"] = answered_by(result, via is not None and via.get("kind") == "gateway")
    return out


ENVOY_REPLIES = frozenset(
    {
        Signature.ENVOY_404_NR,
        Signature.ENVOY_403_RBAC,
        Signature.ENVOY_503_UPSTREAM,
        Signature.ENVOY_503_NO_CLUSTER,
        Signature.ENVOY_504_TIMEOUT,
        Signature.ENVOY_BLACKHOLE_502,
        Signature.ENVOY_LOCAL_OTHER,
    }
)


def answered_by(result: ProbeResult, through_gateway: bool) -> str | None:
    from diag.predict.gateway_model import relayed_envoy_reply

    """"sidecar" for the sidecar's local reply (no ``x-envoy-upstream-service-time``: origin
    local-sidecar); "gateway" for an Envoy reply relayed on a path through an egress gateway (the
    sidecar adds that header to whatever its upstream, the gateway, answered, so the probe reads it
    as HTTP_STATUS: its status and body say it is Envoy's); "upstream" for
    another relayed or end-to-end reply; None when nothing answered (resets, timeouts, DNS)."""
    origin = result.origin.value if result.origin is not None else None
    if origin == "local-sidecar":
        return "sidecar"
    if origin == "via-route":
        http = result.http
        relayed = http is not None and relayed_envoy_reply(http.status, http.body_excerpt, origin) is not None
        return "gateway" if through_gateway and (result.signature in ENVOY_REPLIES or relayed) else "upstream"
    return "upstream" if origin in ("end-to-end-tls", "direct") else None


def outcome(expect: str, observed: ProbeResult | None, verdict: str | None, via_gateway: bool = False) -> str:
    """``pass`` or ``fail`` for one target.

    allowed: observed OK, or an origin's 4xx for an ``accept_4xx`` target (or, offline, predicted
    allowed/passthrough); blocked: not reached
    (observed anything but OK/HTTP_STATUS, or predicted blocked); via-gateway: allowed and the path
    goes through an egress gateway.
    """
    if observed is not None:
        reached = observed.signature in (Signature.OK, Signature.HTTP_STATUS)
        ok = accepted(observed)
    else:
        reached = ok = verdict in ("allowed", "passthrough")
    if expect == "blocked":
        return "fail" if reached else "pass"
    if expect == "via-gateway":
        return "pass" if ok and via_gateway else "fail"
    return "pass" if ok else "fail"


def by_code(reports: Sequence[Report]) -> dict[str, int]:
    """Code counts over several reports (for multi-namespace runs)."""
    total: Counter[str] = Counter()
    for report in reports:
        total.update(report.to_json()["summary"]["by_code"])
    return dict(sorted(total.items()))


def via_gateway(cluster: str | None) -> bool:
    """The cluster's name looks like an egress gateway's (``outbound|443|sub|istio-egressgateway...``):
    the guess when no snapshot is loaded (`diag.predict.gateway.gateway_for_cluster` decides otherwise)."""
    return bool(cluster) and "egressgateway" in str(cluster).split("|")[-1]


def assess_target(
    spec: Any,
    *,
    snapshot: Any,
    source: Any,
    expect: str = "allowed",
    observed: ProbeResult | None = None,
    sidecar: Any = None,
    dataplane: str = "sidecar",
    address: str | None = None,
    bypass: tuple[str, ...] = (),
    invalid_objects: tuple[Any, ...] = (),
    report_calls: tuple[Any, ...] = (),
) -> TargetResult:
    """Predict, read the live path (when sidecar evidence carries config), run the rules, and
    judge one target (``spec`` is a ``probes.model.TargetSpec``). ``report_calls`` are the report's
    other targets (``diag.predict.sidecar.Call``): a fix that would change any of them is not offered."""
    from diag.predict.sidecar import Call
    from diag.rules import diagnose
    from diag.rules.base import RuleContext

    path = spec.path if spec.protocol.value in ("http", "https") else "/"  # what the probe requests
    call = Call(
        host=spec.host, port=spec.port, protocol=spec.protocol.value, sni=spec.sni, address=address, path=path
    )
    config = getattr(sidecar, "config", None)
    prediction, actual, live_mode, declared_mode = _paths(snapshot, source, call, config)
    ctx = RuleContext(
        source=source, call=call, snapshot=snapshot, prediction=prediction, actual=actual, observed=observed,
        expect=expect, dataplane=dataplane, sidecar=sidecar, live_mode=live_mode, declared_mode=declared_mode,
        invalid_objects=invalid_objects, bypass=bypass, report_calls=report_calls,
    )
    hop = prediction.gateway if prediction is not None else None
    verdict = prediction.verdict if prediction is not None else None
    if hop is not None and hop.verdict == "blocked":
        verdict = "blocked"  # the sidecar routes it, the gateway does not
    result = outcome(expect, observed, verdict, hop is not None)
    diagnoses = tuple(diagnose(ctx))
    if expect != "blocked" and any(d.level == "error" and mesh_attributable(d) for d in diagnoses):
        result = "fail"  # e.g. MP0107: something answered, but not the host asked for
    return TargetResult(
        target=spec.raw, host=spec.host, port=spec.port, protocol=spec.protocol.value, url=spec.url,
        expect=expect, outcome=result, observed=observed, actual=actual, predicted=prediction,
        diagnoses=diagnoses,
    )


def _paths(snapshot: Any, source: Any, call: Any, config: Any) -> tuple[Any, Any, str | None, str | None]:
    """(prediction, live path, live mode, declared mode when it differs from the live one)."""
    from diag.live import path as livepath
    from diag.predict.gateway import with_gateway
    from diag.predict.sidecar import predict

    prediction = predict(snapshot, source, call) if snapshot is not None else None
    if not config:
        if prediction is not None:
            prediction = with_gateway(snapshot, source, call, prediction)
        return prediction, None, None, None
    actual = livepath.match(config, call)
    live_mode = livepath.effective_mode(config)
    declared_mode = None
    known = live_mode in ("REGISTRY_ONLY", "ALLOW_ANY")
    if prediction is not None and known and live_mode != prediction.mode:
        # The live catch-all is the ground truth for the mode: predict under it, and let
        # MP0120 report that the declared config disagrees.
        declared_mode = prediction.mode
        prediction = predict(snapshot, replace(source, mode_override=live_mode), call)
    if prediction is not None:
        live_cluster = actual.cluster if actual is not None else None
        prediction = with_gateway(snapshot, source, call, prediction, live_cluster)
    return prediction, actual, live_mode, declared_mode
