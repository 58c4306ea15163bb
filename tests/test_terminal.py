"""What a person sees on the terminal: no library's log line from any command (in the launcher
or in its worker processes), and one clean way out of every command (an exit status, never an
abort or a traceback for a refusal or a closed pipe)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cropaudit import shutdown

#: A line some library (TensorFlow, absl, Beam, Python logging) wrote, not cropaudit.
LIBRARY_LINE = re.compile(
    r"absl|oneDNN|cpu_feature_guard|tensorflow|crcmod|yield and return|rebuild TensorFlow"
    r"|^[IWEF]\d{4} |^(WARNING|INFO|ERROR|DEBUG):",
    re.IGNORECASE | re.MULTILINE,
)
#: What a process that did not leave cleanly prints (an abort, an uncaught exception).
UNCLEAN = re.compile(r"terminate called|Traceback \(most recent call last\)|Aborted|core dumped")


def cropaudit(*args: str, cwd: Path, tty: bool = False) -> subprocess.CompletedProcess:
    """The command line in a fresh interpreter, as a person starts it: without the test run's
    TF_CPP_MIN_LOG_LEVEL; ``tty``: under a terminal (``script``), so the progress bar draws."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    command = [sys.executable, "-m", "cropaudit", *args]
    if tty:
        command = ["script", "-qec", " ".join(map(str, command)), "/dev/null"]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=900)


def library_lines(proc: subprocess.CompletedProcess) -> list[str]:
    text = (proc.stdout + proc.stderr).replace("\r", "\n")
    return [line for line in text.splitlines() if LIBRARY_LINE.search(line)]


def python(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter (the test's own process must not exit)."""
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(code))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120
    )


# -- the exit path, without Beam or TensorFlow ----------------------------------------------------


def test_the_exit_path_runs_pythons_shutdown_then_skips_finalization(tmp_path):
    """atexit handlers registered by the command (as libraries register theirs) and non-daemon
    threads still run; what only interpreter finalization would do (here: a ``__del__`` of a
    module global, there: Arrow's pool threads meeting a finalizing interpreter) never runs;
    the command's status is the process's."""
    proc = python(
        f"""
        import atexit, sys, threading, time
        from cropaudit import shutdown

        class Finalized:
            def __del__(self):
                print("finalized", flush=True)

        keep = Finalized()

        def main(argv):
            atexit.register(lambda: print("atexit ran", flush=True))
            def late():
                time.sleep(0.3)
                open({str(tmp_path / "thread")!r}, "w").write("joined")
            threading.Thread(target=late).start()
            print("ran", argv)
            return 7

        sys.exit(shutdown.run_command_line(main, ["x"], quiet=True))
        """,
        tmp_path,
    )
    assert proc.returncode == 7, proc.stderr
    assert proc.stdout.splitlines() == ["ran ['x']", "atexit ran"]
    assert (tmp_path / "thread").read_text() == "joined" and proc.stderr == ""


@pytest.mark.parametrize(
    ("body", "status", "stderr"),
    [
        ("raise SystemExit(2)", 2, ""),  # argparse's usage error (it printed the usage)
        ("raise SystemExit('bad input')", 1, "bad input\n"),
        ("raise KeyboardInterrupt", 130, "cropaudit: interrupted\n"),
        ("return None", 0, ""),
    ],
)
def test_every_outcome_becomes_a_status(tmp_path, body, status, stderr):
    proc = python(
        f"""
        import sys
        from cropaudit import shutdown

        def main(argv):
            {body}

        sys.exit(shutdown.run_command_line(main, [], quiet=True))
        """,
        tmp_path,
    )
    assert (proc.returncode, proc.stderr) == (status, stderr)


def test_a_bug_shows_its_traceback_and_exits_1(tmp_path):
    proc = python(
        """
        import sys
        from cropaudit import shutdown

        def main(argv):
            raise ValueError("a bug")

        sys.exit(shutdown.run_command_line(main, [], quiet=True))
        """,
        tmp_path,
    )
    assert proc.returncode == 1
    assert "Traceback (most recent call last)" in proc.stderr and "ValueError: a bug" in proc.stderr


