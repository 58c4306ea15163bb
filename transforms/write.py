"""Write the survival table and the dead-letter table (WriteSurvivalTable, WriteDeadLetters).

Both go through Beam's Parquet sink with an explicit schema from ``schemas`` and compression on
(Beam's sink defaults to none). The survival file metadata carries the full config, its hash and
the package versions.
"""

from __future__ import annotations

import json
from typing import Any

import apache_beam as beam
import pyarrow as pa

from cropaudit.schemas.survival import DEAD_LETTER_SCHEMA, SURVIVAL_SCHEMA
from cropaudit.transforms.records import CropOutcome, DeadLetter, Face, RenderedComposite

CODEC = "zstd"
ROW_GROUP_BYTES = 8 << 20


def _face_columns(side: str, face: Face, group: str, box, fmax: float, fmean: float) -> dict:
    return {
        f"{side}_image_id": face.image_id,
        f"{side}_subject_id": face.subject_id,
        f"{side}_group": group,
        f"{side}_attributes": list(face.attributes),
        f"{side}_box": box.to_dict(),
        f"{side}_max": fmax,
        f"{side}_mean": fmean,
    }


def survival_row(
    rendered: RenderedComposite, outcome: CropOutcome, provenance: dict, id_suffix: str = ""
) -> dict:
    """One survival-table row; ``provenance`` holds the columns shared by every row of the
    composite's variant and cropper (model, layout, layout params, preprocessing, seed, config
    hash, versions); ``id_suffix`` (``#<model_name>`` when a run compares croppers) keeps
    composite ids unique per row."""
    c = rendered.composite
    single = c.design == "single"  # one image: a is the person, a_box its face (schemas.survival)
    if single:
        names = ("image_id", "subject_id", "group", "attributes", "box", "max", "mean")
        b_columns = dict.fromkeys(f"b_{n}" for n in names)
    else:
        b_columns = _face_columns(
            "b", c.face_b, c.group_b, rendered.box_b, outcome.b_max, outcome.b_mean
        )
    return {
        "composite_id": c.composite_id + id_suffix,
        "sample_id": c.sample_id,
        "design": c.design,
        "pair_id": c.pair_id,
        "group_a": c.group_a,
        "group_b": c.group_b,
        "sample_index": c.sample_index,
        "position": c.position,
        "variant": c.variant,
        **_face_columns("a", c.face_a, c.group_a, rendered.box_a, outcome.a_max, outcome.a_mean),
        **b_columns,
        "width": rendered.width,
        "height": rendered.height,
        "image_box": rendered.box_b.to_dict() if single else None,
        "grid_rows": outcome.grid_rows,
        "grid_cols": outcome.grid_cols,
        "salient_x": outcome.salient_x,
        "salient_y": outcome.salient_y,
        "salient_score": outcome.salient_score,
        "point_winner": outcome.point_winner,
        "margin": None if single else outcome.margin,
        "crops": [
            {
                "aspect_ratio": cr.aspect_ratio,
                **cr.box.to_dict(),
                "a_area": cr.a_area,
                "b_area": cr.b_area,
                "winner": cr.winner,
            }
            for cr in outcome.crops
        ],
        **provenance,
    }


def survival_schema(config_toml: str, config_hash: str, versions: str) -> pa.Schema:
    return SURVIVAL_SCHEMA.with_metadata(
        {
            "cropaudit.config": config_toml,
            "cropaudit.config_hash": config_hash,
            "cropaudit.versions": versions,
            "cropaudit.schema": "survival/v4",
        }
    )


def canonical_row(row: dict) -> str:
    """A row as canonical JSON: equal rows, equal text (duplicate checks, content hashes)."""
    return json.dumps(row, sort_keys=True, default=str)


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
    """Survival rows -> ``PREFIX-SSSSS-of-NNNNN.parquet`` files via Beam's Parquet sink."""

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
