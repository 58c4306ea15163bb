"""Sensitivity of survival ratios to choices that should not matter (sweep runs).

A sweep run (``[sweep]`` in the config) renders every sampled composite once per variant: the
``variant`` column names it (``base``, ``pad=16``, ...) and ``sample_id`` is the same for every
rendering of one sample (same faces, same position). These pure functions turn such a survival
table into one survival ratio per variant and into flip rates: the share of samples whose winner
is not the same in every variant.

``criterion`` is ``point`` (``point_winner``) or ``crop_<aspect ratio>`` (the ``winner`` of the
crop with that aspect ratio in ``crops``, e.g. ``crop_0.56``), as in the estimates table. Winners
are ``a``, ``b``, ``tie`` or ``background``; a change between any two of them is a flip. Only
the ``pairs`` design is used unless ``design`` says otherwise. Tables written before sweeps
existed (no ``variant``/``sample_id``) read as the ``base`` variant of their composites.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa

from cropaudit.schemas.criteria import POINT, crop_ratio
from cropaudit.schemas.survival import PAIRS
from cropaudit.schemas.variants import BASE_VARIANT, SWEEP_AXES, parse_variant
from cropaudit.stats.intervals import wilson_array

VARIANT_COLUMNS = [
    "variant",
    "group_a",
    "group_b",
    "n",
    "wins_a",
    "wins_b",
    "survival_ratio",
    "ci_low",
    "ci_high",
]
FLIP_COLUMNS = ["group_a", "group_b", "samples", "flipped", "flip_rate"]
AXIS_FLIP_COLUMNS = ["axis", *FLIP_COLUMNS]


def variant_order(name: str) -> tuple:
    """Sort key: ``base`` first, then one-axis variants by axis (sweep order) and value, then
    combinations."""
    axes = parse_variant(name)

    def value(v: str) -> tuple:
        try:
            return (0, float(v), "")
        except ValueError:
            return (1, 0.0, v)

    return (
        len(axes),
        tuple(SWEEP_AXES.index(a) if a in SWEEP_AXES else len(SWEEP_AXES) for a in axes),
        tuple(value(v) for v in axes.values()),
        name,
    )


def as_table(survival: pa.Table | pd.DataFrame) -> pa.Table:
    """A survival table as Arrow (a pandas frame of survival rows works too)."""
    if isinstance(survival, pd.DataFrame):
        return pa.Table.from_pandas(survival, preserve_index=False)
    return survival


def variant_column(survival: pa.Table) -> list[str]:
    """Each row's sweep variant; ``base`` for tables written before sweeps existed."""
    if "variant" in survival.column_names:
        return survival.column("variant").to_pylist()
    return [BASE_VARIANT] * survival.num_rows


def criterion_winners(
    survival: pa.Table, criterion: str, point: str = "point_winner", crop: str = "winner"
) -> list[str | None]:
    """Each row's winner for ``criterion`` (``point`` or ``crop_<aspect ratio>``); None where
    the row has no crop of that ratio. ``point`` and ``crop`` name the point's column and the
    crops' field (the single-image table's are ``point_on`` and ``kept``)."""
    ratio = crop_ratio(criterion)
    if ratio is None:
        return survival.column(point).to_pylist()
    key = f"{ratio:.2f}"
    return [
        next((c[crop] for c in crops or () if f"{c['aspect_ratio']:.2f}" == key), None)
        for crops in survival.column("crops").to_pylist()
    ]


def outcomes(
    survival: pa.Table | pd.DataFrame, criterion: str = POINT, design: str | None = PAIRS
) -> pd.DataFrame:
    """One row per survival row with a winner for ``criterion``: ``variant``, ``sample_id``,
    ``group_a``, ``group_b``, ``winner`` (rows without that crop are left out)."""
    survival = as_table(survival)
    ids = survival.column("composite_id").to_pylist()
    has_sample_id = "sample_id" in survival.column_names
    df = pd.DataFrame(
        {
            "variant": variant_column(survival),
            "sample_id": survival.column("sample_id").to_pylist() if has_sample_id else ids,
            "design": survival.column("design").to_pylist(),
            "group_a": survival.column("group_a").to_pylist(),
            "group_b": survival.column("group_b").to_pylist(),
            "winner": criterion_winners(survival, criterion),
        }
    )
    if design is not None:
        df = df[df["design"] == design]
    return df[df["winner"].notna()].drop(columns="design").reset_index(drop=True)