def test_a_closed_stdout_exits_141_without_a_traceback(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            from cropaudit import shutdown

            def main(argv):
                for i in range(200_000):
                    print(f"line {i}")
                return 0

            sys.exit(shutdown.run_command_line(main, [], quiet=True))
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout.readline() == b"line 0\n"
    proc.stdout.close()  # as `| head -1` does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == shutdown.CLOSED_PIPE and err == ""


def test_library_notices_of_child_processes_are_dropped_and_the_rest_kept(tmp_path):
    """Descriptor 2 of the launcher and of every child goes through the filter: the notices
    TensorFlow and Beam print in a worker are dropped, an error line from C++ (written straight
    to descriptor 2) and a child's traceback are kept, and cropaudit's own messages (Python's
    ``sys.stderr``) reach the real stderr, which is still what it was (``isatty`` and all)."""
    child = (
        "import os, sys\n"
        "os.write(2, b'WARNING: All log messages before absl::InitializeLog() is called are "
        "written to STDERR\\n')\n"
        "os.write(2, b'I0000 00:00:1796689101.701024    9754 cpu_feature_guard.cc:227] This "
        "TensorFlow binary is optimized\\n')\n"
        "print('WARNING:root:crcmod package not found. This package is required',"
        " file=sys.stderr)\n"
        "os.write(2, b'E0000 00:00:1.0   1 loader.cc:1] could not load libfoo.so\\n')\n"
        "raise RuntimeError('worker failed')\n"
    )
    proc = python(
        f"""
        import os, subprocess, sys
        from cropaudit import shutdown

        def main(argv):
            os.write(2, b"I0000 00:00:1.0   1 port.cc:153] oneDNN custom operations are on.\\n")
            subprocess.run([sys.executable, "-c", {child!r}])
            print("cropaudit: error: a refusal", file=sys.stderr)
            return 2

        sys.exit(shutdown.run_command_line(main, [], quiet=True))
        """,
        tmp_path,
    )
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert "E0000 00:00:1.0   1 loader.cc:1] could not load libfoo.so" in lines
    assert "RuntimeError: worker failed" in lines and "cropaudit: error: a refusal" in lines
    assert [line for line in lines if LIBRARY_LINE.search(line) and "libfoo" not in line] == []


def test_workers_notices_relayed_by_the_job_service_are_dropped_and_the_rest_kept(caplog):
    import logging

    from cropaudit import startup_logs

    startup_logs.quiet()
    relay = logging.getLogger(startup_logs.RELAY_LOGGER)
    entry = 'severity: WARN timestamp {{ seconds: 1 }} message: "{}" log_location: "x.py:1"'
    with caplog.at_level(logging.WARNING):
        relay.warning("Worker: %s", entry.format("Discarding unparseable args: ['--x']"))
        relay.warning("Worker: %s", entry.format("No semi_persistent_directory found: ..."))
        relay.warning("Worker: %s", entry.format("cropaudit: 3 retries for composite 7"))
    assert [r.getMessage().split('message: "')[1][:9] for r in caplog.records] == ["cropaudit"]


# -- every command, as a person runs it ----------------------------------------------------------


def gradient(path: Path) -> Path:
    ramp = np.linspace(0, 255, 96, dtype=np.uint8)
    Image.fromarray(np.dstack([np.tile(ramp, (64, 1))] * 3)).save(path)
    return path


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """A demo folder, made under a terminal (the progress bar draws), and what it printed."""
    root = tmp_path_factory.mktemp("terminal")
    tty = shutil.which("script") is not None
    proc = cropaudit("demo", "--out", str(root / "demo"), cwd=root, tty=tty)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return root / "demo", proc


@pytest.mark.slow
def test_no_command_prints_a_library_log_line(demo, tmp_path):
    """demo, run (with worker processes and smartcrop's spawned pool), stats, saliency, manifest
    detect-faces, report and plan: stdout and stderr carry cropaudit's lines only."""
    folder, made = demo
    assert "report ->" in made.stdout + made.stderr
    compare = folder / "compare.toml"
    config = (folder / "run" / "config.toml").read_text()
    config = config.replace("composites_per_pair = 8", "composites_per_pair = 1")
    config = config.replace("controls_per_group = 4", "controls_per_group = 1")
    compare.write_text(
        config.replace('spec = "baseline"', 'spec = "baseline"\ncompare = ["smartcrop"]')
    )
    image = gradient(tmp_path / "gradient.png")
    workers = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]
    commands = [
        ("run", str(compare), "--out", str(tmp_path / "run"), *workers),
        ("stats", str(folder), "--out", str(tmp_path / "stats"), "--replicates", "50"),
        ("saliency", str(image), "--model", "baseline"),
        ("saliency", str(image), "--model", "smartcrop", "--overlay", str(tmp_path / "o.png")),
        ("manifest", "detect-faces", str(folder / "faces" / "manifest.csv"),
         "--out", str(tmp_path / "detected.csv"), "--attributes", "tone,hair"),
        ("report", str(folder), "--out", str(tmp_path / "page.html"), "--gallery", "0"),
        ("plan", str(folder), "--half-width", "0.02", "--out", str(tmp_path / "plan.csv")),
    ]  # fmt: skip
    assert library_lines(made) == []
    for command in commands:
        proc = cropaudit(*command, cwd=tmp_path)
        assert proc.returncode == 0, (command, proc.stderr)
        assert library_lines(proc) == [], command
        assert not UNCLEAN.search(proc.stderr), (command, proc.stderr)


