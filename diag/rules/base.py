"""What every diagnosis rule shares: the `Diagnosis` it emits (with an optional `Fix`), the
`RuleContext` it reads, and the `Rule` record each module exports as ``RULE``.

A rule is a pure function of its context: the snapshot of declared config (may be None when only
the live sidecar is known), the source proxy, the call, the prediction (``diag.predict.sidecar``), the
actual live path (``diag.live.path``, None offline), the observation (``probes.model.ProbeResult``,
None offline) and the expectation. Rules never call the API: they read a snapshot, so the same
rule runs live, offline from files and in the lab.

The facts several rules need (blocked? reached? which mode, from where?) are properties here so
every rule reads them the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from diag.live.path import BLACKHOLE, PASSTHROUGH, LivePath
from diag.model.resources import Resource
from diag.model.snapshot import Snapshot
from diag.predict.model import Call, Prediction, Source
from probes.model import ProbeResult, SidecarEvidence, Signature, accepted

LEVELS = ("error", "warning", "info")

# What a client sees when the sidecar blackholes a call (docs/signatures.md).
BLOCK_SIGNATURES = frozenset(
    {Signature.ENVOY_BLACKHOLE_502, Signature.RESET_BEFORE_RESPONSE, Signature.TCP_CLOSED_AFTER_CONNECT}
)
REACHED_SIGNATURES = frozenset({Signature.OK, Signature.HTTP_STATUS})
DNS_SIGNATURES = frozenset(
    {Signature.DNS_NXDOMAIN, Signature.DNS_SERVFAIL, Signature.DNS_TIMEOUT, Signature.DNS_NO_ANSWER}
)
BLOCK_DECISIONS = frozenset({BLACKHOLE, "block_all"})
PASS_DECISIONS = frozenset({PASSTHROUGH, "allow_any"})


@dataclass(frozen=True)
class Fix:
    """The smallest safe change, as YAML the user can apply (``objects`` = the parsed documents)."""

    summary: str
    yaml: str
    objects: tuple[Mapping[str, Any], ...] = ()

    def to_json(self) -> dict[str, str]:
        return {"summary": self.summary, "yaml": self.yaml}


@dataclass(frozen=True)
class Diagnosis:
    """One finding about one target (or, for lint, about the config). ``supersedes`` lists codes
    this root cause makes redundant for the same target (the "Order" in docs/codes/README.md)."""

    code: str
    name: str
    level: str
    message: str
    resources: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()
    fix: Fix | None = None
    istio_code: str | None = None
    supersedes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "code": self.code,
            "name": self.name,
            "level": self.level,
            "message": self.message,
            "resources": sorted(set(self.resources)),
            "evidence": list(self.evidence),
            "fix": self.fix.to_json() if self.fix else None,
        }
        if self.istio_code:
            out["istio_code"] = self.istio_code
        return out

    def key(self) -> tuple[str, str, tuple[str, ...]]:
        """Identity for de-duplication."""
        return (self.code, self.message, tuple(sorted(set(self.resources))))


@dataclass(frozen=True)
class RuleContext:
    """Everything a rule may read about one target (see module docstring)."""

    source: Source
    call: Call
    snapshot: Snapshot | None = None
    prediction: Prediction | None = None
    actual: LivePath | None = None
    observed: ProbeResult | None = None
    expect: str = "allowed"
    dataplane: str = "sidecar"  # sidecar | ambient | none
    sidecar: SidecarEvidence | None = None
    live_mode: str | None = None  # effective mode read from the live catch-all, if known
    declared_mode: str | None = None  # the mode the declared config gives, when the live one differs
    invalid_objects: tuple[Resource, ...] = ()  # loaded but rejected by validation
    bypass: tuple[str, ...] = ()  # why this call would not be captured (MP0204), from pod config
    report_calls: tuple[Call, ...] = ()  # the report's other targets: a fix must not change them

    @property
    def mode(self) -> str:
        """Effective outbound mode: the live catch-all when known, else the prediction's."""
        if self.live_mode and self.live_mode != "UNKNOWN":
            return self.live_mode
        return self.prediction.mode if self.prediction else "UNKNOWN"

    @property
    def mode_from(self) -> str:
        if self.live_mode and self.live_mode != "UNKNOWN":
            return "sidecar catch-all (virtualOutbound-catchall-tcp)"
        return self.prediction.mode_from if self.prediction else ""

    @property
    def decision(self) -> str | None:
        """Envoy's one-word decision: actual if known, else predicted."""
        if self.actual is not None:
            return self.actual.envoy
        return self.prediction.envoy if self.prediction else None

    @property
    def cluster(self) -> str | None:
        if self.actual is not None:
            return self.actual.cluster
        return self.prediction.path.cluster if self.prediction else None

    @property
    def signature(self) -> Signature | None:
        return self.observed.signature if self.observed else None

    @property
    def blocked(self) -> bool:
        """The call ends in the blackhole (path), or was observed blocked where the path agrees."""
        by_path = self.decision in BLOCK_DECISIONS
        if self.observed is None:
            if self.actual is not None:
                return by_path
            return by_path or (self.prediction is not None and self.prediction.verdict == "blocked")
        if self.signature in BLOCK_SIGNATURES:
            return (
                by_path
                or self.decision is None
                or self.prediction is None
                or (self.prediction.verdict == "blocked")
            )
        return False

    @property
    def reached(self) -> bool:
        """Traffic got through the mesh (observed, else predicted allowed or passed through)."""
        if self.observed is not None:
            return self.signature in REACHED_SIGNATURES
        if self.actual is not None:
            return self.actual.outcome == "cluster" and self.decision not in BLOCK_DECISIONS
        if self.prediction is None:
            return False
        return self.prediction.verdict in ("allowed", "passthrough")

    @property
    def failed(self) -> bool:
        """The target did not meet its expectation."""
        if self.expect == "blocked":
            return self.reached
        if self.observed is not None:
            return not accepted(self.observed)
        return not self.reached

    @property
    def protocol(self) -> str:
        return self.call.protocol.lower()


