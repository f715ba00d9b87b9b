"""The lab gate of ``tests/conftest.py`` itself: on a machine that cannot run the lab, a ``lab`` test
is skipped before any of its fixtures runs; with ``CI=true`` it fails instead, and a lab test that
skips itself fails the run (docs/lab.md: never silently skipped in CI).

Each case runs the project's conftest in a fresh pytest process with ``PATH`` emptied, so ``ip``
and ``iptables-restore`` cannot be found — the gate's own check, as on a machine without them."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = (Path(__file__).parent / "conftest.py").read_text()

LAB_TESTS = """
import pytest

@pytest.fixture
def lab_pod():
    raise RuntimeError("fixture set up although the lab cannot run")

@pytest.mark.lab
def test_needs_the_lab(lab_pod):
    pass

@pytest.mark.lab
def test_plain_lab_test():
    pass

def test_not_a_lab_test():
    pass
"""


@pytest.fixture
def no_lab(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.Pytester:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("CI", raising=False)
    pytester.makeconftest(CONFTEST)
    pytester.makeini("[pytest]\nmarkers =\n    lab: needs the lab\n")
    return pytester


def test_lab_tests_skip_before_their_fixtures_without_the_lab(no_lab: pytest.Pytester) -> None:
    no_lab.makepyfile(test_lab=LAB_TESTS)
    result = no_lab.runpytest_subprocess("-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["*lab tests need ip*"])


def test_under_ci_a_lab_test_that_cannot_run_fails(
    no_lab: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    no_lab.makepyfile(test_lab=LAB_TESTS)
    result = no_lab.runpytest_subprocess()
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(["*CI=true but the lab cannot run*"])
    assert result.ret != 0


def test_under_ci_a_skipped_lab_test_fails_the_run(
    no_lab: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    no_lab.makeconftest(CONFTEST.replace("    reason = lab_unavailable_reason()", "    reason = None"))
    no_lab.makepyfile(
        test_lab="import pytest\n\n@pytest.mark.lab\ndef test_skips_itself():\n    pytest.skip('offline')\n"
    )
    result = no_lab.runpytest_subprocess()
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*1 lab test(s) skipped under CI=true*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