@pytest.mark.slow
def test_verbose_still_shows_the_libraries_lines(tmp_path):
    image = gradient(tmp_path / "gradient.png")
    proc = cropaudit("saliency", str(image), "--model", "baseline", "--verbose", cwd=tmp_path)
    assert proc.returncode == 0 and "oneDNN custom operations are on" in proc.stderr


def refusals(folder: Path, tmp: Path) -> list[tuple[tuple[str, ...], int]]:
    """One refusal per command, each the way a person meets it, and its exit status."""
    image = gradient(tmp / "gradient.png")
    (tmp / "taken").mkdir()
    (tmp / "taken" / "mine.txt").write_text("not a demo")
    (tmp / "overlay.png").write_bytes(b"mine")
    manifest = str(folder / "faces" / "manifest.csv")
    return [
        (("demo", "--out", str(tmp / "taken")), 2),
        (("run", str(tmp / "missing.toml"), "--out", str(tmp / "r")), 2),
        (("validate", str(tmp / "missing.toml")), 1),  # its verdict: one INVALID line
        (("stats", str(tmp / "nothing-here"), "--out", str(tmp / "s")), 2),
        (("plan", str(folder), "--half-width", "0.02"), 2),  # the second plan: its table exists
        (("plan", str(folder), "--half-width", "0.02"), 2),
        (("report", str(tmp / "nothing-here")), 2),
        (("manifest", "check", manifest), 2),  # neither --attributes nor --config
        (("manifest", "detect-faces", manifest, "--out", str(tmp / "d.csv"),
          "--attributes", "race,gender"), 2),
        (("model", "info", "no-such-model"), 2),
        (("saliency", str(image), "--model", "baseline", "--overlay", str(tmp / "overlay.png")), 2),
        (("saliency", str(image), "--model", "no-such-model"), 2),
        (("run",), 2),  # argparse: the usage, then the error
    ]  # fmt: skip


