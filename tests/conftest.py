"""Shared test fixtures. Reference data lives in ../shared beside the checkout, not in the repo."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import cropaudit  # noqa: F401 - before any test imports TensorFlow: switches on its oneDNN kernels

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CROPAUDIT_SHARED", REPO.parent / "shared"))
#: Set by `.ci/run`: under CI every test must run, so a skip fails the run instead.
STRICT_SKIPS = os.environ.get("CROPAUDIT_NO_SKIPS") == "1"
#: Debian's Chromium, which every browser test drives (Playwright never downloads a browser),
#: and the flags it runs with here (no sandbox as root, no network of its own).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ("--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--no-first-run", "--disable-component-update", "--disable-sync")  # fmt: skip


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI a skipped test is a failure: a missing service or install must not pass quietly."""
    outcome = yield
    report = outcome.get_result()
    if STRICT_SKIPS and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under CI (CROPAUDIT_NO_SKIPS=1): {reason}"


def shared_file(relative: str) -> Path:
    """Path to a file under ../shared, or skip the test cleanly when it is absent."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"reference file {relative} not available (../shared absent)")
    return path


@pytest.fixture
def fastgaze_vxm() -> Path:
    return shared_file("data/fastgaze/fastgaze.vxm")


@pytest.fixture(scope="session")
def demo_output(tmp_path_factory) -> Path:
    """``cropaudit demo`` run once per session (the demo folder: run/, stats/, report.html), for
    tests that read what a new user gets; treat it as read-only."""
    from cropaudit.cli import main

    out = tmp_path_factory.mktemp("demo") / "demo"
    assert main(["demo", "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture(scope="session")
def browser_type_launch_args():
    """pytest-playwright's launch arguments, for every browser test of the session (one
    Playwright per session: a second ``sync_playwright()`` would find the first one's loop)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is absent (Debian: apt-get install chromium)")
    return {"executable_path": CHROMIUM, "args": list(CHROMIUM_ARGS)}
