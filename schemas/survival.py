"""Schema of the survival table (one row per composite) and of the dead-letter table.

Faces are named by their role in the design, not their place on the canvas: face ``a`` belongs to
the pair's first group and face ``b`` to its second; ``position`` says which of them was drawn
first (top for ``vertical_gap``, left for ``horizontal``). Winners use the same letters:
``a``, ``b``, ``tie`` (equal visible area), or ``background`` (salient point on neither face).
"""

from __future__ import annotations

import pyarrow as pa

WINNERS = ("a", "b", "tie", "background")
POSITIONS = ("a_first", "b_first")
DESIGNS = ("pairs", "same_group", "same_image")

BOX = pa.struct([("x", pa.int32()), ("y", pa.int32()), ("w", pa.int32()), ("h", pa.int32())])

CROP = pa.struct(
    [
        ("aspect_ratio", pa.float64()),
        ("x", pa.int32()),
        ("y", pa.int32()),
        ("w", pa.int32()),
        ("h", pa.int32()),
        ("a_area", pa.int64()),
        ("b_area", pa.int64()),
        ("winner", pa.string()),
    ]
)


def _face_fields(side: str) -> list[pa.Field]:
    return [
        pa.field(f"{side}_image_id", pa.string(), nullable=False),
        pa.field(f"{side}_subject_id", pa.string(), nullable=False),
        pa.field(f"{side}_group", pa.string(), nullable=False),
        pa.field(f"{side}_attributes", pa.map_(pa.string(), pa.string())),
        pa.field(f"{side}_box", BOX, nullable=False),
        pa.field(f"{side}_max", pa.float32()),
        pa.field(f"{side}_mean", pa.float32()),
    ]


SURVIVAL_SCHEMA = pa.schema(
    [
        pa.field("composite_id", pa.string(), nullable=False),
        pa.field("design", pa.string(), nullable=False),
        pa.field("pair_id", pa.string(), nullable=False),
        pa.field("group_a", pa.string(), nullable=False),
        pa.field("group_b", pa.string(), nullable=False),
        pa.field("sample_index", pa.int32(), nullable=False),
        pa.field("position", pa.string(), nullable=False),
        *_face_fields("a"),
        *_face_fields("b"),
        pa.field("layout", pa.string(), nullable=False),
        pa.field("layout_params", pa.string(), nullable=False),
        pa.field("width", pa.int32(), nullable=False),
        pa.field("height", pa.int32(), nullable=False),
        pa.field("model_name", pa.string(), nullable=False),
        pa.field("model_hash", pa.string(), nullable=False),
        pa.field("model_source", pa.string(), nullable=False),
        pa.field("preprocessing", pa.string(), nullable=False),
        pa.field("grid_rows", pa.int32(), nullable=False),
        pa.field("grid_cols", pa.int32(), nullable=False),
        pa.field("salient_x", pa.int32(), nullable=False),
        pa.field("salient_y", pa.int32(), nullable=False),
        pa.field("salient_score", pa.float32(), nullable=False),
        pa.field("point_winner", pa.string(), nullable=False),
        pa.field("margin", pa.float32()),
        pa.field("crops", pa.list_(CROP), nullable=False),
        pa.field("seed", pa.int64(), nullable=False),
        pa.field("config_hash", pa.string(), nullable=False),
        pa.field("versions", pa.string(), nullable=False),
    ]
)

DEAD_LETTER_SCHEMA = pa.schema(
    [
        pa.field("stage", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("element_id", pa.string(), nullable=False),
        pa.field("detail", pa.string(), nullable=False),
        pa.field("record", pa.string(), nullable=False),
        pa.field("config_hash", pa.string(), nullable=False),
    ]
)
