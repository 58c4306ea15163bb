"""The "male gaze" check: how often the cropper lands on the face of a single full-body image.

Twitter's 2021 analysis (Yee, Tantipongpipat, Mishra) asked, for single images of people, whether
the salient point falls on the face or elsewhere on the body, by gender. A ``single``-design run
(``[design] kind = "single"``) records it per image: ``point_winner`` is ``face``, ``body`` or
``background`` (off the image), and each crop's ``winner`` is ``face`` when the crop keeps more
than half of the face box (see ``schemas.survival``). :func:`face_rates` turns that into the
share of images on the face per group, with a Wilson interval.

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
    survival: pa.Table | pd.DataFrame,
    criterion: str = POINT,
    level: float = 0.95,
    by: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per (variant, group) of the ``single`` rows: ``n`` images, how many landed ``on_face``,
    ``on_body`` and on ``background``, and ``face_share`` = on_face / n with its Wilson interval
    (NaN without images). ``criterion`` is ``point`` or ``crop_<aspect ratio>``. ``group`` is
    the run's group (``group_a``) or, with ``by``, the face's values of those attributes joined
    by ``/`` (e.g. ``by=["gender"]`` on a race x gender run). Other designs are ignored."""
    survival = as_table(survival)
    if by:
        attributes = [dict(a or ()) for a in survival.column("a_attributes").to_pylist()]
        groups = ["/".join(str(a.get(name)) for name in by) for a in attributes]
    else:
        groups = survival.column("group_a").to_pylist()
    df = pd.DataFrame(
        {
            "variant": variant_column(survival),
            "design": survival.column("design").to_pylist(),
            "group": groups,
            "winner": criterion_winners(survival, criterion),
        }
    )
    df = df[(df["design"] == "single") & df["winner"].notna()].copy()
    if df.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in FACE_RATE_COLUMNS})
    for name in ("face", "body", "background"):
        df[name] = df["winner"] == name
    out = (
        df.groupby(["variant", "group"], sort=True)
        .agg(
            n=("winner", "size"),
            on_face=("face", "sum"),
            on_body=("body", "sum"),
            background=("background", "sum"),
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
