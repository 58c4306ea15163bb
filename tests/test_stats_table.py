"""The public estimator: ``estimate_survival`` on analysts' own tables (a DuckDB query result, a
CSV) gives the numbers the statistics stage writes, and ``cropaudit stats`` reads plain tables."""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pandas as pd
import pytest

from cropaudit.cli import main
from cropaudit.errors import UserError
from cropaudit.pipelines.stats_pipeline import run_stats
from cropaudit.rundir import StatsDir
from cropaudit.rundir.run_dir import write_run_dir
from cropaudit.schemas.estimates import ESTIMATES_SCHEMA
from cropaudit.stats import estimate_survival
from cropaudit.stats.synthetic_tables import synthetic_survival
from cropaudit.stats.tests_multiple import ADJUSTED

#: Estimates columns compared: every number the stage computes per stratum (the families and
#: adjusted p-values depend on the key fields, which the query chooses).
NOT_COMPARED = {"p_family"} | {f"{p}_{suffix}" for p in ADJUSTED for suffix in ("holm", "bh")}


def _same(a, b) -> bool:
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return a == b


def test_duckdb_query_result_equals_the_stats_stage(tmp_path):
    tables = [synthetic_survival(700, groups=("A", "B"), seed=s) for s in (3, 4)]
    run = write_run_dir(tables, tmp_path / "run")
    run_stats([str(run)], str(tmp_path / "out"), replicates=60, seed=5, render=False)
    stage = StatsDir(str(tmp_path / "out")).estimates().to_pandas()
    stage = stage[(stage.criterion == "point") & (stage.comparison == "pair")]
    query = f"""
        SELECT group_a, group_b, a_subject_id, b_subject_id, position, point_winner AS outcome
        FROM read_parquet('{run}/survival/*.parquet') WHERE design <> 'single'
    """
    ours = estimate_survival(
        duckdb.sql(query).df(), by=["group_a", "group_b"], replicates=60, seed=5
    )
    assert len(ours) == len(stage) == 1
    # The Arrow result of the same query gives the same rows.
    arrow = estimate_survival(
        duckdb.sql(query).arrow(), by=["group_a", "group_b"], replicates=60, seed=5
    )
    compared = [c for c in ours.columns if c in stage.columns and c not in NOT_COMPARED]
    assert len(compared) > 60 and "ratio_low" in compared and "ratio_bca_low" in compared
    for col in compared:
        assert _same(ours[col].iloc[0], stage[col].iloc[0]), col
        assert _same(arrow[col].iloc[0], ours[col].iloc[0]), col
    assert ours["ratio_high"].iloc[0] - ours["ratio_low"].iloc[0] > 0


def _plain(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {
            "face_a": [f"p{i}" for i in rng.integers(0, 20, n)],
            "face_b": [f"q{i}" for i in rng.integers(0, 20, n)],
            "slot": np.where(np.arange(n) % 2 == 0, "a_first", "b_first"),
            "won": rng.choice(["a", "b", "tie"], n, p=[0.55, 0.4, 0.05]),
            "race_a": np.where(np.arange(n) % 4 < 2, "X", "Y"),
            "race_b": "Z",
        }
    )


def test_cli_reads_a_plain_csv_with_a_column_map(tmp_path):
    df = _plain()
    csv = tmp_path / "composites.csv"
    df.to_csv(csv, index=False)
    mapping = ["a_subject=face_a", "b_subject=face_b", "position=slot", "outcome=won"]
    mapping += ["group_a=race_a", "group_b=race_b"]
    args = ["stats", str(csv), "--out", str(tmp_path / "o"), "--replicates", "40", "--seed", "2"]
    assert main(args + [x for m in mapping for x in ("--column", m)]) == 0
    est = StatsDir(str(tmp_path / "o")).estimates()
    assert est.schema.equals(ESTIMATES_SCHEMA)
    got = est.to_pandas().set_index("group_a")
    assert list(got.index) == ["X", "Y"] and set(got["model_name"]) == {"table"}
    assert (tmp_path / "o" / "report.html").exists() and (tmp_path / "o" / "_SUCCESS").exists()
    roles = dict(a_subject="face_a", b_subject="face_b", position="slot", outcome="won")
    direct = estimate_survival(df, ["race_a"], roles, replicates=40, seed=2).set_index("race_a")
    for col in ("n", "wins_a", "ratio", "ratio_low", "ratio_high", "ratio_percentile_low"):
        assert list(got[col]) == list(direct[col]), col
    assert got.loc["X", "n"] + got.loc["Y", "n"] == len(df)
    assert got["config_hashes"].iloc[0][0].startswith("sha256:")


def test_bad_tables_are_one_line_errors(tmp_path):
    df = _plain().rename(columns={"face_a": "a_subject_id", "face_b": "b_subject_id"})
    df["outcome"] = df["won"].replace({"tie": "draw"})
    df["position"] = df["slot"]
    with pytest.raises(UserError, match=r"outcome.*\['draw'\]"):
        estimate_survival(df, replicates=10)
    with pytest.raises(UserError, match="no column"):
        estimate_survival(df, columns={"outcome": "missing"}, replicates=10)
    with pytest.raises(UserError, match="unknown column roles"):
        estimate_survival(df, columns={"winner": "won"}, replicates=10)
    path = tmp_path / "t.parquet"
    df.drop(columns=["outcome"]).to_parquet(path)
    rc = main(["stats", str(path), "--out", str(tmp_path / "o"), "--column", "nonsense=won"])
    assert rc == 2
