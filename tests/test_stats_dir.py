"""StatsDir: a statistics folder's names, estimates, level and ``_SUCCESS`` record, on outputs
the in-process statistics stage writes (a plain table: no pipeline)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cropaudit.errors import UserError
from cropaudit.pipelines.stats_pipeline import run_stats_table
from cropaudit.rundir import STATS_OUTPUT, StatsDir, ownership
from cropaudit.rundir.stats_dir import DEFAULT_LEVEL, PLAN, PLOT_FORMATS
from cropaudit.schemas.estimates import ESTIMATES_SCHEMA, SINCE_FAMILIES
from cropaudit.stats.synthetic_tables import synthetic_survival


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished statistics folder from a plain table, at level 0.9, with plots and report."""
    tmp = tmp_path_factory.mktemp("stats")
    table = synthetic_survival(200, seed=4).select(
        ["a_subject_id", "b_subject_id", "position", "point_winner"]
    )
    source = tmp / "composites.parquet"
    pq.write_table(table, source)
    run_stats_table(
        str(source), str(tmp / "out"), {"outcome": "point_winner"}, replicates=20, level=0.9
    )
    return StatsDir(str(tmp / "out")), str(source)


def test_a_finished_folder_names_its_inputs_estimates_and_level(finished):
    stats, source = finished
    assert stats.finished
    record = stats.success()
    assert record["inputs"] == [source] and record["estimates"] == stats.estimate_files()
    assert stats.estimate_files() == [stats.estimates_file]
    estimates = stats.estimates()
    assert estimates.schema == ESTIMATES_SCHEMA and estimates.num_rows == 1
    assert stats.level() == 0.9
    on_disk = json.loads(Path(stats.marker).read_text())
    assert on_disk == record


def test_every_file_the_stage_writes_is_its_own(finished):
    stats, _ = finished
    written = ownership.read_owner(stats.root)["files"]
    assert "report.html" in written and stats.report.endswith("report.html")
    for fmt in PLOT_FORMATS:
        assert f"plots/outcome.{fmt}" in written
        assert stats.plot("outcome", fmt).endswith(f"plots/outcome.{fmt}")
    assert "findings.json" in written and stats.findings.endswith("findings.json")
    for rel in written:
        assert ownership.matches(rel, STATS_OUTPUT.patterns)
    # plan's default table is put in the folder but is not the stage's: --overwrite keeps it
    assert not ownership.matches(PLAN, STATS_OUTPUT.patterns)


def test_an_empty_or_unfinished_folder(tmp_path):
    stats = StatsDir(str(tmp_path))
    assert stats.estimates().num_rows == 0 and stats.estimates().schema == ESTIMATES_SCHEMA
    assert stats.level() == DEFAULT_LEVEL
    with pytest.raises(UserError, match=f"{tmp_path} is not a finished statistics output"):
        stats.success()
    with pytest.raises(UserError, match="wrote no estimates"):
        stats.require_estimates()


def test_estimates_without_a_level_column_read_at_the_default_level(tmp_path):
    stats = StatsDir(str(tmp_path))
    (tmp_path / "estimates").mkdir()
    pq.write_table(pa.table({"ratio": [0.5]}), tmp_path / "estimates" / "old.parquet")
    assert stats.level() == DEFAULT_LEVEL


def test_statistics_are_looked_for_in_and_beside_a_run(tmp_path):
    run = tmp_path / "demo" / "run"
    assert [s.root for s in StatsDir.beside(str(run))] == [
        str(run / "stats"),
        str(tmp_path / "demo" / "stats"),
    ]


def test_estimates_of_an_older_cropaudit_are_refused_with_the_fix(finished, tmp_path):
    """A statistics folder written before the per-interval tests and families: one clear
    message naming the command that rewrites it, not a cast error."""
    stats, _ = finished
    old = pq.read_table(stats.estimates_file)
    old = old.drop_columns([c for c in SINCE_FAMILIES if c in old.column_names])
    folder = StatsDir(str(tmp_path / "old"))
    Path(folder.estimates_file).parent.mkdir(parents=True)
    pq.write_table(old, folder.estimates_file)
    with pytest.raises(UserError, match="older cropaudit.*--overwrite"):
        folder.estimates()
    assert folder.level() == 0.9  # the level alone still reads
