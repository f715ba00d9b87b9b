"""`diag.pod.cleanup` without a cluster: durations, which runs are due, and that an object without
meshprobe's label is never chosen even when the API server returns it (a selector ignored)."""

from __future__ import annotations

from typing import Any

import pytest

from diag import errors
from diag.pod import cleanup

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z
MANAGED = {"app.kubernetes.io/managed-by": "meshprobe"}


def stamp(age_s: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(NOW - age_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def job(name: str, age_s: float, *, done: bool, labels: dict[str, str] | None = None) -> dict[str, Any]:
    conditions = [{"type": "Complete", "status": "True"}] if done else []
    return {
        "metadata": {
            "name": name,
            "namespace": "shop",
            "labels": MANAGED | {"meshprobe.io/run-id": name[-4:]} if labels is None else labels,
            "creationTimestamp": stamp(age_s),
        },
        "status": {"conditions": conditions},
    }


def pod(
    name: str, age_s: float, *, phase: str, job: str | None = None, labels: dict[str, str] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "shop",
        "labels": MANAGED if labels is None else labels,
        "creationTimestamp": stamp(age_s),
    }
    if job:
        meta["ownerReferences"] = [{"kind": "Job", "name": job, "controller": True}]
    return {"metadata": meta, "spec": {}, "status": {"phase": phase}}


class Unselective:
    """An API server that ignores label selectors: returns every Job or pod it has."""

    def __init__(self, jobs: list[dict[str, Any]], pods: list[dict[str, Any]]) -> None:
        self.jobs, self.pods = jobs, pods

    def list(self, path: str, *, label_selector: str | None = None, what: str = "") -> list[dict[str, Any]]:
        return list(self.jobs if "/jobs" in path else self.pods)


def found_names(found: cleanup.Found) -> dict[str, list[str]]:
    return {
        "jobs": [j.name for j in found.jobs],
        "pods": [p.name for p in found.pods],
        "active": [a.name for a in found.active],
    }


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("0s", 0.0),
        ("90s", 90.0),
        ("15m", 900.0),
        ("1h30m", 5400.0),
        ("2d", 172800.0),
        ("500ms", 0.5),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert cleanup.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "1", "-1h", "1h 30m", "h", "1y", "1.5.5h"])
def test_bad_durations_are_usage_errors(text: str) -> None:
    with pytest.raises(errors.UsageError, match="expected a duration"):
        cleanup.parse_duration(text)


def test_finished_and_stale_runs_are_due_young_running_ones_are_not() -> None:
    server = Unselective(
        [
            job("meshprobe-done", 30, done=True),
            job("meshprobe-stale", 2 * 3600, done=False),
            job("meshprobe-live", 30, done=False),
        ],
        [
            pod("meshprobe-done-x", 30, phase="Succeeded", job="meshprobe-done"),
            pod("meshprobe-stale-x", 2 * 3600, phase="Running", job="meshprobe-stale"),
            pod("meshprobe-live-x", 30, phase="Running", job="meshprobe-live"),
            pod("meshprobe-lone", 30, phase="Failed"),
            pod("meshprobe-lone-live", 30, phase="Running"),
        ],
    )
    found = cleanup.find(server, "shop", None, now=NOW)  # type: ignore[arg-type]
    assert found_names(found) == {
        "jobs": ["meshprobe-done", "meshprobe-stale"],
        "pods": ["meshprobe-done-x", "meshprobe-lone", "meshprobe-stale-x"],
        "active": ["meshprobe-live", "meshprobe-lone-live"],  # the live Job's pod goes with it, later
    }
    assert [p.name for p in found.lone_pods] == ["meshprobe-lone"]
    assert found.jobs[0].run_id == "done" and found.jobs[0].finished


def test_older_than_replaces_the_default() -> None:
    server = Unselective(
        [job("meshprobe-done", 30, done=True), job("meshprobe-old", 700, done=False)],
        [pod("meshprobe-old-x", 700, phase="Running", job="meshprobe-old")],
    )
    found = cleanup.find(server, "shop", 600.0, now=NOW)  # type: ignore[arg-type]
    assert found_names(found) == {
        "jobs": ["meshprobe-old"],
        "pods": ["meshprobe-old-x"],
        "active": ["meshprobe-done"],
    }


def test_nothing_without_the_label_is_ever_chosen() -> None:
    other = {"app.kubernetes.io/managed-by": "helm", "meshprobe.io/run-id": "abcd"}
    server = Unselective(
        [job("meshprobe-lookalike", 9 * 3600, done=True, labels=other)],
        [
            pod(
                "meshprobe-lookalike-x", 9 * 3600, phase="Succeeded", job="meshprobe-lookalike", labels=other
            ),
            pod("meshprobe-unlabelled", 9 * 3600, phase="Failed", labels={}),
        ],
    )
    found = cleanup.find(server, "shop", 0.0, now=NOW)  # type: ignore[arg-type]
    assert found_names(found) == {"jobs": [], "pods": [], "active": []}


def test_the_label_check_can_fail() -> None:
    """The same objects with meshprobe's label are chosen: the test above is not vacuous."""
    server = Unselective(
        [job("meshprobe-lookalike", 9 * 3600, done=True)],
        [pod("meshprobe-unlabelled", 9 * 3600, phase="Failed")],
    )
    found = cleanup.find(server, "shop", 0.0, now=NOW)  # type: ignore[arg-type]
    assert found_names(found) == {
        "jobs": ["meshprobe-lookalike"],
        "pods": ["meshprobe-unlabelled"],
        "active": [],
    }


def test_ephemeral_probe_containers_are_found() -> None:
    worker = {
        "metadata": {"name": "worker", "namespace": "shop", "labels": {"app": "w"}},
        "spec": {
            "ephemeralContainers": [
                {"name": "meshprobe-1a2b"},
                {"name": "debugger-x"},
                {"name": "meshprobe-9f"},
            ]
        },
        "status": {
            "ephemeralContainerStatuses": [
                {"name": "meshprobe-1a2b", "state": {"terminated": {"exitCode": 0}}},
                {"name": "meshprobe-9f", "state": {"running": {}}},
            ]
        },
    }
    found = cleanup.find(Unselective([], [worker]), "shop", None, now=NOW)  # type: ignore[arg-type]
    assert found.ephemeral == [
        cleanup.EphemeralProbe("shop", "worker", ("meshprobe-1a2b", "meshprobe-9f"), ("meshprobe-9f",))
    ]
    assert found_names(found) == {"jobs": [], "pods": [], "active": []}


@pytest.mark.parametrize(
    ("seconds", "text"), [(5, "5s"), (59.9, "59s"), (60, "1m"), (7200, "2h"), (90000, "1d")]
)
def test_ages(seconds: float, text: str) -> None:
    assert cleanup.age(seconds) == text
