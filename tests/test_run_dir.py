"""RunDir: a run folder's names, tables, hash, summary, marker and verification, on run folders
written here (no pipeline), and the audit driver's single reading of the manifest."""

from __future__ import annotations

import hashlib
import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cropaudit import config as config_mod
from cropaudit.errors import UserError
from cropaudit.rundir import RUN_OUTPUT, RunDir, ownership, read_table, table_hash
from cropaudit.rundir.run_dir import DEAD_LETTER, SUMMARY, SURVIVAL, TABLES, write_run_dir
from cropaudit.schemas.survival import DEAD_LETTER_SCHEMA
from cropaudit.stats.synthetic_tables import synthetic_survival


def _run(tmp_path, tables, name="run"):
    """A finished-looking run folder with an empty dead-letter part (as a run writes one)."""
    root = write_run_dir(tables, tmp_path / name)
    pq.write_table(DEAD_LETTER_SCHEMA.empty_table(), root / DEAD_LETTER / "part-0.parquet")
    return RunDir(str(root))


def test_open_finds_the_run_inside_a_demo_folder_and_the_run_of_its_survival_folder(tmp_path):
    run = _run(tmp_path / "demo", synthetic_survival(10))
    assert RunDir.open(str(tmp_path / "demo")).root == run.root
    assert RunDir.open(str(tmp_path / "demo") + "/").root == run.root
    assert RunDir.open(run.root).root == run.root  # a finished run is itself
    assert RunDir.open(run.folder(SURVIVAL)).root == run.root


def test_an_unfinished_run_is_refused_by_name(tmp_path):
    run = write_run_dir(synthetic_survival(10), tmp_path / "out" / "run", success=False)
    with pytest.raises(UserError, match=f"{run} is not a finished run"):
        RunDir.open(str(tmp_path / "out")).verified()
    assert not RunDir(str(run)).finished


def test_table_reads_every_part_and_the_hash_ignores_sharding_and_order(tmp_path):
    whole = synthetic_survival(60, seed=1)
    one = _run(tmp_path, whole, "one")
    # the same rows in three parts, reversed: same table, same hash
    parts = [whole.slice(40, 20), whole.slice(20, 20), whole.slice(0, 20)]
    three = _run(tmp_path, parts, "three")
    assert len(three.table_files(SURVIVAL)) == 3
    assert three.survival_table().num_rows == 60
    assert table_hash(one.survival_table()) == table_hash(three.survival_table())
    assert table_hash(three.batches(SURVIVAL)) == table_hash(one.survival_table())
    assert sorted(three.composite_ids()) == sorted(whole.column("composite_id").to_pylist())
    # an independent expectation: sha256 over the sorted per-row sha256 digests
    from cropaudit.schemas.table_rows import canonical_row

    digests = sorted(hashlib.sha256(canonical_row(r).encode()).digest() for r in whole.to_pylist())
    assert table_hash(whole) == hashlib.sha256(b"".join(digests)).hexdigest()
    changed = whole.to_pylist()
    changed[7]["point_winner"] = "b" if changed[7]["point_winner"] == "a" else "a"
    assert table_hash(pa.Table.from_pylist(changed, schema=whole.schema)) != table_hash(whole)


def test_a_missing_table_is_a_clear_error(tmp_path):
    run = RunDir(str(tmp_path))
    with pytest.raises(UserError, match="no Parquet files under"):
        run.table(SURVIVAL)


def test_verified_names_a_copied_in_part_unless_trusted(tmp_path):
    run = _run(tmp_path, synthetic_survival(30))
    assert run.verified() == []
    (part,) = run.table_files(SURVIVAL)
    shutil.copy(part, run.folder(SURVIVAL) + "/part-copy.parquet")
    with pytest.raises(UserError, match="part-copy.parquet .30 rows. is not a part the run wrote"):
        run.verified()
    found = run.verified(trust_modified=True)
    assert "the table has 60 rows, the run wrote 30" in found


