"""`diag.cluster.api_error`: every API failure becomes one meshprobe error with the right exit code
and a message a person can act on (the table in the module docstring)."""

from __future__ import annotations

import pytest

from diag import errors
from diag.cluster import Conflict, NotFound, Status, WatchExpired, api_error

AUTHZ = (
    'jobs.batch is forbidden: User "viewer" cannot create resource "jobs" in API group "batch" '
    'in the namespace "shop"'
)
PSA = (
    'pods "meshprobe-1-abc" is forbidden: violates PodSecurity "restricted:latest": '
    'allowPrivilegeEscalation != false (container "istio-init" must set ...)'
)
CLUSTER_SCOPE = (
    'namespaces is forbidden: User "u" cannot list resource "namespaces" in API group "" at the cluster scope'
)
WEBHOOK = 'admission webhook "validation.gatekeeper.sh" denied the request: [no-root] root is not allowed'


@pytest.mark.parametrize(
    ("status", "kind", "code", "needle"),
    [
        (Status(0, "unreachable", "Connection refused"), errors.ClusterUnreachable, 4, "cannot reach"),
        (Status(401, "Unauthorized", "Unauthorized"), errors.PermissionDenied, 4, "refused the credentials"),
        (Status(403, "Forbidden", AUTHZ), errors.PermissionDenied, 4,
         "viewer cannot create batch/jobs in namespace shop"),
        (Status(403, "Forbidden", CLUSTER_SCOPE), errors.PermissionDenied, 4,
         "u cannot list namespaces at cluster scope"),
        (Status(403, "Forbidden", PSA), errors.AdmissionDenied, 4,
         'violates PodSecurity "restricted:latest"'),
        (Status(400, "BadRequest", WEBHOOK), errors.AdmissionDenied, 4, "gatekeeper"),
        (Status(403, "Forbidden", 'exceeded quota: pods, requested: pods=1, used: pods=10, limited: pods=10'),
         errors.AdmissionDenied, 4, "exceeded quota"),
        (Status(404, "NotFound", 'jobs.batch "x" not found'), NotFound, 4, "not found"),
        (Status(409, "AlreadyExists", 'jobs.batch "x" already exists'), Conflict, 4, "already exists"),
        (Status(410, "Expired", "too old resource version: 1 (200)"), WatchExpired, 4, "too old"),
        (Status(500, "InternalError", "etcdserver: request timed out"), errors.InfraError, 4,
         "500 etcdserver: request timed out"),
        (Status(422, "Invalid", 'Job.batch "x" is invalid: spec.template.spec.restartPolicy: Unsupported'),
         errors.AdmissionDenied, 4, "is invalid"),
    ],
)  # fmt: skip
def test_api_errors_map_to_one_clear_line(
    status: Status, kind: type[Exception], code: int, needle: str
) -> None:
    error = api_error(status, "create job shop/x")
    assert type(error) is kind
    assert error.exit_code == code
    assert needle in error.message
    assert "\n" not in error.message


def test_authorizer_denial_is_not_mistaken_for_admission() -> None:
    """A 403 naming a user and verb is the authorizer; a 403 without one came from admission."""
    assert isinstance(api_error(Status(403, "Forbidden", AUTHZ), "x"), errors.PermissionDenied)
    assert not isinstance(api_error(Status(403, "Forbidden", PSA), "x"), errors.PermissionDenied)
