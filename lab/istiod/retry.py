"""Retry policies of HTTP routes: MeshConfig ``defaultHttpRetryPolicy`` and a VirtualService
``retries`` block → an Envoy ``retry_policy``.

Pilot sources: ``pilot/pkg/networking/core/route/retry/retry.go`` ``ConvertPolicy`` and
``DefaultPolicy`` (2 retries on ``connect-failure,refused-stream,unavailable,cancelled,
retriable-status-codes`` with the ``previous_hosts`` predicate and 5 host-selection attempts).
Used by the default routes (``lab/istiod/routes.py``) and VirtualService routes
(``lab/istiod/vsroutes.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lab.istiod.envoy import PREVIOUS_HOSTS

RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"


def retry_policy(mesh_policy: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``retry.ConvertPolicy`` of MeshConfig ``defaultHttpRetryPolicy``: unset → the default policy;
    ``attempts`` ≤ 0 → none; else its attempts and ``retryOn`` (numbers become retriable status
    codes)."""
    policy: dict[str, Any] = {
        "retry_on": RETRY_ON,
        "num_retries": 2,
        "retry_host_predicate": [
            {"name": "envoy.retry_host_predicates.previous_hosts", "typed_config": {"@type": PREVIOUS_HOSTS}}
        ],
        "host_selection_retry_max_attempts": 5,
    }
    if mesh_policy is None:
        return policy
    attempts = int(mesh_policy.get("attempts") or 0)
    if attempts <= 0:
        return None
    policy["num_retries"] = attempts
    retry_on = str(mesh_policy.get("retryOn") or "")
    if retry_on:
        parts = [p.strip() for p in retry_on.split(",") if p.strip()]
        codes = [int(p) for p in parts if p.isdigit()]
        words = [p for p in parts if not p.isdigit()]
        if codes and "retriable-status-codes" not in words:
            words.append("retriable-status-codes")
        policy["retry_on"] = ",".join(words)
        if codes:
            policy["retriable_status_codes"] = codes
    return policy
