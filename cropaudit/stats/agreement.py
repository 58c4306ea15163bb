"""Agreement between croppers: how often two croppers keep the same face of one composite.

A run comparing croppers (``model.compare``) scores every composite with each of them, so for
every pair of croppers, criterion and pair of groups we count the composites both scored and
those where they decided alike (the same winner: face a, face b, a tie or background). A
disagreement rate that differs by group pair says the croppers differ in whom they cut, which
their survival ratios alone can hide (two croppers can both sit at parity and still disagree).

Intervals: composites share subjects, so the agreement rate gets exactly the machinery of the
survival ratios: a composite where the two croppers agree counts as a "win" and one where they
disagree as a "loss" of :class:`cropaudit.stats.bootstrap.SufficientStats`, whose ratio is then
the agreement rate, with its reported interval (a Wilson score interval on the effective sample
size given the two-way cluster-robust variance, :mod:`cropaudit.stats.effective`), as
validated for the survival ratios by ``benchmarks/simulate_coverage.py``. The naive Wilson
interval, which treats composites as independent, is given beside it. Pure functions of the
survival table.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from cropaudit.schemas.criteria import POINT, criterion_name
from cropaudit.schemas.single_survival import SINGLE
from cropaudit.schemas.variants import BASE_VARIANT
from cropaudit.stats.bootstrap import OUTCOME_CODE, POSITION_CODE, SufficientStats
from cropaudit.stats.intervals import reported_interval
from cropaudit.stats.stratum import estimate_stratum
from cropaudit.stats.weights import WeightCache

KEY = ("variant", "design", "criterion", "group_a", "group_b")
COLUMNS = (
    *KEY,
    "model_1",
    "model_2",
    "n",
    "agree",
    "agreement",
    "agreement_boot_low",
    "agreement_boot_high",
    "agreement_wilson_low",
    "agreement_wilson_high",
)


def winners_long(survival: pd.DataFrame) -> pd.DataFrame:
    """One row per survival row and criterion with a winner: the key columns, ``sample_id``,
    ``model_name``, the two subjects and ``winner`` (a box-only cropper has no ``point``)."""
    rows = []
    variant = (
        survival["variant"] if "variant" in survival else pd.Series(BASE_VARIANT, survival.index)
    )
    for r, v in zip(survival.to_dict("records"), variant):
        base = {
            "variant": v,
            "design": r["design"],
            "group_a": r["group_a"],
            "group_b": r["group_b"],
            "sample_id": r.get("sample_id") or r["composite_id"].split("#")[0],
            "model_name": r["model_name"],
            "a_subject_id": r["a_subject_id"],
            "b_subject_id": r["b_subject_id"],
            "position": r["position"],
        }
        if r.get("point_winner") is not None:
            rows.append({**base, "criterion": POINT, "winner": r["point_winner"]})
        for crop in r["crops"] if r["crops"] is not None else ():
            criterion = criterion_name(crop["aspect_ratio"])
            rows.append({**base, "criterion": criterion, "winner": crop["winner"]})
    return pd.DataFrame(rows)


def agreement_estimate(
    agree: np.ndarray,
    subjects_a: np.ndarray,
    subjects_b: np.ndarray,
    positions: np.ndarray,
    weights: WeightCache,
    level: float,
) -> dict:
    """The survival-ratio estimates of "agree" (win) against "disagree" (loss)."""
    acc = SufficientStats(weights.replicates)
    outcome = np.where(agree, OUTCOME_CODE["a"], OUTCOME_CODE["b"])
    position = np.array([POSITION_CODE[p] for p in positions], dtype=np.int64)
    acc.add_batch(subjects_a, subjects_b, position, outcome, weights)
    return estimate_stratum(acc, level, "cgm")


def agreement(
    survival: pd.DataFrame, replicates: int = 1000, seed: int = 0, level: float = 0.95
) -> pd.DataFrame:
    """Pairwise cropper agreement per variant, design, criterion and group pair (``COLUMNS``);
    empty when the table has fewer than two croppers. Models pair in name order."""
    if survival.empty or survival["model_name"].nunique() < 2:
        return pd.DataFrame(columns=list(COLUMNS))
    survival = survival[survival["design"] != SINGLE]  # survival/v3-v4 tables
    long = winners_long(survival)
    if long.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    models = sorted(set(survival["model_name"]))
    weights = WeightCache(replicates, seed)
    wide = long.pivot_table(
        index=[*KEY, "sample_id", "a_subject_id", "b_subject_id", "position"],
        columns="model_name",
        values="winner",
        aggfunc="first",
    ).reset_index()
    out = []
    for m1, m2 in itertools.combinations(models, 2):
        if m1 not in wide or m2 not in wide:
            continue
        both = wide[wide[m1].notna() & wide[m2].notna()]
        for key, g in both.groupby(list(KEY), sort=True):
            agree = (g[m1] == g[m2]).to_numpy()
            n, k = len(g), int(agree.sum())
            est = agreement_estimate(
                agree,
                g["a_subject_id"].to_numpy(),
                g["b_subject_id"].to_numpy(),
                g["position"].to_numpy(),
                weights,
                level,
            )
            lo, hi = reported_interval(est)
            wlo, whi = est["ratio_wilson_low"], est["ratio_wilson_high"]
            out.append([*key, m1, m2, n, k, k / n, float(lo), float(hi), wlo, whi])
    return pd.DataFrame(out, columns=list(COLUMNS))
