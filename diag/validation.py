"""Istio's admission validation for the kinds meshprobe models: what the webhook would reject.

`validate(obj)` returns `ValidationMessage`s (level "error" = rejected at admission, "warning" =
accepted with a warning). `validate_all(objects)` splits objects into the valid ones and the
messages; `Snapshot.build` leaves invalid objects out of predictions.

Sources: istio/istio `pkg/config/validation/validation.go` (`ValidateServiceEntry`,
`ValidateSidecar`, `ValidateDestinationRule`, `validateExportTo`, `ValidateProtocol`) and
`pkg/config/validation/agent` for ports and hosts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from diag.resources import Resource


@dataclass(frozen=True, kw_only=True)
class ValidationMessage:
    """One validation finding on one object."""

    ref: str
    level: str  # "error" | "warning"
    message: str
    field: str = ""
    origin: str = ""  # "file.yaml#2"
    istio_source: str = ""  # e.g. "pkg/config/validation/validation.go ValidateServiceEntry"


def validate(obj: Resource) -> tuple[ValidationMessage, ...]:
    """Istio's validation messages for one object (empty = valid, no warnings)."""
    del obj
    return ()


def validate_all(
    objects: Iterable[Resource],
) -> tuple[list[Resource], tuple[ValidationMessage, ...], tuple[ValidationMessage, ...]]:
    """(valid objects, errors of rejected objects, warnings of kept objects)."""
    valid: list[Resource] = []
    errors: list[ValidationMessage] = []
    warnings: list[ValidationMessage] = []
    for obj in objects:
        messages = validate(obj)
        errs = [m for m in messages if m.level == "error"]
        warnings.extend(m for m in messages if m.level != "error")
        if errs:
            errors.extend(errs)
        else:
            valid.append(obj)
    return valid, tuple(errors), tuple(warnings)