@pytest.mark.slow
def test_every_refusal_leaves_through_the_one_exit_path(demo, tmp_path):
    """Each refusal: its status, one line saying why (argparse: the usage, then that line), no
    abort, no traceback, no library line. The plan refusal comes twice: it was the one that
    aborted (exit 134) about one run in eight."""
    folder, _ = demo
    first = cropaudit("plan", str(folder), "--half-width", "0.02", cwd=tmp_path)
    assert first.returncode in (0, 2), first.stderr  # 2: the demo's own plan is there already
    for command, status in refusals(folder, tmp_path):
        proc = cropaudit(*command, cwd=tmp_path)
        assert proc.returncode == status, (command, proc.returncode, proc.stdout, proc.stderr)
        assert not UNCLEAN.search(proc.stdout + proc.stderr), (command, proc.stderr)
        assert library_lines(proc) == [], command
        lines = (proc.stdout + proc.stderr).splitlines()
        if command == ("run",):
            assert lines[0].startswith("usage: cropaudit run") and "error:" in lines[-1]
        else:
            assert len(lines) == 1, (command, lines)
            assert lines[0].startswith("cropaudit: error: " if status == 2 else "INVALID")


# -- saliency and detect-faces output ---------------------------------------------------------


def test_saliency_prints_labelled_lines_and_the_grid_only_when_asked(tmp_path, capsys):
    from cropaudit.cli import main

    image = str(gradient(tmp_path / "gradient.png"))
    assert main(["saliency", image, "--model", "baseline", "--aspect-ratios", "1", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{image} 96x64"
    assert re.fullmatch(r"  salient point +x \d+, y \d+, score [\d.]+", lines[1])
    assert re.fullmatch(r"  crop 1 \(h/w\) +x \d+, y 0, width 64, height 64", lines[2])
    assert re.fullmatch(r"  crop 2 \(h/w\) +x \d+, y 0, width 32, height 64", lines[3])
    scored = int(re.fullmatch(r"  grid: (\d+) scored points \(--grid lists them\)", lines[4])[1])
    assert len(lines) == 5 and scored > 0
    assert main(["saliency", image, "--model", "baseline", "--aspect-ratios", "1", "--grid"]) == 0
    grid = capsys.readouterr().out.splitlines()
    assert grid[3] == f"  grid: {scored} scored points (x, y, score)" and len(grid) == 4 + scored
    assert all(re.fullmatch(r"    \d+ \d+ [\d.]+", line) for line in grid[4:])


def test_saliency_overlay_draws_a_box_croppers_crops_over_the_untouched_image(tmp_path, capsys):
    from cropaudit.cli import main

    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "noise.png")
    overlay = tmp_path / "crops.png"
    argv = ["saliency", str(tmp_path / "noise.png"), "--model", "smartcrop"]
    assert main([*argv, "--aspect-ratios", "1", "--overlay", str(overlay)]) == 0
    out = capsys.readouterr().out.splitlines()
    x, y, w, h = map(int, re.fullmatch(r"  crop 1 \(h/w\) +x (\d+), y (\d+), width (\d+), "
                                       r"height (\d+)", out[1]).groups())  # fmt: skip
    drawn = np.asarray(Image.open(overlay).convert("RGB"))
    assert drawn.shape == pixels.shape
    changed = np.any(drawn != pixels, axis=2)
    # the box's outline (thick enough to see) and the legend are drawn; inside, the image is
    # as it was: no tint
    assert changed[y + h // 2, x] and changed[y + h // 2, x + 1]
    assert changed[:12, :40].mean() > 0.5  # legend panel, top left
    inside = changed[y + 10 : y + h - 10, x + 10 : x + w - 10]
    if y > 40:  # the legend may overlap the top of the box
        assert not inside.any()
    else:
        assert not inside[40:].any()


def test_detect_faces_refuses_attributes_the_manifest_lacks(tmp_path, capsys):
    """As ``manifest check`` does: exit 2, one line, nothing written (not a group ``?/?``)."""
    from cropaudit.cli import main

    manifest = tmp_path / "in.csv"
    manifest.write_text("image_uri,gender\nface.png,F\n")
    out = tmp_path / "out.csv"
    argv = ["manifest", "detect-faces", str(manifest), "--out", str(out)]
    assert main([*argv, "--attributes", "race,gender"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cropaudit: error: manifest ") and err.count("\n") == 1
    assert "lacks required column(s): race (it has: gender, image_uri)" in err
    assert not out.exists()
