"""Agreement between croppers: how often two croppers keep the same face of one composite.

A run comparing croppers (``model.compare``) scores every composite with each of them, so for
every pair of croppers, criterion and pair of groups we count the composites both scored and
those where they decided alike (the same winner: face a, face b, a tie or background). A
disagreement rate that differs by group pair says the croppers differ in whom they cut, which
their survival ratios alone can hide (two croppers can both sit at parity and still disagree).

Intervals: the agreement rate is a ratio of sums over composites that share subjects, so it gets
the same subject-clustered (pigeonhole) bootstrap as the survival ratios (Poisson(1) weight per
subject, a composite weighs the product of its two subjects' weights; the weights come from
:mod:`cropaudit.stats.weights`, so they are those of the statistics stage for the same seed).
Percentile intervals of the plain pigeonhole bootstrap are conservative (see
:mod:`cropaudit.stats.bootstrap`); the naive Wilson interval, which treats composites as
independent, is given beside them. Pure functions of the survival table.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from cropaudit.stats.intervals import wilson
from cropaudit.stats.weights import weight_matrix

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


def _criterion_name(aspect_ratio: float) -> str:
    from cropaudit.pipelines.stats import criterion_name

    return criterion_name(aspect_ratio)


def winners_long(survival: pd.DataFrame) -> pd.DataFrame:
    """One row per survival row and criterion with a winner: the key columns, ``sample_id``,
    ``model_name``, the two subjects and ``winner`` (a box-only cropper has no ``point``)."""
    rows = []
    variant = survival["variant"] if "variant" in survival else pd.Series("base", survival.index)
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
        }
        if r.get("point_winner") is not None:
            rows.append({**base, "criterion": "point", "winner": r["point_winner"]})
        for crop in r["crops"] if r["crops"] is not None else ():
            criterion = _criterion_name(crop["aspect_ratio"])
            rows.append({**base, "criterion": criterion, "winner": crop["winner"]})
    return pd.DataFrame(rows)


def bootstrap_rate(
    agree: np.ndarray,
    subjects_a: np.ndarray,
    subjects_b: np.ndarray,
    weights: dict[str, np.ndarray],
) -> np.ndarray:
    """The agreement rate under each replicate's subject weights, shape ``(replicates,)``."""
    wa = np.stack([weights[s] for s in subjects_a]).astype(np.float64)
    wb = np.stack([weights[s] for s in subjects_b]).astype(np.float64)
    w = wa * wb  # (n, replicates)
    total = w.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (agree.astype(np.float64) @ w) / total


def agreement(
    survival: pd.DataFrame, replicates: int = 1000, seed: int = 0, level: float = 0.95
) -> pd.DataFrame:
    """Pairwise cropper agreement per variant, design, criterion and group pair (``COLUMNS``);
    empty when the table has fewer than two croppers. Models pair in order of appearance."""
    if survival.empty or survival["model_name"].nunique() < 2:
        return pd.DataFrame(columns=list(COLUMNS))
    survival = survival[survival["design"] != "single"]
    long = winners_long(survival)
    if long.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    models = list(dict.fromkeys(survival["model_name"]))
    subjects = sorted(set(long["a_subject_id"]) | set(long["b_subject_id"]))
    matrix = weight_matrix(subjects, replicates, seed)
    weights = dict(zip(subjects, matrix))
    alpha = (1.0 - level) / 2.0
    wide = long.pivot_table(
        index=[*KEY, "sample_id", "a_subject_id", "b_subject_id"],
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
            boot = bootstrap_rate(
                agree, g["a_subject_id"].to_numpy(), g["b_subject_id"].to_numpy(), weights
            )
            boot = boot[np.isfinite(boot)]
            lo, hi = np.quantile(boot, [alpha, 1.0 - alpha]) if len(boot) else (np.nan, np.nan)
            wlo, whi = wilson(k, n, level)
            out.append([*key, m1, m2, n, k, k / n, float(lo), float(hi), wlo, whi])
    return pd.DataFrame(out, columns=list(COLUMNS))
