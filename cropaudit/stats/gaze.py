"""The "male gaze" check: how often the cropper lands on the face of a single full-body image.

Twitter's 2021 analysis (Yee, Tantipongpipat, Mishra) asked, for single images of people, whether
the salient point falls on the face or elsewhere on the body, by gender. A single-image run
(``[design] kind = "single"``) records it per image in its own table, ``single_survival``
(``schemas.single_survival``): ``point_on`` is ``face``, ``body`` or ``background`` (off the
image), and each crop ``kept`` the ``face`` when it keeps more than half of the face box.
:func:`face_rates` turns that into the share of images on the face per group, with a Wilson
interval.

The interval treats images as independent; a subject with several images counts several times,
so with many images per subject it is too narrow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from cropaudit.schemas.criteria import POINT
from cropaudit.schemas.single_survival import BACKGROUND, BODY, FACE, OUTCOMES
from cropaudit.stats.intervals import wilson_array
from cropaudit.stats.sensitivity import as_table, criterion_winners, variant_column

FACE_RATE_COLUMNS = [
    "variant",
    "group",
    "n",
    "on_face",
    "on_body",
    "background",
    "face_share",
    "ci_low",
    "ci_high",
]


def face_rates(
    single: pa.Table | pd.DataFrame,
    criterion: str = POINT,
    level: float = 0.95,
    by: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per (variant, group) of a ``single_survival`` table: ``n`` images, how many landed
    ``on_face``, ``on_body`` and on ``background``, and ``face_share`` = on_face / n with its
    Wilson interval (NaN without images). ``criterion`` is ``point`` or ``crop_<aspect ratio>``.
    ``group`` is the run's group or, with ``by``, the image's values of those attributes joined
    by ``/`` (e.g. ``by=["gender"]`` on a race x gender run). Rows without an outcome for the
    criterion (a box-only cropper's point) are left out."""
    single = as_table(single)
    if by:
        attributes = [dict(a or ()) for a in single.column("attributes").to_pylist()]
        groups = ["/".join(str(a.get(name)) for name in by) for a in attributes]
    else:
        groups = single.column("group").to_pylist()
    df = pd.DataFrame(
        {
            "variant": variant_column(single),
            "group": groups,
            "winner": criterion_winners(single, criterion, point="point_on", crop="kept"),
        },
        dtype=object,
    )
    df = df[df["winner"].notna()].copy()
    unknown = set(df["winner"]) - set(OUTCOMES)
    if unknown:
        raise ValueError(f"single_survival outcomes {sorted(unknown)} are not {OUTCOMES}")
    if df.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in FACE_RATE_COLUMNS})
    for name in OUTCOMES:
        df[name] = df["winner"] == name
    out = (
        df.groupby(["variant", "group"], sort=True)
        .agg(
            n=("winner", "size"),
            on_face=(FACE, "sum"),
            on_body=(BODY, "sum"),
            background=(BACKGROUND, "sum"),
        )
        .reset_index()
    )
    for c in ("n", "on_face", "on_body", "background"):
        out[c] = out[c].astype("int64")
    n = out["n"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        out["face_share"] = np.where(n > 0, out["on_face"] / n, math.nan)
    ci = wilson_array(out["on_face"].to_numpy(), n, level)
    out["ci_low"], out["ci_high"] = ci[:, 0], ci[:, 1]
    return out[FACE_RATE_COLUMNS]
