"""One target's verdict in a watch cycle: what ``meshprobe check``'s report says about it, reduced
to the closed sets the metrics use as labels (docs/watch.md, Cardinality)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NO_CODE = "none"  # a target with no diagnosis (passing, or failing for no known reason)


@dataclass(frozen=True)
class Verdict:
    """``passed``: the target met its expectation; ``signature``: what the probe observed (a
    ``probes.model.Signature`` value); ``code``: the primary (root-cause) diagnosis code, or
    ``none``; ``message``/``resources``/``fix``: that diagnosis's, for logs and Events."""

    target: str
    passed: bool
    signature: str
    code: str = NO_CODE
    message: str = ""
    resources: tuple[str, ...] = ()
    fix: str = ""  # the fix's one-line summary
    fix_yaml: str = ""
    duration: float = 0.0
    phases: tuple[tuple[str, float], ...] = ()

    @property
    def key(self) -> tuple[bool, str, str]:
        """What counts as a change of verdict (timings do not)."""
        return (self.passed, self.signature, self.code)

    def summary(self) -> str:
        state = "pass" if self.passed else "fail"
        return f"{state} {self.signature} {self.code}"


PHASE_NAMES = ("resolve", "connect", "tls", "request", "first_byte")


def verdicts_of(report: Any) -> list[Verdict]:
    """One verdict per target of a ``diag.report.Report`` (check's), in report order."""
    from diag.report import unique

    out: list[Verdict] = []
    for row in report.targets:
        observed = row.observed
        signature = str(observed.signature) if observed is not None else "PROBE_ERROR"
        diagnoses = unique(row.diagnoses)
        primary = diagnoses[0] if diagnoses and row.outcome != "pass" else None
        phases: tuple[tuple[str, float], ...] = ()
        if observed is not None:
            phases = tuple(
                (name, float(value))
                for name in PHASE_NAMES
                if (value := getattr(observed.phases, name, None)) is not None
            )
        out.append(
            Verdict(
                target=row.target,
                passed=row.outcome == "pass",
                signature=signature,
                code=primary.code if primary is not None else NO_CODE,
                message=primary.message if primary is not None else "",
                resources=tuple(sorted(set(primary.resources))) if primary is not None else (),
                fix=primary.fix.summary if primary is not None and primary.fix is not None else "",
                fix_yaml=primary.fix.yaml if primary is not None and primary.fix is not None else "",
                duration=float(observed.elapsed) if observed is not None else 0.0,
                phases=phases,
            )
        )
    return out

