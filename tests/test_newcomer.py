"""What a newcomer meets first: commands whose stderr carries no library start-up logging (unless
``--verbose``), and ``report``/``stats`` that accept the folder ``cropaudit demo`` wrote."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cropaudit import startup_logs
from cropaudit.errors import UserError
from cropaudit.rundir import RunDir
from tests.conftest import REPO

#: A line some library (TensorFlow, absl, Beam, Python logging) wrote, not cropaudit.
LIBRARY_LINE = re.compile(
    r"absl|oneDNN|cpu_feature_guard|tensorflow|crcmod|yield and return"
    r"|^[IWEF]\d{4} |^(WARNING|INFO|ERROR|DEBUG):",
    re.IGNORECASE,
)


def cropaudit(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The command line in a fresh interpreter, without the test run's TF_CPP_MIN_LOG_LEVEL."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run(
        [sys.executable, "-m", "cropaudit", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def library_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if LIBRARY_LINE.search(line)]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, str]:
    """A demo folder without statistics (``stats DIR`` adds them) and the demo's stderr."""
    root = tmp_path_factory.mktemp("newcomer")
    proc = cropaudit("demo", "--out", "demo", "--no-stats", "--no-progress", cwd=root)
    return root / "demo", proc.stderr


def test_demo_stderr_has_no_library_logging(demo):
    _, stderr = demo
    assert library_lines(stderr) == []


def test_validate_prints_nothing_on_stderr(tmp_path):
    # croppers.toml names the OpenCV and smartcrop croppers: validating it imports Beam
    proc = cropaudit("validate", str(REPO / "experiments" / "croppers.toml"), cwd=tmp_path)
    assert proc.stderr == "" and proc.stdout.startswith("ok ")


def test_saliency_is_quiet_and_verbose_shows_the_start_up_lines(tmp_path):
    image = tmp_path / "gradient.png"
    ramp = np.linspace(0, 255, 96, dtype=np.uint8)
    Image.fromarray(np.dstack([np.tile(ramp, (64, 1))] * 3)).save(image)
    quiet = cropaudit("saliency", str(image), "--model", "baseline", cwd=tmp_path)
    assert quiet.stderr == "" and quiet.stdout.startswith(f"{image} 96x64")
    loud = cropaudit("saliency", str(image), "--model", "baseline", "--verbose", cwd=tmp_path)
    assert "oneDNN custom operations are on" in loud.stderr  # TensorFlow's own line, via absl
    assert loud.stdout == quiet.stdout


def test_stats_and_report_accept_the_demo_folder(demo):
    folder, _ = demo
    stats = cropaudit(
        "stats", str(folder), "--out", str(folder / "stats"), "--replicates", "50", cwd=folder
    )
    assert library_lines(stats.stderr) == []
    assert (folder / "stats" / "_SUCCESS").exists()
    report = cropaudit("report", str(folder), "--out", "page.html", "--gallery", "0", cwd=folder)
    assert library_lines(report.stderr) == []
    page = (folder / "page.html").read_text()
    # the demo folder's run/ was read, and its stats/ found beside it, not computed anew
    # (paths on the page are relative to it: page.html sits in the demo folder)
    assert "Run run " in page and "Estimates from stats (found beside the run)" in page
    assert str(folder) not in page


def test_an_unfinished_run_inside_a_folder_is_named(tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(UserError, match=f"{tmp_path / 'run'} is not a finished run"):
        RunDir.open(str(tmp_path)).require_finished()


def test_the_stderr_filter_keeps_everything_but_library_notices():
    notices = (
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        "I0000 00:00:1796048173.483183   25544 port.cc:153] oneDNN custom operations are on.\n"
        "WARNING:root:crcmod package not found. This package is required if python-snappy\n"
    )
    real = "E0000 00:00:1796048173.483183   25544 loader.cc:1] could not load libfoo.so\n"
    source, writer = os.pipe()
    target, out = os.pipe()
    os.write(
        writer, (notices + real + "Traceback (most recent call last):\n" + "no newline").encode()
    )
    os.close(writer)
    startup_logs.copy_kept(source, out)
    os.close(out)
    kept = os.read(target, 1 << 16).decode()
    assert kept == real + "Traceback (most recent call last):\n" + "no newline"


def test_logging_filter_drops_only_the_known_notices(caplog):
    startup_logs.quiet()
    core = logging.getLogger("apache_beam.transforms.core")
    with caplog.at_level(logging.WARNING):
        core.warning("Using yield and return in the process method of %s can lead to", "X")
        core.warning("Some other warning")
        logging.getLogger().warning("crcmod package not found. This package is required")
    assert [r.getMessage() for r in caplog.records] == ["Some other warning"]
