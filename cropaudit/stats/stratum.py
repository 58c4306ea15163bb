"""Estimates of one stratum (model x layout x preprocessing x criterion x pair) from its
sufficient statistics. Pure functions: the Beam pipeline and the simulation study call the same
code.

Estimand. The *survival ratio* of face a is

    theta = E[wins_a] / (E[wins_a] + E[wins_b])

over the population of subjects and the counterbalanced design (half the composites draw a
first): the chance that a survives, given that the crop keeps exactly one of the two faces. Ties
(equal visible area) and background points are excluded from the ratio and reported as counts.
theta = 0.5 is parity. The estimator is the plug-in wins_a / (wins_a + wins_b).

Position bias. ``ratio_a_first`` and ``ratio_b_first`` are the ratios within each half of the
counterbalanced design; ``order_adjusted_ratio`` is their average, which stays balanced even when
the halves differ in size; ``first_slot_rate`` is the chance that the face drawn first (top or
left) survives, 0.5 meaning no position bias.

Bootstrap intervals. Percentile and BCa intervals come from the subject-clustered (pigeonhole)
bootstrap; with ``correction="cgm"`` (the default) each statistic's replicates are first moved
towards the estimate by the factor ``<stat>_boot_shrink`` = lambda (below 1 but for a
small-sample allowance), which removes the bootstrap's triple counting of within-cell variance
(derivation in :mod:`cropaudit.stats.bootstrap`). The bootstrap SE and p-values use the same
rescaled replicates.

Reported intervals. ``<stat>_low`` / ``<stat>_high`` (method ``<stat>_interval_method``) are
the intervals the report shows: Wilson score intervals on the design-effect-adjusted effective
sample size (:mod:`cropaudit.stats.effective`), which never collapse to a point and held
nominal coverage in every simulated design, where the bootstrap intervals did not; the effect
interval is the reported ratio interval minus 0.5.

Tests. ``ratio_p``, ``order_adjusted_p`` and ``first_slot_p`` are the p-values against 1/2 of
the very tests the reported intervals invert (:func:`cropaudit.stats.effective.score_pvalue`):
p < 1 - level exactly when 1/2 is outside the interval. ``p_bootstrap`` and ``p_binomial`` stay
beside them: the first collapses with its intervals, the second ignores the subjects.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from cropaudit.schemas.estimates import TESTS
from cropaudit.stats import effective, intervals
from cropaudit.stats.bootstrap import (
    CORRECTIONS,
    SufficientStats,
    bca_interval,
    bootstrap_pvalue,
    percentile_interval,
    shrink,
    shrink_factor,
)
from cropaudit.stats.tests_multiple import binomial_pvalue

#: Statistics computed on every replicate, with a bootstrap interval each.
BOOTSTRAPPED = ("ratio", "order_adjusted_ratio", "first_slot_rate")
#: Each statistic's p-value column: the test its reported interval inverts, against 1/2.
PVALUES = dict(zip(BOOTSTRAPPED, TESTS, strict=True))


def derived(cells: np.ndarray) -> dict[str, np.ndarray]:
    """Statistics from wins ``cells[..., position, side]`` (any leading shape: a point estimate,
    replicates or jackknife samples). Undefined ratios (0/0) are NaN."""
    cells = np.asarray(cells, dtype=float)
    wa, wb = cells[..., 0], cells[..., 1]  # (..., position)
    a, b = wa.sum(-1), wb.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = a / (a + b)
        by_position = wa / (wa + wb)
        first = (wa[..., 0] + wb[..., 1]) / (a + b)
    return {
        "ratio": ratio,
        "ratio_a_first": by_position[..., 0],
        "ratio_b_first": by_position[..., 1],
        "order_adjusted_ratio": by_position.mean(-1),
        "first_slot_rate": first,
    }


def gradients(wins: np.ndarray) -> dict[str, np.ndarray]:
    """d statistic / d wins at ``wins[position, side]``, flattened as ``[position * 2 + side]``
    (the influence of one more win in that cell), for each of ``BOOTSTRAPPED``; NaN where the
    statistic is undefined."""
    x = np.asarray(wins, dtype=float).reshape(4)
    total = x.sum()
    per_pos = x.reshape(2, 2).sum(1).repeat(2)  # decisive composites of the row's position
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = (x[0] + x[2]) / total
        first = (x[0] + x[3]) / total
        by_pos = np.array([x[0], x[0], x[2], x[2]]) / per_pos
        return {
            "ratio": (np.array([1.0, 0.0, 1.0, 0.0]) - ratio) / total,
            "order_adjusted_ratio": 0.5 * (np.array([1.0, 0.0, 1.0, 0.0]) - by_pos) / per_pos,
            "first_slot_rate": (np.array([1.0, 0.0, 0.0, 1.0]) - first) / total,
        }


def _f(x: Any) -> float:
    return float(x) if x is not None else math.nan


def estimate_stratum(
    stats: SufficientStats, level: float = 0.95, correction: str = "cgm"
) -> dict[str, Any]:
    """All estimates of one stratum as a flat dict (the estimates-table columns, less keys and
    provenance). Interval columns are ``<stat>_<method>_low/high``; ``correction`` is one of
    ``CORRECTIONS`` (see the module docstring)."""
    if correction not in CORRECTIONS:
        raise ValueError(f"unknown bootstrap correction {correction!r}; expected {CORRECTIONS}")
    counts = stats.counts
    wins = stats.wins
    wins_a, wins_b = int(wins[:, 0].sum()), int(wins[:, 1].sum())
    decisive = wins_a + wins_b
    point = {k: _f(v) for k, v in derived(wins).items()}
    reps = derived(stats.boot)
    jack = derived(stats.jackknife_cells())
    m_subjects, m_pairs = stats.moments()
    grads = gradients(wins)
    subject_cells = stats.subject_cells.reshape(-1, 4)
    subject_totals = subject_cells.sum(1)
    # A subject's side: where most of its composites put it (pairs of one group mix them).
    a_side = 2 * stats.a_counts >= subject_totals
    df = effective.cluster_df(subject_totals[a_side], subject_totals[~a_side])
    m_a = subject_cells[a_side].T @ subject_cells[a_side]
    sizes = effective.ClusterSizes.of(
        subject_totals, a_side, *stats.pair_subjects, stats.pair_cells.reshape(-1, 4).sum(1)
    )
    variances = {
        s: effective.cluster_variance(grads[s], m_subjects, m_pairs, decisive, m_a, sizes)
        for s in BOOTSTRAPPED
    }
    shares = {
        s: effective.subject_share(grads[s], m_subjects, m_pairs, decisive, m_a, sizes)
        for s in BOOTSTRAPPED
    }
    factors = {stat: 1.0 for stat in BOOTSTRAPPED}
    if correction == "cgm":
        factors = {s: shrink_factor(*variances[s]) for s in BOOTSTRAPPED}
    reps = {s: shrink(reps[s], point[s], factors[s]) for s in BOOTSTRAPPED}

    out: dict[str, Any] = {
        "n": int(counts.sum()),
        "n_subjects": len(stats.subject_index),
        "n_cells": len(stats.pair_cells),
        "wins_a": wins_a,
        "wins_b": wins_b,
        "ties": int(counts[:, 2].sum()),
        "background": int(counts[:, 3].sum()),
        "decisive": decisive,
        "n_a_first": int(counts[0].sum()),
        "n_b_first": int(counts[1].sum()),
        **point,
    }
    for name, (lo, hi) in (
        ("wilson", intervals.wilson(wins_a, decisive, level)),
        ("clopper_pearson", intervals.clopper_pearson(wins_a, decisive, level)),
        ("twitter", intervals.twitter_normal(wins_a, decisive)),
    ):
        out[f"ratio_{name}_low"], out[f"ratio_{name}_high"] = lo, hi

    out["cluster_df"] = df
    for stat in BOOTSTRAPPED:
        r = reps[stat]
        variance, _ = variances[stat]
        n_eff = effective.effective_n(point[stat], variance, decisive, float(m_subjects.sum()))
        lo, hi = effective.score_interval(point[stat], n_eff, level, df, decisive, shares[stat])
        out[f"{stat}_cluster_se"] = math.sqrt(variance) if math.isfinite(variance) else math.nan
        out[f"{stat}_effective_n"] = n_eff
        out[f"{stat}_{effective.METHOD}_low"], out[f"{stat}_{effective.METHOD}_high"] = lo, hi
        # The reported interval (chosen by the simulation study, see cropaudit.stats.effective).
        out[f"{stat}_low"], out[f"{stat}_high"] = lo, hi
        out[f"{stat}_interval_method"] = effective.METHOD if math.isfinite(lo) else "none"
        out[PVALUES[stat]] = effective.score_pvalue(
            point[stat], n_eff, df, decisive, share=shares[stat]
        )
        out[f"{stat}_boot_shrink"] = factors[stat]
        out[f"{stat}_boot_se"] = (
            float(np.nanstd(r, ddof=1)) if np.isfinite(r).sum() > 1 else math.nan
        )
        lo, hi = percentile_interval(r, level)
        out[f"{stat}_percentile_low"], out[f"{stat}_percentile_high"] = lo, hi
        lo, hi, z0, accel = bca_interval(r, point[stat], jack[stat], level)
        out[f"{stat}_bca_low"], out[f"{stat}_bca_high"] = lo, hi
        if stat == "ratio":
            out["bca_z0"], out["bca_acceleration"] = z0, accel
            out["valid_replicates"] = int(np.isfinite(r).sum())

    first_wins = int(wins[0, 0] + wins[1, 1])
    out["first_slot_wilson_low"], out["first_slot_wilson_high"] = intervals.wilson(
        first_wins, decisive, level
    )
    out["effect"] = point["ratio"] - 0.5
    out["effect_low"] = out["ratio_low"] - 0.5
    out["effect_high"] = out["ratio_high"] - 0.5
    out["p_binomial"] = binomial_pvalue(wins_a, decisive)
    out["p_bootstrap"] = bootstrap_pvalue(reps["ratio"], 0.5)
    out["p_first_slot_bootstrap"] = bootstrap_pvalue(reps["first_slot_rate"], 0.5)
    return out
