"""Write a survival table and the dead-letter table (WriteSurvivalTable, WriteDeadLetters).

Both go through Beam's Parquet sink with an explicit schema from ``schemas`` and compression on
(Beam's sink defaults to none); the rows of a survival table are its design kind's
(``DesignKind.row``). The survival file metadata carries the full config, its hash and the
package versions.
"""

from __future__ import annotations

from typing import Any

import apache_beam as beam
import pyarrow as pa

from cropaudit.schemas.records import Box, DeadLetter
from cropaudit.schemas.survival import DEAD_LETTER_SCHEMA
from cropaudit.schemas.table_rows import CODEC, TableSpec, canonical_row

ROW_GROUP_BYTES = 8 << 20


def sample_columns(item, id_suffix: str) -> dict:
    """The columns that name a sampled record in every design kind's table; ``id_suffix``
    (``#<model_name>`` when a run compares croppers) keeps composite ids unique per row."""
    return {
        "composite_id": item.composite_id + id_suffix,
        "sample_id": item.sample_id,
        "sample_index": item.sample_index,
        "variant": item.variant,
    }


def point_columns(rendered, outcome) -> dict:
    """The columns of a row that every design kind fills alike from its rendered record and
    outcome: the canvas size, the grid's shape and the salient point (``schemas.survival``'s
    ``CANVAS_FIELDS`` and ``POINT_FIELDS``; layout and cropper come with the provenance)."""
    return {
        "width": rendered.width,
        "height": rendered.height,
        "grid_rows": outcome.grid_rows,
        "grid_cols": outcome.grid_cols,
        "salient_x": outcome.salient_x,
        "salient_y": outcome.salient_y,
        "salient_score": outcome.salient_score,
    }


def crop_columns(outcome, fields: tuple[str, ...]) -> list[dict]:
    """The ``crops`` column: each crop's aspect ratio and box, then its design kind's own
    ``fields`` (``schemas.survival.CROP``, ``schemas.single_survival.SINGLE_CROP``)."""
    return [
        {"aspect_ratio": cr.aspect_ratio, **cr.box.to_dict(), **{f: getattr(cr, f) for f in fields}}
        for cr in outcome.crops
    ]


def replay_columns(row, point: str, kept: str, boxes: tuple[str, str]) -> tuple:
    """What a re-rendering must reproduce of a row (``DesignKind.replay_key``): the salient
    point and where it fell (column ``point``), each crop's outcome (``kept``) and the design's
    two boxes."""
    return (
        row["salient_x"],
        row["salient_y"],
        row[point],
        [c[kept] for c in row["crops"]],
        *(Box.from_dict(row[b]) for b in boxes),
    )


def survival_schema(
    table: TableSpec, config_toml: str, config_hash: str, versions: str
) -> pa.Schema:
    """A design kind's table schema (``DesignKind.table``) with the run's provenance in the
    file metadata."""
    return table.schema.with_metadata(
        {
            "cropaudit.config": config_toml,
            "cropaudit.config_hash": config_hash,
            "cropaudit.versions": versions,
            "cropaudit.schema": table.version,
        }
    )


def collapse_duplicates(composite_id: str, rows) -> list[tuple[str, object]]:
    """Rows that share a composite id -> one row, plus a dead letter for each conflicting copy.

    Composite ids are deterministic, so a retried or re-delivered element yields the same id;
    identical copies collapse (idempotent output), and copies that differ are a bug worth a
    dead letter rather than a silent choice.
    """
    distinct = sorted({canonical_row(r): r for r in rows}.items())
    kept = [("row", distinct[0][1])]
    for _, other in distinct[1:]:
        detail = "a re-delivered composite produced a different row (non-deterministic stage)"
        kept.append(
            (
                "dead",
                DeadLetter(
                    "write",
                    "nondeterministic_duplicate",
                    composite_id,
                    detail,
                    {"row": canonical_row(other)[:5000]},
                ),
            )
        )
    return kept


@beam.typehints.with_input_types(dict[str, Any])
class WriteSurvivalTable(beam.PTransform):
    """Survival rows (of one design kind's table) -> ``PREFIX-SSSSS-of-NNNNN.parquet`` files via
    Beam's Parquet sink."""

    def __init__(self, prefix: str, schema: pa.Schema):
        super().__init__()
        self._prefix = prefix
        self._schema = schema

    def expand(self, rows):
        return rows | "WriteParquet" >> beam.io.WriteToParquet(
            self._prefix,
            self._schema,
            codec=CODEC,
            file_name_suffix=".parquet",
            # Beam buffers 64 MB of Python rows per row group by default: 8 MB keeps a worker's
            # memory small and still gives analysts row groups of tens of thousands of rows.
            row_group_buffer_size=ROW_GROUP_BYTES,
        )


@beam.typehints.with_input_types(DeadLetter)
class WriteDeadLetters(beam.PTransform):
    """DeadLetter records -> the dead-letter Parquet table beside the survival table."""

    def __init__(self, prefix: str, config_hash: str):
        super().__init__()
        self._prefix = prefix
        self._config_hash = config_hash

    def expand(self, letters):
        config_hash = self._config_hash
        return (
            letters
            | "ToRows" >> beam.Map(lambda d: d.to_row(config_hash))
            | "WriteParquet"
            >> beam.io.WriteToParquet(
                self._prefix,
                DEAD_LETTER_SCHEMA.with_metadata({"cropaudit.schema": "dead_letter/v1"}),
                codec=CODEC,
                file_name_suffix=".parquet",
            )
        )
