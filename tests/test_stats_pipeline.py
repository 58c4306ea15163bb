"""The statistics pipeline: outputs, determinism across runner modes, refusal of unfinished runs."""

from __future__ import annotations

import json

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from cropaudit.cli import main
from cropaudit.errors import UserError
from cropaudit.pipelines.stats_pipeline import run_stats
from cropaudit.rundir import StatsDir
from cropaudit.rundir.run_dir import write_run_dir
from cropaudit.schemas.estimates import ESTIMATES_SCHEMA
from cropaudit.stats.synthetic_tables import synthetic_survival


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("stats")
    tables = [synthetic_survival(600, groups=("A", "B", "C"), seed=s) for s in (1, 2)]
    return str(write_run_dir(tables, base / "run")), tables


def test_refuses_run_without_success(tmp_path):
    run = write_run_dir(synthetic_survival(10), tmp_path / "run", success=False)
    with pytest.raises(UserError, match="_SUCCESS"):
        run_stats([str(run)], str(tmp_path / "out"), replicates=10)


def test_outputs_and_counts(run_dir, tmp_path):
    run, tables = run_dir
    path = run_stats([run], str(tmp_path / "out"), replicates=50, seed=1)
    assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression != "UNCOMPRESSED"
    est = StatsDir(str(tmp_path / "out")).estimates()
    assert est.schema.equals(ESTIMATES_SCHEMA)
    df = est.to_pandas()
    # 3 pairs + 3 group-vs-rest for each of point, crop_0.56, crop_1.00.
    assert len(df) == 18 and set(df["criterion"]) == {"point", "crop_0.56", "crop_1.00"}
    row = df[(df.criterion == "point") & (df.comparison == "pair") & (df.group_a == "A")]
    row = row[row.group_b == "B"].iloc[0]
    wins = 0
    for t in tables:
        mask = pc.and_(pc.equal(t["pair_id"], "A|B"), pc.equal(t["point_winner"], "a"))
        wins += pc.sum(mask.cast("int64")).as_py()
    assert row["wins_a"] == wins and row["n"] == 400 and row["replicates"] == 50
    assert list(row["config_hashes"]) == ["cfg0"]
    assert row["p_bootstrap_holm"] >= row["p_bootstrap"]
    out = tmp_path / "out"
    for name in ("report.html", "_SUCCESS", "plots/point.png", "plots/point.svg"):
        assert (out / name).exists(), name
    assert "data:image/png;base64," in (out / "report.html").read_text()


def test_same_seed_identical_in_memory_and_multiprocess(run_dir, tmp_path):
    run, _ = run_dir
    kw = dict(replicates=40, seed=7, criteria=["point", "crop_0.56"], render=False)
    run_stats([run], str(tmp_path / "a"), pipeline_args=["--direct_running_mode=in_memory"], **kw)
    run_stats(
        [run],
        str(tmp_path / "b"),
        pipeline_args=["--direct_num_workers=2", "--direct_running_mode=multi_processing"],
        **kw,
    )
    a, b = StatsDir(str(tmp_path / "a")).estimates(), StatsDir(str(tmp_path / "b")).estimates()
    assert a.num_rows == 12 and a.equals(b)
    run_stats([run], str(tmp_path / "c"), **{**kw, "seed": 8})
    assert not a.equals(StatsDir(str(tmp_path / "c")).estimates())


def test_cli(run_dir, tmp_path, capsys):
    run, _ = run_dir
    rc = main(
        [
            "stats",
            run,
            "--out",
            str(tmp_path / "o"),
            "--replicates",
            "20",
            "--criterion",
            "point",
            "--direct_num_workers=1",
        ]
    )
    assert rc == 0
    df = StatsDir(str(tmp_path / "o")).estimates().to_pandas()
    assert set(df["criterion"]) == {"point"}
    # The terminal output ends with the findings, the lines findings.json holds.
    saved = json.loads((tmp_path / "o" / "findings.json").read_text())
    texts = [f["text"] for f in saved["findings"]]
    out = capsys.readouterr().out.rstrip("\n").splitlines()
    assert len(texts) == 3 * 2 + 1 and out[-len(texts) :] == [f"  {t}" for t in texts]
    assert out[-len(texts) - 1] == "findings:"
    # Only point was analysed: the identity the stage recorded names no other criterion.
    assert all(list(c) == ["point"] for c in df["identical_criteria"])
    assert main(["stats", str(tmp_path / "missing"), "--out", str(tmp_path / "x")]) == 2
