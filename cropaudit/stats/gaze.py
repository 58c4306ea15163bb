"""The "male gaze" check: how often the cropper lands on the face of a single full-body image.

Twitter's 2021 analysis (Yee, Tantipongpipat, Mishra) asked, for single images of people, whether
the salient point falls on the face or elsewhere on the body, by gender. A single-image run
(``[design] kind = "single"``) records it per image in its own table, ``single_survival``
(``schemas.single_survival``): ``point_on`` is ``face``, ``body`` or ``background`` (off the
image), and each crop ``kept`` the ``face`` when it keeps more than half of the face box.
:func:`face_rates` turns that into the share of images on the face (and on the body) per group,
:func:`face_rate_differences` into the difference in face share between groups (each pair and
each group against the rest), with the p-value of the test its interval inverts, adjusted
(Holm, Benjamini-Hochberg) within each family: model x variant x criterion x kind of comparison.

Intervals have subjects as clusters (:mod:`cropaudit.stats.clustered_rate`): a subject with
several images is one draw of a person, not several. The plain Wilson interval, which treats
images as independent, is given beside (``wilson_low``/``wilson_high``) for comparison only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from cropaudit.schemas.criteria import POINT
from cropaudit.schemas.single_survival import BACKGROUND, BODY, FACE, OUTCOMES, SINGLE
from cropaudit.stats.clustered_rate import (
    METHOD,
    Difference,
    group_differences,
    rate_from_totals,
    totals_by,
)
from cropaudit.stats.intervals import wilson_array
from cropaudit.stats.sensitivity import as_table, criterion_winners, variant_column
from cropaudit.stats.tests_multiple import benjamini_hochberg, family, holm

#: Rows are per cropper and variant; rates per group within them.
RATE_KEY = ["model_name", "variant"]

FACE_RATE_COLUMNS = [
    *RATE_KEY,
    "group",
    "n",
    "subjects",
    "on_face",
    "on_body",
    "background",
    "face_share",
    "ci_low",
    "ci_high",
    "effective_n",
    "body_share",
    "body_low",
    "body_high",
    "wilson_low",
    "wilson_high",
    "interval_method",
    "level",
]

FACE_RATE_DIFFERENCE_COLUMNS = [
    *RATE_KEY,
    "comparison",
    "group_a",
    "group_b",
    "n_a",
    "n_b",
    "subjects_a",
    "subjects_b",
    "share_a",
    "low_a",
    "high_a",
    "share_b",
    "low_b",
    "high_b",
    "difference",
    "difference_low",
    "difference_high",
    "effective_n_a",
    "effective_n_b",
    "p",
    "p_family",
    "p_holm",
    "p_bh",
    "interval_method",
    "level",
]


def image_outcomes(
    single: pa.Table | pd.DataFrame, criterion: str = POINT, by: Sequence[str] | None = None
) -> pd.DataFrame:
    """One row per image with an outcome for ``criterion``: ``model_name``, ``variant``,
    ``group`` (the run's, or the image's ``by`` attributes joined by ``/``), ``subject_id`` and
    ``winner`` (one of ``OUTCOMES``)."""
    single = as_table(single)
    n = single.num_rows
    if by:
        attributes = [dict(a or ()) for a in single.column("attributes").to_pylist()]
        groups = ["/".join(str(a.get(name)) for name in by) for a in attributes]
    else:
        groups = single.column("group").to_pylist()

    def column(name: str, default: str) -> list:
        return single.column(name).to_pylist() if name in single.column_names else [default] * n

    df = pd.DataFrame(
        {
            "model_name": column("model_name", ""),
            "variant": variant_column(single),
            "group": groups,
            "subject_id": column("subject_id", None),
            "winner": criterion_winners(single, criterion, point="point_on", crop="kept"),
        },
        dtype=object,
    )
    df = df[df["winner"].notna()].copy()
    unknown = set(df["winner"]) - set(OUTCOMES)
    if unknown:
        raise ValueError(f"single_survival outcomes {sorted(unknown)} are not {OUTCOMES}")
    # A table without subject ids (hand-made) treats every image as its own subject.
    missing = df["subject_id"].isna()
    df.loc[missing, "subject_id"] = [f"#image{i}" for i in np.flatnonzero(missing.to_numpy())]
    for name in OUTCOMES:
        df[name] = df["winner"] == name
    return df


def face_rates(
    single: pa.Table | pd.DataFrame,
    criterion: str = POINT,
    level: float = 0.95,
    by: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per (model, variant, group) of a ``single_survival`` table: ``n`` images of ``subjects``
    people, how many landed ``on_face``, ``on_body`` and on ``background``, ``face_share`` =
    on_face / n with its subject-clustered interval ``ci_low``/``ci_high`` (and
    ``effective_n``), ``body_share`` with its own, and the plain Wilson interval of the face
    share beside (NaN without images). ``criterion`` is ``point`` or ``crop_<aspect ratio>``.
    ``group`` is the run's group or, with ``by``, the image's values of those attributes joined
    by ``/`` (e.g. ``by=["gender"]`` on a race x gender run). Rows without an outcome for the
    criterion (a box-only cropper's point) are left out."""
    df = image_outcomes(single, criterion, by)
    if df.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in FACE_RATE_COLUMNS})
    rows = []
    for (model, variant, group), g in df.groupby([*RATE_KEY, "group"], sort=True):
        face = rate_from_totals(*totals_by(g, FACE), level=level)
        body = rate_from_totals(*totals_by(g, BODY), level=level)
        rows.append(
            {
                "model_name": model, "variant": variant, "group": group, "n": face.n,
                "subjects": face.subjects, "on_face": face.k, "on_body": body.k,
                "background": int(g[BACKGROUND].sum()), "face_share": face.share,
                "ci_low": face.low, "ci_high": face.high, "effective_n": face.effective_n,
                "body_share": body.share, "body_low": body.low, "body_high": body.high,
            }
        )  # fmt: skip
    out = pd.DataFrame(rows)
    for c in ("n", "subjects", "on_face", "on_body", "background"):
        out[c] = out[c].astype("int64")
    ci = wilson_array(out["on_face"].to_numpy(), out["n"].to_numpy(), level)
    out["wilson_low"], out["wilson_high"] = ci[:, 0], ci[:, 1]
    out["interval_method"] = METHOD
    out["level"] = float(level)
    return out[FACE_RATE_COLUMNS]


