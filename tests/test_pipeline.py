"""End-to-end audit runs on the real Beam DirectRunner, TensorFlow and Parquet."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import apache_beam as beam
import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from cropaudit import config as config_mod
from cropaudit.errors import UserError
from cropaudit.pipelines.audit_pipeline import run_audit
from cropaudit.pipelines.demo_pipeline import embedded_config
from cropaudit.rundir import RunDir, read_table, table_hash
from cropaudit.schemas.survival import DEAD_LETTER_SCHEMA, SURVIVAL_SCHEMA
from cropaudit.synthetic import write_face_set

pytestmark = pytest.mark.slow


def small_config(**design) -> config_mod.ExperimentConfig:
    base = embedded_config()
    return base.replace(
        name="test",
        design={"composites_per_pair": 2, "controls_per_group": 1, **design},
    )


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    return write_face_set(tmp_path_factory.mktemp("faces"), seed=3, subjects_per_group=3)


@pytest.fixture(scope="module")
def run_dir(faces, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    cfg = small_config().replace(manifest={"path": str(faces)})
    run_audit(cfg, str(out), quiet=True, overwrite=True)
    return out


def test_run_publishes_tables_summary_and_marker(run_dir):
    run = RunDir.open(str(run_dir)).require_finished()
    summary = json.loads(Path(run.summary_path).read_text())
    # 6 pairs x 2 samples x 2 orders + (same_group + same_image) x 4 groups x 1 x 2 orders
    assert summary["composites_expected"] == 24 + 16
    assert summary["survival_rows"] == 40
    assert summary["all_composites_accounted"] is True
    assert summary["duplicate_composite_ids"] == 0
    table = run.survival_table()
    assert table.schema.remove_metadata() == SURVIVAL_SCHEMA.remove_metadata()
    assert run.dead_letters().schema.remove_metadata() == DEAD_LETTER_SCHEMA


def test_survival_rows_carry_provenance_and_geometry(run_dir):
    files = sorted((run_dir / "survival").glob("*.parquet"))
    meta = pq.read_metadata(files[0])
    assert meta.row_group(0).column(0).compression == "ZSTD"
    kv = meta.metadata
    cfg = config_mod.loads(kv[b"cropaudit.config"].decode())
    assert cfg.config_hash == kv[b"cropaudit.config_hash"].decode()
    df = read_table(str(run_dir / "survival")).to_pandas()
    assert set(df.config_hash) == {cfg.config_hash}
    assert set(df.model_name) == {"baseline-centre-surround"}
    assert (df.width == 583).all() and (df.height == 3000).all()
    top = {"x": 0, "y": 0, "w": 583, "h": 887}
    bottom = {"x": 0, "y": 2113, "w": 583, "h": 887}
    for _, row in df.iterrows():
        first, second = (
            (row.a_box, row.b_box) if row.position == "a_first" else (row.b_box, row.a_box)
        )
        assert first == top and second == bottom
        assert [c["aspect_ratio"] for c in row.crops] == [0.56, 1.0, 1.14, 2.0]
        assert row.point_winner in ("a", "b", "tie", "background")
    assert df.versions.str.contains(f"apache-beam={beam.__version__}", regex=False).all()


def test_every_sampled_pair_appears_in_both_positions(run_dir):
    df = read_table(str(run_dir / "survival")).to_pandas()
    key = df.composite_id.str.rsplit(":", n=1).str[0]
    by_sample = df.groupby(key)
    assert (by_sample.position.apply(sorted).map(tuple) == ("a_first", "b_first")).all()
    # both orders show the same two images
    assert (by_sample.a_image_id.nunique() == 1).all()
    assert (by_sample.b_image_id.nunique() == 1).all()
    same_image = df[df.design == "same_image"]
    assert (same_image.a_image_id == same_image.b_image_id).all()
    same_group = df[df.design == "same_group"]
    assert (same_group.a_subject_id != same_group.b_subject_id).all()


def test_duckdb_and_pandas_read_the_survival_table(run_dir):
    pattern = str(run_dir / "survival" / "*.parquet")
    rows = duckdb.sql(
        f"SELECT pair_id, count(*) AS n, avg(CASE WHEN point_winner = 'a' THEN 1 ELSE 0 END) "
        f"AS a_rate FROM '{pattern}' WHERE design = 'pairs' GROUP BY pair_id ORDER BY pair_id"
    ).fetchall()
    assert len(rows) == 6 and all(n == 4 for _, n, _ in rows)
    crops = duckdb.sql(
        f"SELECT count(*) FROM (SELECT unnest(crops) AS c FROM '{pattern}') WHERE c.w = 583"
    ).fetchall()[0][0]
    assert crops == 40 * 4
    df = pd.read_parquet(run_dir / "survival")
    assert len(df) == 40


def test_rerun_and_multiprocess_give_identical_tables(faces, run_dir, tmp_path):
    cfg = small_config().replace(manifest={"path": str(faces)})
    reference = table_hash(read_table(str(run_dir / "survival")))
    run_audit(cfg, str(tmp_path / "again"), quiet=True)
    run_audit(
        cfg,
        str(tmp_path / "multi"),
        quiet=True,
        pipeline_args=["--direct_num_workers=2", "--direct_running_mode=multi_processing"],
    )
    for name in ("again", "multi"):
        assert table_hash(read_table(str(tmp_path / name / "survival"))) == (reference)
    assert (
        json.loads((tmp_path / "multi" / "run_summary.json").read_text())["survival_table_sha256"]
        == reference
    )


def test_a_model_shared_across_worker_processes_gives_the_same_table(faces, run_dir, tmp_path):
    """``--shared-model-copies`` (Beam's share_model_across_processes, for a GPU): two worker
    processes predict through one copy of the model per machine, and the rows do not move."""
    cfg = small_config().replace(manifest={"path": str(faces)})
    out = tmp_path / "shared"
    run_audit(
        cfg,
        str(out),
        quiet=True,
        shared_model_copies=1,
        pipeline_args=["--direct_num_workers=2", "--direct_running_mode=multi_processing"],
    )
    reference = table_hash(read_table(str(run_dir / "survival")))
    assert table_hash(read_table(str(out / "survival"))) == reference
    # refused first, before the manifest (missing here) is read or a model is loaded
    missing = cfg.replace(manifest={"path": str(tmp_path / "no-such-manifest.csv")})
    with pytest.raises(UserError, match="--shared-model-copies must be 0"):
        run_audit(missing, str(tmp_path / "bad"), quiet=True, shared_model_copies=-1)
    assert not (tmp_path / "bad").exists()


def test_reruns_under_other_hash_seeds_give_the_same_table(faces, tmp_path):
    """Each run in its own interpreter, with string hashing seeded differently: nothing in the
    design, rendering or writing may depend on set or dict order of strings."""
    config = tmp_path / "config.toml"
    config.write_text(small_config().replace(manifest={"path": str(faces)}).to_toml())
    tables, hashes = [], []
    for seed in ("0", "4242"):
        out = tmp_path / f"seed-{seed}"
        subprocess.run(
            [sys.executable, "-m", "cropaudit", "run", str(config), "--out", str(out), "--quiet"],
            env={**os.environ, "PYTHONHASHSEED": seed},
            check=True,
            timeout=600,
        )
        hashes.append(json.loads((out / "run_summary.json").read_text())["survival_table_sha256"])
        tables.append(read_table(str(out / "survival")).to_pandas())
    assert hashes[0] == hashes[1]
    first, second = (t.sort_values("composite_id").reset_index(drop=True) for t in tables)
    assert len(first) == 40
    pd.testing.assert_frame_equal(first.astype(str), second.astype(str))


def test_bad_rows_and_unreadable_images_are_dead_lettered_while_the_rest_completes(faces, tmp_path):
    manifest = faces.read_text().splitlines()
    header, rows = manifest[0], manifest[1:]
    broken = tmp_path / "images"
    broken.mkdir()
    (broken / "truncated.jpg").write_bytes(
        (faces.parent / rows[0].split(",")[1]).read_bytes()[:300]
    )
    (broken / "text.jpg").write_text("not an image")
    extra = [
        "bad-1,,nosubject,light,short",  # missing image_uri
        f"bad-2,{broken / 'truncated.jpg'},light-short-00,light,short",
        f"bad-3,{broken / 'text.jpg'},light-short-01,light,short",
        f"bad-4,{broken / 'missing.jpg'},light-short-02,light,short",
    ]
    m = tmp_path / "manifest.csv"
    lines = [header] + [r.replace("images/", f"{faces.parent}/images/") for r in rows] + extra
    m.write_text("\n".join(lines) + "\n")
    cfg = small_config(composites_per_pair=6).replace(manifest={"path": str(m)})
    summary = run_audit(cfg, str(tmp_path / "out"), quiet=True)
    dead = read_table(str(tmp_path / "out" / "dead_letter")).to_pandas()
    assert "manifest" in set(dead.stage)
    reasons = set(dead[dead.stage == "render"].reason)
    assert reasons <= {"image_truncated", "image_not_an_image", "image_missing"}
    assert reasons, "a composite drew one of the broken images"
    assert summary["all_composites_accounted"]
    assert (
        summary["survival_rows"] + summary["composites_dead_lettered"]
        == (summary["composites_expected"])
    )


def test_unfinished_run_is_refused(tmp_path):
    (tmp_path / "survival").mkdir()
    with pytest.raises(UserError, match="not a finished run"):
        RunDir.open(str(tmp_path)).require_finished()


def test_existing_output_needs_overwrite(faces, run_dir):
    cfg = small_config().replace(manifest={"path": str(faces)})
    with pytest.raises(UserError, match="--overwrite"):
        run_audit(cfg, str(run_dir), quiet=True)


def test_fastgaze_vxm_and_converted_model_run_in_the_pipeline(faces, tmp_path, fastgaze_vxm):
    from cropaudit.model.fastgaze.convert import convert

    converted = tmp_path / "fastgaze_savedmodel"
    convert(str(fastgaze_vxm), str(converted))
    cfg = small_config(pairs=[["dark/long", "light/short"]], controls=[]).replace(
        manifest={"path": str(faces)}
    )
    tables = []
    for name, spec in (("vxm", f"fastgaze:{fastgaze_vxm}"), ("converted", f"fastgaze:{converted}")):
        summary = run_audit(cfg.replace(model={"spec": spec}), str(tmp_path / name), quiet=True)
        assert summary["survival_rows"] == 4
        df = read_table(str(tmp_path / name / "survival")).to_pandas()
        assert set(df.model_name) == {"fastgaze"}
        assert set(df.model_hash) == {
            "b76cefc218ec8969cc62b26ad0f41111800421287e7f2725d808da1d90afbdf7"
        }
        assert set(df.model_source) == {spec.split(":", 1)[1]}
        assert (df.grid_rows == 20).all() and (df.grid_cols == 4).all()
        tables.append(df.sort_values("composite_id")[["salient_x", "salient_y", "point_winner"]])
    assert tables[0].values.tolist() == tables[1].values.tolist()


def test_fastgaze_tables_do_not_depend_on_how_the_runner_batches(faces, tmp_path, fastgaze_vxm):
    """Scores are computed at one fixed batch size, so the in-memory runner (one bundle) and two
    worker processes (other bundles, so other batch-mates and zero-padded short batches) write
    bit-identical tables, saliency floats included."""
    cfg = small_config(controls=[]).replace(
        manifest={"path": str(faces)}, model={"spec": f"fastgaze:{fastgaze_vxm}", "batch_size": 5}
    )
    hashes, padding = [], []
    for name, args in (
        ("memory", None),
        ("workers", ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]),
    ):
        summary = run_audit(cfg, str(tmp_path / name), quiet=True, pipeline_args=args)
        assert summary["survival_rows"] == 24
        hashes.append(table_hash(read_table(str(tmp_path / name / "survival"))))
        padding.append(summary["beam_counters"].get("batch_padding_rows"))
    assert padding[0] != padding[1], "both runs batched alike: nothing was compared"
    assert hashes[0] == hashes[1]
