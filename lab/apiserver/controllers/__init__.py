"""The controller-manager pieces the stand-in runs beside the API: namespace lifecycle (default
ServiceAccount, emptying a namespace being deleted), the garbage collector, the Job controller
with its TTL-after-finished part, the Deployment and ReplicaSet controllers (with the ownership
rules of ``claims``) and the EndpointSlice controller."""

from __future__ import annotations

from typing import Any

from lab.apiserver.controllers.base import Worker
from lab.apiserver.controllers.deployments import DeploymentController
from lab.apiserver.controllers.endpointslices import EndpointSliceController
from lab.apiserver.controllers.gc import GarbageCollector
from lab.apiserver.controllers.jobs import JobController
from lab.apiserver.controllers.namespaces import NamespaceController
from lab.apiserver.controllers.replicasets import ReplicaSetController


class Controllers:
    def __init__(self, store: Any, ca_pem: str) -> None:
        self.namespaces = NamespaceController(store, ca_pem)
        self.gc = GarbageCollector(store)
        self.jobs = JobController(store)
        self.deployments = DeploymentController(store)
        self.replicasets = ReplicaSetController(store)
        self.endpointslices = EndpointSliceController(store)
        self.workers: list[Worker] = [
            self.namespaces,
            self.gc,
            self.jobs,
            self.deployments,
            self.replicasets,
            self.endpointslices,
        ]

    def start(self) -> None:
        for worker in self.workers:
            worker.start()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        return all(worker.wait_idle(timeout) for worker in self.workers)

    def close(self) -> None:
        for worker in self.workers:
            worker.close()
