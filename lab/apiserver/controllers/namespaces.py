"""Namespaces: every new namespace gets its ``default`` ServiceAccount and ``kube-root-ca.crt``
ConfigMap (pkg/controller/serviceaccount, pkg/controller/certificates/rootcacertpublisher), done
at once when the namespace is created; a namespace being deleted is emptied, then removed
(pkg/controller/namespace/deletion/namespaced_resources_deleter.go)."""

from __future__ import annotations

import contextlib
from typing import Any

from lab.apiserver.controllers.base import Worker
from lab.apiserver.errors import ApiError

RECHECK_SECONDS = 0.2


class NamespaceController(Worker):
    name = "namespace-controller"

    def __init__(self, store: Any, ca_pem: str) -> None:
        super().__init__(store)
        self.ca_pem = ca_pem
        store.created_hooks.append(self._on_created)

    def _on_created(self, obj: dict[str, Any]) -> None:
        if obj.get("kind") != "Namespace" or obj.get("apiVersion") != "v1":
            return
        ns = obj["metadata"]["name"]
        for child in (
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": ns}},
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": "kube-root-ca.crt",
                    "namespace": ns,
                    "annotations": {
                        "kubernetes.io/description": (
                            "Contains a CA bundle that can be used to verify the kube-apiserver when "
                            "using internal endpoints such as the internal service IP or "
                            "kubernetes.default.svc. No other usage is guaranteed across distributions "
                            "of Kubernetes clusters."
                        )
                    },
                },
                "data": {"ca.crt": self.ca_pem},
            },
        ):
            with contextlib.suppress(ApiError):  # already there
                self.store.create(child)

    def wants(self, obj: dict[str, Any]) -> bool:
        return obj.get("kind") == "Namespace" and bool(obj["metadata"].get("deletionTimestamp"))

    def handle(self, event_type: str, obj: dict[str, Any]) -> None:
        if event_type != "DELETED":
            self.fire(obj["metadata"]["name"])

    def fire(self, key: Any) -> None:
        namespace = str(key)
        ns = self.store.get("namespaces", None, namespace)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        left = 0
        for rtype in self.store.registry.types:
            if not rtype.namespaced or not rtype.stored:
                continue
            for obj in self.store.list(rtype.plural, namespace, rtype.group):
                left += 1
                if obj["metadata"].get("deletionTimestamp"):
                    continue
                with contextlib.suppress(ApiError):
                    self.store.delete_object(rtype.plural, namespace, obj["metadata"]["name"], rtype.group)
        if left:
            self.after(RECHECK_SECONDS, namespace)
        else:
            self.store.remove("namespaces", None, namespace)
