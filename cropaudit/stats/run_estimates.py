"""The estimates table of survival tables, computed in-process: the rows ``cropaudit stats``
writes, without Beam (for a report of a run nobody ran the statistics stage on).

The survival table is turned into one row per composite and criterion (the salient point, each
crop aspect ratio) with its outcome, each row in its ``pair`` stratum and, in designs with more
than two groups, also in one ``group_vs_rest`` stratum per face's group (seen from that face),
as the stage keys them; then :func:`cropaudit.stats.table.estimate_survival` estimates every
stratum with the stage's own per-stratum code and counter-based weights, so for the same tables,
replicates and seed the numbers equal the stage's.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cropaudit.schemas.criteria import POINT, criterion_name
from cropaudit.schemas.estimates import KEY_FIELDS
from cropaudit.schemas.single_survival import SINGLE
from cropaudit.schemas.variants import BASE_VARIANT
from cropaudit.stats.table import estimate_survival
from cropaudit.stats.winners import WinnerIdentity, identical_criteria

#: Survival columns -> the estimates' provenance list columns.
PROVENANCE = {"config_hash": "config_hashes", "seed": "survival_seeds", "versions": "versions"}
#: Key fields up to ``design``: the strata whose groups decide on ``group_vs_rest``.
DESIGN_FIELDS = KEY_FIELDS[: KEY_FIELDS.index("design") + 1]
SIDES = ["a_subject_id", "b_subject_id", "position"]


def criterion_rows(survival: pd.DataFrame) -> pd.DataFrame:
    """One row per survival row and criterion with a winner: the survival columns plus
    ``criterion`` and ``outcome`` (a box-only cropper has no ``point``)."""
    point = survival[survival["point_winner"].notna()].assign(
        criterion=POINT, outcome=lambda d: d["point_winner"]
    )
    crops = survival[["crops"]].explode("crops").dropna()
    crops = survival.loc[crops.index].assign(
        criterion=[criterion_name(c["aspect_ratio"]) for c in crops["crops"]],
        outcome=[c["winner"] for c in crops["crops"]],
    )
    return pd.concat([point, crops], ignore_index=True).drop(columns=["point_winner", "crops"])


def keyed_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with a ``comparison``: every row as ``pair``; in designs with more than two
    groups a row of two different groups also as ``group_vs_rest`` of each face's group, seen
    from that face (face b's copy swaps the subjects, the position and the outcome)."""
    pairs = rows.assign(comparison="pair")
    groups = pd.concat(
        [rows[[*DESIGN_FIELDS, side]].set_axis([*DESIGN_FIELDS, "g"], axis=1)
         for side in ("group_a", "group_b")]
    ).groupby(list(DESIGN_FIELDS))["g"].nunique()  # fmt: skip
    many = groups[groups > 2].index
    mixed = rows[
        pd.MultiIndex.from_frame(rows[list(DESIGN_FIELDS)]).isin(many)
        & (rows["group_a"] != rows["group_b"])
    ]
    rest_a = mixed.assign(comparison="group_vs_rest", group_b="rest")
    swap = {"a": "b", "b": "a", "a_first": "b_first", "b_first": "a_first"}
    rest_b = mixed.assign(
        comparison="group_vs_rest",
        group_a=mixed["group_b"],
        group_b="rest",
        a_subject_id=mixed["b_subject_id"],
        b_subject_id=mixed["a_subject_id"],
        position=mixed["position"].replace(swap),
        outcome=mixed["outcome"].replace(swap),
    )
    return pd.concat([pairs, rest_a, rest_b], ignore_index=True)


def run_estimates(survival: pa.Table, **options: Any) -> pd.DataFrame:
    """The estimates-table rows (:data:`cropaudit.schemas.estimates.ESTIMATES_SCHEMA` columns)
    of a survival table's pair designs; single-image rows have no pair and are left out.
    ``options``: :func:`estimate_survival`'s settings (``replicates``, ``level``, ``seed``,
    ``correction``, ``model_max``), with its defaults."""
    call = inspect.signature(estimate_survival).bind(None, KEY_FIELDS, **options)
    call.apply_defaults()
    settings = call.arguments
    wanted = {*KEY_FIELDS, *SIDES, *PROVENANCE, "group_a", "group_b", "point_winner", "crops"}
    df = survival.select([c for c in survival.column_names if c in wanted]).to_pandas()
    if "variant" not in df:  # survival/v1, before sweeps
        df["variant"] = BASE_VARIANT
    df = df[df["design"] != SINGLE]
    pairs = survival.filter(pc.not_equal(survival["design"], SINGLE))
    if "variant" not in pairs.column_names:
        pairs = pairs.append_column("variant", pa.array([BASE_VARIANT] * pairs.num_rows))
    identity = WinnerIdentity.of(pairs, DESIGN_FIELDS)
    rows = keyed_rows(criterion_rows(df))
    if rows.empty:
        return pd.DataFrame(columns=[*KEY_FIELDS])
    keys = list(KEY_FIELDS)
    rows[keys] = rows[keys].astype("category")  # strings factorised once, for both groupings
    est = estimate_survival(rows, KEY_FIELDS, **options)
    est[keys] = est[keys].astype(object)
    strata = rows.groupby(keys, sort=False, dropna=False, observed=True).ngroup().to_numpy()
    first = np.unique(strata, return_index=True)[1]
    lists = rows.iloc[first][list(KEY_FIELDS)].assign(stratum=strata[first])
    for column, listed in PROVENANCE.items():
        distinct = pd.DataFrame({"stratum": strata, "v": rows[column].astype(str).to_numpy()})
        distinct = distinct.drop_duplicates().sort_values(["stratum", "v"])
        found = distinct.groupby("stratum", sort=True)["v"].agg(list)
        lists[listed] = lists["stratum"].map(found)
    lists[keys] = lists[keys].astype(object)
    est = est.merge(lists.drop(columns="stratum"), on=keys, how="left")
    est["identical_criteria"] = identical_criteria(identity, est.to_dict("records"), DESIGN_FIELDS)
    return est.assign(
        replicates=settings["replicates"],
        level=settings["level"],
        seed=settings["seed"],
        bootstrap_correction=settings["correction"],
    ).astype({"replicates": np.int64, "seed": np.int64})
