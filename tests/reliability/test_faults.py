"""Faults: transient model failures, re-delivered elements and killed runs lose nothing and
never leave a table that looks finished."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cropaudit.cli import main as cli_main
from cropaudit.errors import UserError
from cropaudit.pipelines.audit_pipeline import run_audit
from cropaudit.rundir import RunDir, read_table, table_hash
from tests.fault_models import FAILED_ONCE, BrokenHandler, FlakyHandler
from tests.reliability.conftest import tiny_config


def test_transient_failures_are_retried_without_duplicates(face_set, tmp_path):
    config = tiny_config(face_set)
    clean = run_audit(config, str(tmp_path / "clean"), quiet=True)
    FAILED_ONCE.clear()
    flaky = run_audit(config, str(tmp_path / "flaky"), quiet=True, handler=FlakyHandler())
    assert FAILED_ONCE, "the fault was injected"
    assert flaky["survival_rows"] == clean["survival_rows"] == 24
    assert flaky["duplicate_composite_ids"] == 0
    a = read_table(str(tmp_path / "clean" / "survival")).drop_columns(["model_name"])
    b = read_table(str(tmp_path / "flaky" / "survival")).drop_columns(["model_name"])
    assert table_hash(a) == table_hash(b)


def test_a_model_that_always_fails_dead_letters_every_composite(face_set, tmp_path):
    with pytest.raises(UserError, match="published no survival row: 24 of 24 composites"):
        run_audit(tiny_config(face_set), str(tmp_path / "run"), quiet=True, handler=BrokenHandler())
    summary = RunDir(str(tmp_path / "run")).summary  # written whole, without _SUCCESS
    assert summary["survival_rows"] == 0 and summary["composites_dead_lettered"] == 24
    assert summary["all_composites_accounted"]
    assert summary["dead_letters_by_stage_reason"] == {"predict/inference_error": 24}
    dead = read_table(str(tmp_path / "run" / "dead_letter")).to_pandas()
    assert len(set(dead.element_id)) == 24
    assert set(dead.detail) == {"RuntimeError: injected permanent failure"}
    with pytest.raises(UserError, match="inference_error 24"):
        RunDir.open(str(tmp_path / "run")).require_finished()


def test_redelivered_rows_collapse_and_conflicting_copies_are_dead_lettered(face_set, tmp_path):
    """A sink that delivered parts twice (identical copies) and a copy that differs: the
    published table keeps one row per composite id, the differing copy becomes a dead letter."""
    run = tmp_path / "run"
    run_audit(tiny_config(face_set), str(run), quiet=True)
    paths = RunDir(str(run))
    original = paths.survival_table()
    part = next((run / "survival").glob("*.parquet"))
    shutil.copy(part, run / "survival" / "part-redelivered.parquet")  # identical copies
    copied_rows = pq.read_metadata(part).num_rows
    rows = original.slice(0, 1).to_pylist()
    flipped = {"a": "b", "b": "a"}.get(rows[0]["point_winner"], "a")
    changed = pa.Table.from_pylist([{**rows[0], "point_winner": flipped}], schema=original.schema)
    pq.write_table(changed, run / "survival" / "part-conflict.parquet")

    removed = paths.remove_duplicate_rows("cfg")
    assert removed == copied_rows + 1  # the copied part's rows and the conflicting copy
    repaired = paths.survival_table()
    assert sorted(paths.composite_ids()) == sorted(original.column("composite_id").to_pylist())
    assert repaired.num_rows == original.num_rows
    dead = paths.dead_letters().to_pandas()
    conflict = dead[dead.reason == "nondeterministic_duplicate"]
    assert list(conflict.element_id) == [rows[0]["composite_id"]]
    assert paths.remove_duplicate_rows("cfg") == 0  # idempotent


KILLER = textwrap.dedent(
    """
    import os, sys
    from cropaudit.model.base import SaliencyModel
    from cropaudit.model.baseline import CentreSurroundHandler
    from cropaudit.pipelines.audit_pipeline import run_audit
    from tests.reliability.conftest import tiny_config

    class Dies(SaliencyModel):
        def __init__(self, real):
            self.real, self.calls = real, 0
        def predict(self, batch):
            self.calls += 1
            if self.calls == 2:
                os._exit(137)  # the process is killed mid-run
            return self.real.predict(batch)

    class Handler(CentreSurroundHandler):
        def load_model(self):
            return Dies(super().load_model())

    config = tiny_config(sys.argv[1]).replace(model={"batch_size": 4})
    run_audit(config, sys.argv[2], quiet=True, overwrite=True, handler=Handler())
    """
)


@pytest.mark.slow
def test_killed_run_leaves_nothing_that_looks_finished_and_rerun_matches(face_set, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-c", KILLER, str(face_set), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=str(tmp_path.parent),
        env={
            **__import__("os").environ,
            "PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parents[2]),
        },
    )
    assert proc.returncode == 137, proc.stderr[-2000:]
    assert not (out / "_SUCCESS").exists() and not (out / "run_summary.json").exists()
    with pytest.raises(UserError, match="not a finished run"):
        RunDir.open(str(out)).require_finished()
    assert cli_main(["stats", str(out), "--out", str(tmp_path / "stats")]) == 2
    # a rerun over the debris with the same config and seed gives the clean run's table
    config = tiny_config(face_set)
    rerun = run_audit(config.replace(model={"batch_size": 4}), str(out), quiet=True, overwrite=True)
    clean = run_audit(config.replace(model={"batch_size": 4}), str(tmp_path / "clean"), quiet=True)
    assert rerun["survival_table_sha256"] == clean["survival_table_sha256"]
    RunDir.open(str(out)).require_finished()
