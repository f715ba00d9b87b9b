"""API errors as the real API server reports them: a ``Status`` body with reason, code and message.

Message formats follow staging/src/k8s.io/apimachinery/pkg/api/errors/errors.go (``NewNotFound``,
``NewAlreadyExists``, ``NewConflict``, ``NewForbidden``, ``NewInvalid``, ``NewBadRequest``,
``NewMethodNotSupported``, ``NewResourceExpired``, ``NewInternalError``).

    ApiError                      a Status with code and reason
    ├── NotFound                  404 NotFound       `pods "x" not found`
    ├── AlreadyExists             409 AlreadyExists  `pods "x" already exists`
    ├── Conflict                  409 Conflict       `Operation cannot be fulfilled on pods "x": ...`
    ├── Forbidden                 403 Forbidden      `pods "x" is forbidden: ...`
    ├── Invalid                   422 Invalid        `Pod "x" is invalid: spec.f: Forbidden: ...`
    ├── BadRequest                400 BadRequest
    ├── Expired                   410 Expired        (a watch from a compacted resourceVersion)
    ├── AdmissionDenied           the code and message an admission hook chose (403, 400 or 422)
    └── LogUnavailable            400 BadRequest     (the log source cannot serve this container)
"""

from __future__ import annotations

from typing import Any

CONFLICT_TAIL = "the object has been modified; please apply your changes to the latest version and try again"

CAUSE_REASONS = {
    "Forbidden": "FieldValueForbidden",
    "Required value": "FieldValueRequired",
    "Invalid value": "FieldValueInvalid",
    "Unsupported value": "FieldValueNotSupported",
    "Duplicate value": "FieldValueDuplicate",
}
REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def qualified(resource: str, group: str) -> str:
    """``pods`` or ``jobs.batch``: how messages name a resource (schema.GroupResource.String)."""
    return f"{resource}.{group}" if group else resource


class ApiError(Exception):
    """An error the API answers with a ``Status`` body."""

    def __init__(
        self, code: int, message: str, reason: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason if reason is not None else REASONS.get(code, "")
        self.details = details

    def status(self) -> dict[str, Any]:
        """The ``Status`` object (metav1.Status) for this error."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def _details(name: str, group: str, kind: str) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    details["kind"] = kind
    return details


class NotFound(ApiError):
    def __init__(self, resource: str, name: str, group: str = "") -> None:
        super().__init__(
            404,
            f'{qualified(resource, group)} "{name}" not found',
            "NotFound",
            _details(name, group, resource),
        )


class AlreadyExists(ApiError):
    def __init__(self, resource: str, name: str, group: str = "") -> None:
        super().__init__(
            409,
            f'{qualified(resource, group)} "{name}" already exists',
            "AlreadyExists",
            _details(name, group, resource),
        )


class Conflict(ApiError):
    def __init__(self, resource: str, name: str, group: str = "", why: str = CONFLICT_TAIL) -> None:
        message = f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": {why}'
        super().__init__(409, message, "Conflict", _details(name, group, resource))


class Forbidden(ApiError):
    def __init__(self, resource: str, name: str, group: str, why: str) -> None:
        subject = qualified(resource, group) + (f' "{name}"' if name else "")
        message = f"{subject} is forbidden: {why}" if resource else f"forbidden: {why}"
        super().__init__(403, message, "Forbidden", _details(name, group, resource))


class Invalid(ApiError):
    """``causes`` are (field, kind, detail) triples, e.g. ("spec.x", "Forbidden", "may not be changed")."""

    def __init__(self, kind: str, name: str, group: str, causes: list[tuple[str, str, str]]) -> None:
        texts = [f"{field}: {what}" + (f": {detail}" if detail else "") for field, what, detail in causes]
        joined = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
        details = _details(name, group, kind)
        details["causes"] = [
            {
                "reason": CAUSE_REASONS.get(what.split(":")[0], "FieldValueInvalid"),
                "message": what + (f": {detail}" if detail else ""),
                "field": field,
            }
            for field, what, detail in causes
        ]
        super().__init__(422, f'{qualified(kind, group)} "{name}" is invalid: {joined}', "Invalid", details)


class BadRequest(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__(400, message, "BadRequest")


class Expired(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__(410, message, "Expired")


class AdmissionDenied(ApiError):
    """Raised by an admission hook; the API answers with exactly this code and message."""

    def __init__(self, message: str, code: int = 403) -> None:
        super().__init__(code, message, REASONS.get(code, "Forbidden"))


class LogUnavailable(ApiError):
    """Raised by a log source that cannot serve the container's log (the API answers 400)."""

    def __init__(self, message: str) -> None:
        super().__init__(400, message, "BadRequest")


def method_not_allowed() -> ApiError:
    return ApiError(
        405, "the server does not allow this method on the requested resource", "MethodNotAllowed"
    )


def unsupported_media_type(accepted: list[str]) -> ApiError:
    return ApiError(
        415,
        "the body of the request was in an unknown format - accepted media types include: "
        + ", ".join(accepted),
        "UnsupportedMediaType",
    )


def server_could_not_find() -> ApiError:
    """An unregistered group, version or resource (apiserver's NotFound handler)."""
    return ApiError(404, "the server could not find the requested resource", "NotFound", {})


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")
