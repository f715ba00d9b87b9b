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

from diag.model.resources import DestinationRule, Resource, ServiceEntry, Sidecar, VirtualService
from diag.model.validation_fast import service_entry_clean, sidecar_clean
from diag.model.validation_rules import (
    Issue,
    destination_rule_issues,
    service_entry_issues,
    sidecar_issues,
    virtual_service_issues,
)

_SOURCES = {
    "ServiceEntry": "pkg/config/validation/validation.go ValidateServiceEntry",
    "Sidecar": "pkg/config/validation/validation.go ValidateSidecar",
    "DestinationRule": "pkg/config/validation/validation.go ValidateDestinationRule",
    "VirtualService": "pkg/config/validation/validation.go ValidateVirtualService",
}


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
    # Fast path: the common well-formed shapes, which the careful checks below find nothing in.
    if type(obj) is ServiceEntry:
        if service_entry_clean(obj):
            return ()
    elif type(obj) is Sidecar and sidecar_clean(obj):
        return ()
    issues: list[Issue]
    if isinstance(obj, ServiceEntry):
        issues = list(service_entry_issues(obj))
    elif isinstance(obj, Sidecar):
        issues = list(sidecar_issues(obj))
    elif isinstance(obj, DestinationRule):
        issues = list(destination_rule_issues(obj))
    elif isinstance(obj, VirtualService):
        issues = list(virtual_service_issues(obj))
    else:
        return ()
    return tuple(
        ValidationMessage(
            ref=obj.ref,
            level=level,
            message=message,
            field=where,
            origin=obj.origin,
            istio_source=_SOURCES.get(obj.kind, ""),
        )
        for level, where, message in issues
    )


def validate_all(
    objects: Iterable[Resource],
) -> tuple[list[Resource], tuple[ValidationMessage, ...], tuple[ValidationMessage, ...]]:
    """(valid objects, errors of rejected objects, warnings of kept objects)."""
    valid: list[Resource] = []
    errors: list[ValidationMessage] = []
    warnings: list[ValidationMessage] = []
    for obj in objects:
        messages = validate(obj)
        if not messages:
            valid.append(obj)
            continue
        errs = [m for m in messages if m.level == "error"]
        warnings.extend(m for m in messages if m.level != "error")
        if errs:
            errors.extend(errs)
        else:
            valid.append(obj)
    return valid, tuple(errors), tuple(warnings)