def face_rate_differences(
    single: pa.Table | pd.DataFrame,
    criterion: str = POINT,
    level: float = 0.95,
    by: Sequence[str] | None = None,
    outcome: str = FACE,
) -> pd.DataFrame:
    """Per (model, variant): the difference in the share of images on ``outcome`` between each
    pair of groups (``comparison`` ``pair``, groups in name order, a - b) and between each group
    and the others pooled (``group_vs_rest``, ``group_b`` = ``rest``; only with three groups or
    more, as with two it repeats the pair), with the clustered intervals of both shares, the
    difference's interval, ``p`` (the test that interval inverts, against no difference) and
    ``p_holm``/``p_bh`` adjusted within ``p_family`` (model x variant x criterion x comparison).
    Arguments as :func:`face_rates`."""
    df = image_outcomes(single, criterion, by)
    rows = []
    for (model, variant), frame in df.groupby(RATE_KEY, sort=True):
        for kind, a, b, d in group_differences(frame, outcome, level):
            rows.append(
                {
                    "model_name": model, "variant": variant, "comparison": kind,
                    "group_a": a, "group_b": b, **difference_columns(d),
                    "p_family": p_family(model, variant, criterion, kind),
                }
            )  # fmt: skip
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in FACE_RATE_DIFFERENCE_COLUMNS})
    out = adjust_within_families(pd.DataFrame(rows))
    out["interval_method"] = METHOD
    out["level"] = float(level)
    return out[FACE_RATE_DIFFERENCE_COLUMNS]


def difference_columns(d: Difference) -> dict:
    """The columns of :data:`FACE_RATE_DIFFERENCE_COLUMNS` one difference gives (also the
    detector's miss-rate differences)."""
    return {
        "n_a": d.a.n, "n_b": d.b.n, "subjects_a": d.a.subjects, "subjects_b": d.b.subjects,
        "share_a": d.a.share, "low_a": d.a.low, "high_a": d.a.high,
        "share_b": d.b.share, "low_b": d.b.low, "high_b": d.b.high,
        "difference": d.estimate, "difference_low": d.low, "difference_high": d.high,
        "effective_n_a": d.a.effective_n, "effective_n_b": d.b.effective_n, "p": d.p,
    }  # fmt: skip


def p_family(model: str, variant: str, criterion: str, comparison: str) -> str:
    """The multiplicity family of a difference row: the pair families' (:func:`family`), with
    design ``single``."""
    row = {"model_name": model, "variant": variant, "criterion": criterion,
           "design": SINGLE, "comparison": comparison}  # fmt: skip
    return family(row)


def adjust_within_families(frame: pd.DataFrame, p: str = "p") -> pd.DataFrame:
    """``<p>_holm`` and ``<p>_bh``: ``frame[p]`` adjusted within each ``p_family``."""
    frame = frame.copy()
    frame[f"{p}_holm"], frame[f"{p}_bh"] = math.nan, math.nan
    for _, idx in frame.groupby("p_family", sort=True).groups.items():
        values = frame.loc[idx, p].to_numpy(dtype=float)
        frame.loc[idx, f"{p}_holm"] = holm(values)
        frame.loc[idx, f"{p}_bh"] = benjamini_hochberg(values)
    return frame
