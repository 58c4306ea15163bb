"""Schema of the pair survival table (one row per composite) and of the dead-letter table, and
the vocabulary of pair rows (designs, positions, winners) that every module imports from here.

Faces are named by their role in the design, not their place on the canvas: face ``a`` belongs to
the pair's first group and face ``b`` to its second; ``position`` says which of them was drawn
first (top for ``vertical_gap``, left for ``horizontal``). Winners use the same letters:
``a``, ``b``, ``tie`` (equal visible area), or ``background`` (salient point on neither face).

Sweeps (survival/v2): ``variant`` names the rendering variant of the row (``base``, or the axes
where it differs from the base, e.g. ``pad=16``; ``layout_params`` and ``preprocessing`` hold its
actual values), and ``sample_id`` is the variant-independent id of the sampled composite (same
faces, same position): the rows of one sample across variants share it. ``composite_id`` stays
unique per row (``<sample_id>@<variant>``; the base keeps ``<sample_id>``). A run without a sweep
has ``variant = "base"`` and ``sample_id = composite_id`` on every row.

Single images (survival/v3) are no longer written here: the single-image design has its own
table, ``single_survival`` (:mod:`cropaudit.schemas.single_survival`). ``image_box``, the
nullable ``b_*`` columns and the ``single`` value of ``design`` stay so that v3/v4 tables that
hold such rows still read (the statistics stage leaves those rows out); new tables have
``image_box`` null and every ``b_*`` set.

Croppers (survival/v4): a row's cropper is any model, saliency map or not (``model_name``,
``model_hash``, ``model_source`` and ``preprocessing`` record its name, version and settings). A
box-only cropper (``smartcrop``, a plugin) has no grid nor salient point: ``grid_rows``,
``grid_cols``, ``salient_*`` and ``point_winner`` are null, ``*_max``/``*_mean``/``margin`` NaN,
and only the crop criteria apply. A run comparing several croppers (``model.compare``) renders
each composite once and writes one row per composite and cropper; its ``composite_id`` is then
``<composite>#<model_name>`` (unique per row), while ``sample_id`` stays the cropper-independent
id that matches one composite's rows across croppers.
"""

from __future__ import annotations

import pyarrow as pa

from cropaudit.schemas.table_rows import TableSpec

#: The folder of this table in a run directory, and the version its files' metadata records.
TABLE = "survival"
VERSION = "survival/v4"
#: The design kind whose rows this table holds, and the designs of its rows: the pairs under
#: audit and the controls (same group, same image) a pair design may add.
PAIRS = "pairs"
SAME_GROUP, SAME_IMAGE = CONTROLS = ("same_group", "same_image")
DESIGNS = (PAIRS, *CONTROLS)
#: Where face ``a`` was drawn (first: top or left).
A_FIRST, B_FIRST = POSITIONS = ("a_first", "b_first")
#: Point and crop winners, in the order of the statistics' outcome codes.
WINNERS = ("a", "b", "tie", "background")

BOX = pa.struct([("x", pa.int32()), ("y", pa.int32()), ("w", pa.int32()), ("h", pa.int32())])


def required(name: str, type_: pa.DataType | None = None) -> pa.Field:
    """A column every row fills (text unless ``type_`` says otherwise)."""
    return pa.field(name, pa.string() if type_ is None else type_, nullable=False)


def crop_struct(*fields: tuple[str, pa.DataType]) -> pa.StructType:
    """One crop of a ``crops`` column: its aspect ratio and box, then its design kind's
    ``fields``."""
    return pa.struct([("aspect_ratio", pa.float64()), *BOX, *fields])


CROP = crop_struct(("a_area", pa.int64()), ("b_area", pa.int64()), ("winner", pa.string()))


def _face_fields(side: str, nullable: bool = False) -> list[pa.Field]:
    """Columns of one face; face ``b``'s are nullable (``single`` rows have no face b)."""
    return [
        pa.field(f"{side}_image_id", pa.string(), nullable=nullable),
        pa.field(f"{side}_subject_id", pa.string(), nullable=nullable),
        pa.field(f"{side}_group", pa.string(), nullable=nullable),
        pa.field(f"{side}_attributes", pa.map_(pa.string(), pa.string())),
        pa.field(f"{side}_box", BOX, nullable=nullable),
        pa.field(f"{side}_max", pa.float32()),
        pa.field(f"{side}_mean", pa.float32()),
    ]


#: Columns every survival table has, in this order, around its design's own: the canvas, the
#: cropper, its salient point (null for a box-only cropper, survival/v4) and the run.
CANVAS_FIELDS = [
    required("layout"),
    required("layout_params"),
    required("width", pa.int32()),
    required("height", pa.int32()),
]
CROPPER_FIELDS = [
    required("model_name"),
    required("model_hash"),
    required("model_source"),
    required("preprocessing"),
]
POINT_FIELDS = [
    pa.field("grid_rows", pa.int32()),
    pa.field("grid_cols", pa.int32()),
    pa.field("salient_x", pa.int32()),
    pa.field("salient_y", pa.int32()),
    pa.field("salient_score", pa.float32()),
]
RUN_FIELDS = [
    required("seed", pa.int64()),
    required("config_hash"),
    required("versions"),
]

SURVIVAL_SCHEMA = pa.schema(
    [
        required("composite_id"),
        required("sample_id"),
        required("design"),
        required("pair_id"),
        required("group_a"),
        required("group_b"),
        required("sample_index", pa.int32()),
        required("position"),
        required("variant"),
        *_face_fields("a"),
        *_face_fields("b", nullable=True),
        *CANVAS_FIELDS,
        pa.field("image_box", BOX),  # survival/v3's single rows only: the image on the canvas
        *CROPPER_FIELDS,
        *POINT_FIELDS,
        pa.field("point_winner", pa.string()),
        pa.field("margin", pa.float32()),
        required("crops", pa.list_(CROP)),
        *RUN_FIELDS,
    ]
)

SPEC = TableSpec(TABLE, VERSION, SURVIVAL_SCHEMA)

#: Every dead-letter column is required text.
DEAD_LETTER_SCHEMA = pa.schema(
    [
        required(name)
        for name in ("stage", "reason", "element_id", "detail", "record", "config_hash")
    ]
)
