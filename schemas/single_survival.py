"""Schema of the single-image survival table (``single_survival/v1``): one row per image.

The single-image design (design kind ``single``, the "male gaze" check of Twitter's 2021
analysis) shows one full-body image of one person alone and asks whether the cropper keeps the
face or the body. Its rows say so in their own words, with none of the pair table's ``a``/``b``:

- the person: ``image_id``, ``subject_id``, ``group`` (the run's group of the image),
  ``attributes``;
- where things lie on the canvas: ``face_box`` (the manifest's face box, scaled and moved with
  the image) and ``image_box`` (the whole image; padding around it is background);
- ``point_on``: where the salient point fell, one of :data:`OUTCOMES` (``face``: in the face box;
  ``body``: elsewhere on the image, since in a full-body image everything but the face is body;
  ``background``: off the image), null for a box-only cropper;
- ``crops``: per aspect ratio the box, the visible ``face_area``, the visible rest of the image
  ``body_area`` and what the crop ``kept``: ``face`` when more than half of the face box is
  visible, else ``body`` when any of the image is, else ``background``;
- ``face_max``/``face_mean``: the saliency inside the face box (NaN without a grid);
- ids, variants, croppers and provenance as in the pair table (:mod:`cropaudit.schemas.survival`:
  ``sample_id``, ``variant``, ``composite_id`` with ``@<variant>`` and ``#<model_name>``).

Tables written before this one existed (survival/v3, v4) hold such rows in the pair table with
``design = "single"``; they are read as before (the statistics stage leaves them out).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from cropaudit.schemas.survival import (
    BOX,
    CANVAS_FIELDS,
    CROPPER_FIELDS,
    POINT_FIELDS,
    RUN_FIELDS,
    crop_struct,
    required,
)
from cropaudit.schemas.table_rows import TableSpec

#: The design kind, its folder in a run directory and the version its files record.
SINGLE = "single"
TABLE = "single_survival"
VERSION = "single_survival/v1"
#: Where the salient point fell and what a crop kept, in this order.
FACE, BODY, BACKGROUND = OUTCOMES = ("face", "body", "background")

SINGLE_CROP = crop_struct(
    ("face_area", pa.int64()), ("body_area", pa.int64()), ("kept", pa.string())
)

SINGLE_SURVIVAL_SCHEMA = pa.schema(
    [
        required("composite_id"),
        required("sample_id"),
        required("group"),
        required("sample_index", pa.int32()),
        required("variant"),
        required("image_id"),
        required("subject_id"),
        pa.field("attributes", pa.map_(pa.string(), pa.string())),
        required("face_box", BOX),
        required("image_box", BOX),
        pa.field("face_max", pa.float32()),
        pa.field("face_mean", pa.float32()),
        *CANVAS_FIELDS,
        *CROPPER_FIELDS,
        *POINT_FIELDS,
        pa.field("point_on", pa.string()),
        required("crops", pa.list_(SINGLE_CROP)),
        *RUN_FIELDS,
    ]
)
SPEC = TableSpec(TABLE, VERSION, SINGLE_SURVIVAL_SCHEMA)

#: single_survival column -> the survival/v3 column that held it (the others keep their name).
FROM_V3 = {
    "group": "group_a",
    "image_id": "a_image_id",
    "subject_id": "a_subject_id",
    "attributes": "a_attributes",
    "face_box": "a_box",
    "face_max": "a_max",
    "face_mean": "a_mean",
    "point_on": "point_winner",
}


def from_survival_v3(table: pa.Table) -> pa.Table:
    """The single-image rows (``design = "single"``) of a survival/v3 or v4 table, in this
    table's words: ``a_*`` become the image's columns, ``point_winner`` ``point_on``, and per crop
    ``a_area``/``b_area``/``winner`` ``face_area``/``body_area``/``kept``. Columns an old table
    lacks are empty strings (text) or nulls."""
    if "design" not in table.column_names:
        return SINGLE_SURVIVAL_SCHEMA.empty_table()
    rows = table.filter(pc.equal(table["design"], SINGLE))
    crops = [
        [
            {
                **{k: c[k] for k in ("aspect_ratio", "x", "y", "w", "h")},
                "face_area": c["a_area"],
                "body_area": c["b_area"],
                "kept": c["winner"],
            }
            for c in cs or ()
        ]
        for cs in rows["crops"].to_pylist()
    ]
    arrays = []
    for field in SINGLE_SURVIVAL_SCHEMA:
        source = FROM_V3.get(field.name, field.name)
        if field.name == "crops":
            arrays.append(pa.array(crops, field.type))
        elif source in rows.column_names:
            arrays.append(rows[source].combine_chunks().cast(field.type))
        elif pa.types.is_string(field.type):
            arrays.append(pa.array([""] * rows.num_rows, field.type))
        else:
            arrays.append(pa.nulls(rows.num_rows, field.type))
    return pa.Table.from_arrays(arrays, schema=SINGLE_SURVIVAL_SCHEMA)
