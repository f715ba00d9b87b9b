"""A stand-in Kubernetes API server for the lab: real HTTPS on 127.0.0.1, the real API's paths,
verbs, status codes and object shapes, so that the ``kubernetes`` Python client and ``kubectl``
work against it unchanged (``docs/apiserver.md`` says what it serves and what it does not model).

    with ApiServer(workdir, LabCA(workdir)) as api:        # or api = ApiServer(...).start(); api.close()
        kubeconfig = api.kubeconfig()                      # admin (system:masters), context "lab"
        token = api.add_user("alice", groups=["dev"])      # RBAC from the Roles/bindings in the store
        api.store.create({...})                            # in-process reads/writes (no RBAC)
        api.add_mutating(fn) / api.add_validating(fn)      # admission hooks (AdmissionRequest)
        api.set_log_source(fn)                             # what pods/log serves
        api.inject_fault("create", "pods", status=500)     # next matching request fails
        api.drop_watches(); api.pause(); api.resume()

Store: ``get``, ``list``, ``create``, ``update``, ``patch_status``, ``delete``, ``remove``,
``subscribe`` (one dispatcher thread, commit order), ``objects``, ``compact`` (older watch
resourceVersions then get 410). Controllers: namespaces, garbage collector, Jobs (+ TTL),
Deployments, ReplicaSets, EndpointSlices.
"""

from __future__ import annotations

from lab.apiserver.admission import AdmissionRequest, pod_security_restricted
from lab.apiserver.errors import AdmissionDenied, ApiError, Conflict, LogUnavailable, NotFound
from lab.apiserver.server import ApiServer
from lab.apiserver.store import Store

__all__ = [
    "AdmissionDenied",
    "AdmissionRequest",
    "ApiError",
    "ApiServer",
    "Conflict",
    "LogUnavailable",
    "NotFound",
    "Store",
    "pod_security_restricted",
]
