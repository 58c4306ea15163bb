"""The write stages on their own: rows and dead letters -> Parquet files, read back."""

from __future__ import annotations

import glob

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq

from cropaudit.schemas.records import DeadLetter
from cropaudit.transforms.write import WriteDeadLetters, WriteSurvivalTable
from tests.test_stages import local_pipeline


def read_back(prefix) -> pa.Table:
    files = sorted(glob.glob(f"{prefix}-*.parquet"))
    assert files, f"nothing written at {prefix}"
    return pa.concat_tables(pq.read_table(f) for f in files)


def test_write_survival_table_writes_every_row_with_the_schema_given(tmp_path):
    schema = pa.schema([("composite_id", pa.string()), ("salient_x", pa.int64())]).with_metadata(
        {"cropaudit.schema": "test/v1"}
    )
    rows = [{"composite_id": f"c{i}", "salient_x": 10 * i} for i in range(5)]
    with local_pipeline() as p:
        _ = p | beam.Create(rows) | WriteSurvivalTable(str(tmp_path / "part"), schema)
    table = read_back(tmp_path / "part")
    assert table.schema.metadata[b"cropaudit.schema"] == b"test/v1"
    assert sorted(table.to_pylist(), key=lambda r: r["composite_id"]) == rows


def test_write_dead_letters_keeps_stage_reason_id_and_config_hash(tmp_path):
    letters = [
        DeadLetter("render", "image_missing", "c1", "c1.png does not exist", {"a": 1}),
        DeadLetter("predict", "inference_error", "c2#m", "RuntimeError: boom"),
    ]
    with local_pipeline() as p:
        _ = p | beam.Create(letters) | WriteDeadLetters(str(tmp_path / "part"), "cfg123")
    table = read_back(tmp_path / "part")
    assert table.schema.metadata[b"cropaudit.schema"] == b"dead_letter/v1"
    got = sorted(
        (r["stage"], r["reason"], r["element_id"], r["detail"], r["record"], r["config_hash"])
        for r in table.to_pylist()
    )
    assert got == [
        ("predict", "inference_error", "c2#m", "RuntimeError: boom", "{}", "cfg123"),
        ("render", "image_missing", "c1", "c1.png does not exist", '{"a": 1}', "cfg123"),
    ]