def variant_estimates(
    survival: pa.Table,
    criterion: str = POINT,
    level: float = 0.95,
    design: str | None = PAIRS,
) -> pd.DataFrame:
    """Survival ratio of ``group_a`` per (variant, group pair), with a Wilson interval.

    ``n`` counts composites, ``wins_a``/``wins_b`` those won by each face; ``survival_ratio`` is
    wins_a / (wins_a + wins_b) (ties and background are in ``n`` only), NaN when none was
    decided. The interval treats composites as independent (it ignores subject clustering; the
    statistics stage's bootstrap does not)."""
    df = outcomes(survival, criterion, design)
    if df.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in VARIANT_COLUMNS})
    df["a"] = df["winner"] == "a"
    df["b"] = df["winner"] == "b"
    out = (
        df.groupby(["variant", "group_a", "group_b"], sort=False)
        .agg(n=("winner", "size"), wins_a=("a", "sum"), wins_b=("b", "sum"))
        .reset_index()
    )
    decided = (out["wins_a"] + out["wins_b"]).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        out["survival_ratio"] = np.where(decided > 0, out["wins_a"] / decided, math.nan)
    ci = wilson_array(out["wins_a"].to_numpy(), decided, level)
    out["ci_low"] = np.where(decided > 0, ci[:, 0], math.nan)
    out["ci_high"] = np.where(decided > 0, ci[:, 1], math.nan)
    for c in ("n", "wins_a", "wins_b"):
        out[c] = out[c].astype("int64")
    rank = {v: i for i, v in enumerate(sorted(out["variant"].unique(), key=variant_order))}
    out["_order"] = out["variant"].map(rank)
    out = out.sort_values(["group_a", "group_b", "_order"], kind="stable")
    return out[VARIANT_COLUMNS].reset_index(drop=True)


def _flips(df: pd.DataFrame) -> pd.DataFrame:
    """Per group pair: samples seen in at least two variants, and how many of them flipped."""
    if df.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in FLIP_COLUMNS})
    per_sample = (
        df.groupby(["group_a", "group_b", "sample_id"], sort=True)
        .agg(variants=("variant", "nunique"), winners=("winner", "nunique"))
        .reset_index()
    )
    per_sample = per_sample[per_sample["variants"] >= 2]
    per_sample["flipped"] = per_sample["winners"] > 1
    out = (
        per_sample.groupby(["group_a", "group_b"], sort=True)
        .agg(samples=("flipped", "size"), flipped=("flipped", "sum"))
        .reset_index()
    )
    pairs = df[["group_a", "group_b"]].drop_duplicates()
    out = pairs.merge(out, how="left", on=["group_a", "group_b"]).fillna(
        {"samples": 0, "flipped": 0}
    )
    out["samples"] = out["samples"].astype("int64")
    out["flipped"] = out["flipped"].astype("int64")
    with np.errstate(invalid="ignore", divide="ignore"):
        out["flip_rate"] = np.where(
            out["samples"] > 0, out["flipped"] / out["samples"].clip(lower=1), math.nan
        )
    return out.sort_values(["group_a", "group_b"])[FLIP_COLUMNS].reset_index(drop=True)


def flip_rates(
    survival: pa.Table, criterion: str = POINT, design: str | None = PAIRS
) -> pd.DataFrame:
    """Per group pair: ``samples`` (sampled composites rendered in at least two variants),
    ``flipped`` (those whose winner is not the same in all their variants) and ``flip_rate``
    (flipped / samples; NaN without samples)."""
    return _flips(outcomes(survival, criterion, design))


def flip_rates_by_axis(
    survival: pa.Table, criterion: str = POINT, design: str | None = PAIRS
) -> pd.DataFrame:
    """:func:`flip_rates` per sweep axis, when only that axis varies: each sample's ``base``
    rendering against its variants that differ from the base in that axis alone (a sample counts
    when it has its base and at least one such variant). One row per (axis, group pair)."""
    df = outcomes(survival, criterion, design)
    axes: dict[str, list[str]] = {}
    for name in sorted(df["variant"].unique(), key=variant_order):
        parsed = parse_variant(name)
        if len(parsed) == 1:
            axes.setdefault(next(iter(parsed)), []).append(name)
    frames = []
    order = {a: i for i, a in enumerate(SWEEP_AXES)}
    for axis in sorted(axes, key=lambda a: (order.get(a, len(order)), a)):
        part = df[df["variant"].isin([BASE_VARIANT, *axes[axis]])]
        with_base = part.loc[part["variant"] == BASE_VARIANT, "sample_id"]
        flips = _flips(part[part["sample_id"].isin(set(with_base))])
        flips.insert(0, "axis", axis)
        frames.append(flips)
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in AXIS_FLIP_COLUMNS})
    return pd.concat(frames, ignore_index=True)[AXIS_FLIP_COLUMNS]
