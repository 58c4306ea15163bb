"""Under CI (`CROPAUDIT_NO_SKIPS=1`, set by `.ci/run`) a skipped test fails the run."""

from __future__ import annotations

from pathlib import Path

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).with_name("conftest.py")


def _run_skipping_test(pytester, monkeypatch, strict: bool):
    monkeypatch.setenv("CROPAUDIT_NO_SKIPS", "1" if strict else "0")
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makepyfile(
        test_inner="""
        import pytest

        def test_needs_a_service():
            pytest.skip("service not running")

        @pytest.mark.xfail(reason="known")
        def test_known_failure():
            assert False
        """
    )
    # the inner run is the conftest's alone: pytest-playwright nested in this session refuses
    return pytester.runpytest("-q", "-p", "no:playwright")


def test_a_skip_fails_under_ci(pytester, monkeypatch):
    result = _run_skipping_test(pytester, monkeypatch, strict=True)
    result.assert_outcomes(failed=1, xfailed=1)
    result.stdout.fnmatch_lines(["*skipped under CI*service not running*"])


def test_a_skip_stays_a_skip_outside_ci(pytester, monkeypatch):
    result = _run_skipping_test(pytester, monkeypatch, strict=False)
    result.assert_outcomes(skipped=1, xfailed=1)