@dataclass(frozen=True)
class Rule:
    """A registered rule: stable code, name, default level, and whether its finding is the mesh's
    doing (exit 1) or not (exit 3: DNS, upstream)."""

    code: str
    name: str
    level: str
    evaluate: Callable[[RuleContext], Sequence[Diagnosis]]
    mesh: bool = True
    sidecar_only: bool = False  # suppressed in ambient/no-sidecar sources (docs/codes/MP0303.md)

    def diagnose(
        self,
        message: str,
        *,
        level: str | None = None,
        resources: Sequence[str] = (),
        evidence: Sequence[str] = (),
        fix: Fix | None = None,
        supersedes: Sequence[str] = (),
        istio_code: str | None = None,
    ) -> Diagnosis:
        """A diagnosis carrying this rule's code and name."""
        return Diagnosis(
            code=self.code,
            name=self.name,
            level=level or self.level,
            message=message,
            resources=tuple(r for r in resources if r),
            evidence=tuple(e for e in evidence if e),
            fix=fix,
            istio_code=istio_code,
            supersedes=tuple(supersedes),
        )


def observed_evidence(ctx: RuleContext) -> list[str]:
    """Evidence lines common to most rules: what was observed and which path was taken."""
    lines: list[str] = []
    obs = ctx.observed
    if obs is not None:
        detail = f"observed {obs.signature.value}"
        if obs.http is not None and obs.http.status is not None:
            detail += (
                f" (HTTP {obs.http.status}{', ' + obs.http.envoy_reason if obs.http.envoy_reason else ''})"
            )
        if obs.origin is not None:
            detail += f", answered by {obs.origin.value}"
        lines.append(detail)
    if ctx.actual is not None:
        a = ctx.actual
        lines.append(f"live sidecar: listener {a.listener} → {a.filter_chain} → {a.envoy}")
    elif ctx.prediction is not None:
        p = ctx.prediction.path
        lines.append(f"predicted: listener {p.listener} → {p.filter_chain} → {ctx.prediction.envoy}")
    if ctx.prediction is not None:
        lines.extend(f"prediction note: {n}" for n in ctx.prediction.notes)
        lines.extend(f"assumption: {a}" for a in ctx.prediction.assumptions)
    return lines


def with_level(diagnosis: Diagnosis, level: str) -> Diagnosis:
    return replace(diagnosis, level=level)
