"""The local progress reporter: it counts what the pipeline's workers did, stays silent when
stderr is not a terminal, and never fails a run."""

from __future__ import annotations

import io

import apache_beam as beam
import pytest

from cropaudit import progress
from cropaudit.pipelines.runners import make_runner, pipeline_options


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class BrokenTerminal(Terminal):
    def write(self, text):
        raise OSError("terminal gone")


def count_pipeline(n_done: int, n_dead: int, args: list[str] | None = None):
    """Run a tiny pipeline with :func:`progress.track` on it; returns the Beam result."""
    runner, options = pipeline_options(args)
    with beam.Pipeline(runner=make_runner(runner, options), options=options) as p:
        done = p | "Done" >> beam.Create(range(n_done))
        dead = p | "Dead" >> beam.Create(range(n_dead))
        progress.track(done | "Work" >> beam.Map(lambda x: x * 2), dead)
    return p.result


def test_bar_text():
    assert progress.bar(0, 0, 10, 0.0).startswith("[" + "." * 28 + "] 0/10 composites (0%)")
    line = progress.bar(6, 2, 10, 4.0, width=10)
    assert line.startswith("[########..] 6/10 composites (80%), 2 dead-lettered, 2.0/s, ~1 s left")
    assert "100%" in progress.bar(12, 0, 10, 1.0)  # retries may overshoot: never above 100%
    # several croppers score each composite: what is counted is a crop, and the bar says so
    assert "] 3/20 crops by 2 croppers (15%)" in progress.bar(
        3, 0, 20, 1.0, unit="crops by 2 croppers"
    )


def test_counts_in_process_and_draws_on_a_terminal():
    stream = Terminal()
    with progress.reporter(25, stream=stream) as bar:
        assert bar.enabled and progress.active_path() == bar.path
        count_pipeline(25, 3)
    assert (bar.done, bar.dead) == (25, 3)
    assert progress.active_path() is None
    out = stream.getvalue()
    assert out.endswith("\n") and "25/25 composites (100%), 3 dead-lettered" in out


@pytest.mark.slow
def test_counts_across_worker_processes():
    stream = Terminal()
    args = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]
    with progress.reporter(40, stream=stream) as bar:
        count_pipeline(40, 2, args)
    assert (bar.done, bar.dead) == (40, 2)


def test_silent_when_not_a_terminal_or_disabled():
    for stream, enabled in ((io.StringIO(), True), (Terminal(), False)):
        with progress.reporter(5, stream=stream, enabled=enabled) as bar:
            assert not bar.enabled and progress.active_path() is None
            count_pipeline(5, 0)  # track() adds nothing to the pipeline
        assert stream.getvalue() == ""


def test_never_raises():
    # a terminal that fails on write: the run goes on, the counts are still right
    with progress.reporter(4, stream=BrokenTerminal()) as bar:
        count_pipeline(4, 0)
    assert bar.done == 4
    # a worker whose progress file cannot be written
    tick = progress._Tick("/nonexistent/dir/progress.log", "done", interval=0.0)
    tick.setup()
    tick.start_bundle()
    assert list(tick.process("x")) == []
    tick.finish_bundle()
    tick.teardown()
    # garbage in the progress file is skipped
    with progress.reporter(3, stream=Terminal()) as bar:
        with open(bar.path, "w") as f:
            f.write("done 2\nnonsense\ndead x\ndone 1\n")
        assert bar.poll() == (3, 0)
    # metrics from a runner that cannot tell
    assert progress.beam_counters(None) == {}
    assert progress.beam_counters(object()) == {}


def test_beam_counters_after_a_run():
    from apache_beam.metrics import Metrics

    counter = Metrics.counter("cropaudit", "composites_rendered")

    def inc(x):
        counter.inc()
        return x

    runner, options = pipeline_options(None)
    with beam.Pipeline(runner=make_runner(runner, options), options=options) as p:
        _ = p | beam.Create(range(7)) | beam.Map(inc)
    counters = progress.beam_counters(p.result)
    assert counters == {
        "composites_rendered": 7,
        "composites_predicted": 0,
        "composites_dead_lettered": 0,
    }
    assert progress.format_counters(counters) == "rendered 7, predicted 0, dead-lettered 0"


def test_run_and_demo_flags():
    from cropaudit.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["run", "c.toml", "--out", "o", "--no-progress", "--quiet"])
    assert args.no_progress and args.quiet
    assert parser.parse_args(["demo", "--no-progress"]).no_progress
    assert not parser.parse_args(["run", "c.toml", "--out", "o"]).no_progress


@pytest.mark.slow
def test_a_run_that_compares_croppers_counts_as_it_goes(tmp_path, monkeypatch):
    """With ``model.compare`` each cropper's branch is counted before the Flatten that joins
    them (the local runner runs what follows it only once every branch has finished): the bar
    shows counts between 0 and the end, and counts every cropper's crop."""
    from cropaudit import config as config_mod
    from cropaudit.pipelines.audit_pipeline import run_audit
    from cropaudit.synthetic import write_face_set

    manifest = write_face_set(tmp_path / "faces", seed=3, subjects_per_group=2)
    cfg = config_mod.ExperimentConfig().replace(
        manifest={"path": str(manifest)},
        groups={"attributes": ["tone", "hair"]},
        design={"composites_per_pair": 2, "controls_per_group": 1},
        model={"spec": "baseline", "compare": ["opencv-spectral-residual"], "batch_size": 4},
    )
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)  # a terminal: the bar draws
    run_audit(cfg, str(tmp_path / "run"), overwrite=True)
    drawn = [line for line in terminal.getvalue().replace("\r", "\n").splitlines() if line]
    counts = [int(line.split("] ", 1)[1].split("/", 1)[0]) for line in drawn]
    total = int(drawn[-1].split("/", 1)[1].split(" ", 1)[0])
    assert "crops by 2 croppers" in drawn[-1] and counts[-1] == total
    assert any(0 < n < total for n in counts), counts
