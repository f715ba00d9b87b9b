"""The lint codes (MP04xx) and how a lint finding is made: `CODES` and `finding`.

Kept apart from the checks (`diag.lint.run`, `diag.lint.istioctl`) so both can build findings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from diag.rules.base import Diagnosis


@dataclass(frozen=True)
class LintCode:
    code: str
    name: str
    level: str
    summary: str
    istio_code: str | None = None


CODES: dict[str, LintCode] = {
    c.code: c
    for c in (
        LintCode(
            "MP0401",
            "PortCapturedForProxies",
            "warning",
            "an entry captures a whole port for proxies",
            "IST0134",
        ),
        LintCode(
            "MP0402", "ConflictingProtocols", "warning", "one host and port, several protocols", "IST0177"
        ),
        LintCode("MP0403", "InvalidEntry", "error", "Istio's validation rejects the object", "IST0106"),
        LintCode("MP0404", "MixedCaseHost", "warning", "a host with upper-case letters in config"),
        LintCode("MP0405", "MeshInternalExternalHost", "info", "MESH_INTERNAL on an external host"),
        LintCode(
            "MP0406", "DoubleTlsConfig", "warning", "TLS origination on a port that already carries TLS"
        ),
        LintCode(
            "MP0407", "ExportHidesOwnNamespace", "warning", "exportTo excludes the entry's own namespace"
        ),
        LintCode("MP0408", "OverBroadEgress", "warning", "an entry opens far more than one destination"),
    )
}


def finding(
    code: str,
    message: str,
    resources: Sequence[str],
    *,
    istio: bool = False,
    evidence: Sequence[str] = (),
    level: str | None = None,
) -> Diagnosis:
    spec = CODES[code]
    return Diagnosis(
        code,
        spec.name,
        level or spec.level,
        message,
        tuple(resources),
        tuple(evidence),
        None,
        spec.istio_code if istio else None,
    )
