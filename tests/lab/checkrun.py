"""Helpers for the lab tests that run `meshprobe check` against the lab's API: run it in-process,
read the codes per target, and find what a run left behind (asserted through the API)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

RUN_LABEL = "meshprobe.io/run-id"


def run_check(lab: Any, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    """`meshprobe check --kubeconfig LAB -o json ARGS`: the exit code and the parsed JSON ({} if none)."""
    from diag.cli import main

    code = main(["check", "--kubeconfig", str(lab.kubeconfig), "-o", "json", *args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, (json.loads(captured.out) if captured.out.strip() else {})


def codes(report: dict[str, Any]) -> dict[str, list[str]]:
    """Target → its sorted diagnosis codes."""
    return {t["target"]: sorted({d["code"] for d in t["diagnoses"]}) for t in report["targets"]}


def leftovers(lab: Any) -> list[str]:
    """Probe pods and Jobs that exist right now."""
    store = lab.control_plane.store
    pods = [p for p in store.list("pods") if RUN_LABEL in (p["metadata"].get("labels") or {})]
    jobs = store.list("jobs", group="batch")
    return [p["metadata"]["name"] for p in pods] + [j["metadata"]["name"] for j in jobs]


def wait_clean(lab: Any, seconds: float = 10.0) -> list[str]:
    """What is still left after waiting up to ``seconds`` for it to go."""
    deadline = time.monotonic() + seconds
    while (left := leftovers(lab)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left