def test_duplicate_rows_collapse_and_a_differing_copy_is_dead_lettered(tmp_path):
    table = synthetic_survival(20, seed=2)
    run = _run(tmp_path, table)
    rows = table.slice(0, 1).to_pylist()
    rows[0]["margin"] = rows[0]["margin"] + 1.0  # same composite id, different row
    pq.write_table(table, run.folder(SURVIVAL) + "/part-again.parquet")  # identical copies
    pq.write_table(
        pa.Table.from_pylist(rows, schema=table.schema), run.folder(SURVIVAL) + "/x.parquet"
    )
    assert run.remove_duplicate_rows("cfg") == 21
    assert sorted(run.composite_ids()) == sorted(table.column("composite_id").to_pylist())
    assert table_hash(run.survival_table()) == table_hash(table)
    dead = run.dead_letters().to_pylist()
    assert [(d["reason"], d["element_id"]) for d in dead] == [
        ("nondeterministic_duplicate", rows[0]["composite_id"])
    ]
    assert run.remove_duplicate_rows("cfg") == 0


def test_summary_records_what_was_published_and_publish_finishes_the_folder(tmp_path):
    config = config_mod.loads('name = "unit"\n')
    table = synthetic_survival(40, seed=3)
    run = RunDir(str(tmp_path / "run"))
    with run.writing(overwrite=False, config_hash=config.config_hash, command="test"):
        for name in TABLES:
            (tmp_path / "run" / name).mkdir()
        pq.write_table(table, run.part_prefix(SURVIVAL) + "-0.parquet")
        pq.write_table(
            DEAD_LETTER_SCHEMA.empty_table(), run.part_prefix(DEAD_LETTER) + "-0.parquet"
        )
        summary = run.summarize(config, 40, manifest_faces=12)
        assert not run.finished  # the marker comes last
        run.publish(config, summary)
    assert summary["survival_rows"] == 40 and summary["all_composites_accounted"] is True
    assert summary["survival_table_sha256"] == table_hash(table)
    assert summary["survival_table"]["rows"] == 40 and summary["manifest_faces"] == 12
    assert run.summary == json.loads((tmp_path / "run" / SUMMARY).read_text())
    assert config_mod.loads(run.config_text()).config_hash == config.config_hash
    assert run.verified() == []
    owner = ownership.read_owner(run.root)
    assert owner["finished"] and "survival/part-0.parquet" in owner["files"]
    with pytest.raises(UserError, match="already holds a run output"):
        run.check_writable(overwrite=False, command="again")
    short = run.summarize(config, 41)
    assert short["all_composites_accounted"] is False  # one planned composite is missing


def test_the_run_output_covers_every_table_it_names():
    for name in TABLES:
        assert ownership.matches(f"{name}/part-00000-of-00001.parquet", RUN_OUTPUT.patterns)
    assert set(RUN_OUTPUT.tables) == set(TABLES)
    assert not ownership.matches("notes/part-0.parquet", RUN_OUTPUT.patterns)


def test_the_audit_driver_reads_the_manifest_once(tmp_path, monkeypatch):
    """The driver reads and checks the manifest; the pipeline starts from what it learnt."""
    from cropaudit.pipelines.audit_pipeline import run_audit
    from cropaudit.pipelines.demo_pipeline import embedded_config
    from cropaudit.synthetic import write_face_set
    from cropaudit.transforms import manifests

    faces = write_face_set(tmp_path / "faces", seed=5, subjects_per_group=2)
    config = embedded_config().replace(
        name="once",
        manifest={"path": str(faces)},
        design={"composites_per_pair": 1, "controls": []},
    )
    reads = []
    real = manifests.read_manifest
    monkeypatch.setattr(
        manifests, "read_manifest", lambda *a, **k: reads.append(a) or real(*a, **k)
    )
    summary = run_audit(config, str(tmp_path / "run"), quiet=True)
    assert len(reads) == 1
    run = RunDir.open(str(tmp_path / "run"))
    assert summary["manifest_faces"] == len(real(str(faces)).rows)
    assert run.survival_table().num_rows == summary["composites_expected"] > 0
    assert read_table(run.folder(SURVIVAL)).num_rows == summary["survival_rows"]


def test_the_readme_example_runs_on_a_demo_folder(tmp_path):
    """The README's Python example, as written, on a demo-shaped folder."""
    import re

    from tests.conftest import REPO

    text = (REPO / "README.md").read_text(encoding="utf-8")
    (code,) = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "RunDir" in b]
    table = synthetic_survival(30, seed=6)
    run = _run(tmp_path / "demo", table)
    summary = {**run.summary, "survival_table_sha256": table_hash(table)}
    (tmp_path / "demo" / "run" / SUMMARY).write_text(json.dumps(summary))
    namespace: dict = {}
    exec(code.replace("cropaudit-demo", str(tmp_path / "demo")), namespace)  # noqa: S102
    assert namespace["survival"].num_rows == 30 and namespace["estimates"].num_rows == 0
