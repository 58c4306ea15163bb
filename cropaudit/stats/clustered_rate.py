"""A proportion of images with subjects as clusters, and the difference of two such proportions.

The single-image rates (share of images whose crop keeps the face) and the face detector's miss
rate count images, but a subject with several images is one draw from the population, not
several: a plain Wilson interval is too narrow when subjects differ. This module gives such a
rate the reported-interval machinery of the pair ratio (:mod:`cropaudit.stats.effective`) with
one-way clusters:

- p = k / n over n images, with subject totals (n_s, k_s);
- the cluster-robust variance V = sum_s (k_s - p n_s)^2 / (f n^2), f the expectation of the
  centred sum under a one-way variance-components model (between-subject variance a of the
  subject's own rate, within-subject p(1-p) - a, a by moments from the same sum):
  f = 1 - 2 sum_s n_s Var(k_s) / (n sum_s Var(k_s)) + sum n_s^2 / n^2, which is the CGM factor
  1 - 1/G for equal subjects and smaller where a few subjects carry the images;
- n* = p (1 - p) / V (not capped at n, as for the pair ratio: capped, tiny designs of 12
  subjects with 2 images each covered 0.975-0.983; at p = 0 or 1 the floor n^2 / sum n_s^2 of
  :func:`effective.effective_n`), and the Wilson score interval
  on n* with a t quantile on G - 1 degrees of freedom, G = n^2 / sum n_s^2 the effective number
  of subjects. Never zero width. Without the pair ratio's one-sided tail rule
  (:func:`effective.score_interval` given ``n``): for a rate those tails are reached by
  hundreds of images, and with the rule a rate of 0.992 from 300 images of 50 people covered
  0.924 (without, 0.968; the other designs unchanged).

The difference of two groups' rates (different people) is Newcombe's hybrid score interval
(the "MOVER" of Zou & Donner 2008) built from the two clustered intervals:
[d - sqrt((p1 - l1)^2 + (u2 - p2)^2), d + sqrt((u1 - p1)^2 + (p2 - l2)^2)], which inherits
their clustering, their behaviour near 0 and 1, and their positive width; both on the
Welch-Satterthwaite degrees of freedom of the difference (:func:`difference_df`, from the image
counts alone), not each on its own G - 1, which made the difference of two groups of 10-12
people with 2-3 images each cover 0.970-0.972 (now 0.961-0.967; where a few people carry
most images it costs most: a held-out design 0.952 -> 0.944). Its p-value against
no difference is that of the test the interval inverts: the smallest 1 - level at which the
interval excludes 0, found by bisection, so p < 1 - level exactly when 0 lies outside.
``benchmarks/simulate_coverage.py --single`` checks both (:mod:`cropaudit.stats.simulation`).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cropaudit.stats.effective import effective_n, satterthwaite_df, score_interval

#: Name written to ``interval_method`` for these intervals.
METHOD = "wilson_effective_n_subjects"


@dataclass(frozen=True)
class Rate:
    """A clustered proportion: ``k`` of ``n`` images from ``subjects`` subjects."""

    k: int
    n: int
    subjects: int
    share: float
    low: float
    high: float
    effective_n: float
    df: float


def subject_totals(hits: np.ndarray, subjects: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per subject (in sorted order) its images n_s and hits k_s."""
    codes, inverse = np.unique(np.asarray(subjects, dtype=object).astype(str), return_inverse=True)
    n_s = np.bincount(inverse, minlength=len(codes)).astype(float)
    k_s = np.bincount(inverse, weights=np.asarray(hits, dtype=float), minlength=len(codes))
    return n_s, k_s


def small_sample_factor(n_s: np.ndarray, p: float, q: float) -> float:
    """f of the module docstring from the subjects' sizes ``n_s``, the rate ``p`` and the
    centred sum ``q`` = sum_s (k_s - p n_s)^2; capped below at 1/2."""
    n = float(n_s.sum())
    sq, cube = float((n_s**2).sum()), float((n_s**3).sum())
    spread = p * (1.0 - p)
    # E q = a * A + c * B for between-subject variance a and within-subject c = spread - a.
    a_coef = sq - 2.0 * cube / n + sq * sq / n**2
    b_coef = n - sq / n
    between = (q - spread * b_coef) / (a_coef - b_coef) if a_coef > b_coef else 0.0
    between = min(max(between, 0.0), spread)
    within = spread - between
    total = between * sq + within * n
    if not total > 0:
        return max(1.0 - sq / n**2, 0.5)
    lever = between * cube + within * sq
    return max(1.0 - 2.0 * lever / (n * total) + sq / n**2, 0.5)


def rate_from_totals(
    n_s: np.ndarray, k_s: np.ndarray, level: float = 0.95, df: float | None = None
) -> Rate:
    """The clustered rate of subjects with ``n_s`` images and ``k_s`` hits (module docstring),
    its t quantile on ``df`` degrees of freedom (default G - 1); NaN share and interval without
    images."""
    n_s, k_s = np.asarray(n_s, dtype=float), np.asarray(k_s, dtype=float)
    keep = n_s > 0
    n_s, k_s = n_s[keep], k_s[keep]
    n, k = float(n_s.sum()), float(k_s.sum())
    if n <= 0:
        return Rate(0, 0, 0, math.nan, math.nan, math.nan, math.nan, math.nan)
    p = k / n
    sq = float((n_s**2).sum())
    q = float(((k_s - p * n_s) ** 2).sum())
    variance = q / (small_sample_factor(n_s, p, q) * n * n)
    n_eff = effective_n(p, variance, int(n), sq)
    df = satterthwaite_df([(n, sq)]) if df is None else df
    lo, hi = score_interval(p, n_eff, level, df)
    return Rate(int(k), int(n), int(len(n_s)), p, lo, hi, n_eff, df)


def clustered_rate(hits: np.ndarray, subjects: np.ndarray, level: float = 0.95) -> Rate:
    """The share of ``hits`` (booleans, one per image) with ``subjects`` (one id per image) as
    clusters."""
    return rate_from_totals(*subject_totals(hits, subjects), level=level)


def difference_interval(a: Rate, b: Rate) -> tuple[float, float]:
    """Newcombe's hybrid score interval of ``a.share - b.share`` from the two intervals."""
    d = a.share - b.share
    lo = d - math.hypot(a.share - a.low, b.high - b.share)
    hi = d + math.hypot(a.high - a.share, b.share - b.low)
    return (max(lo, -1.0), min(hi, 1.0))


def difference_df(a_sizes: np.ndarray, b_sizes: np.ndarray) -> float:
    """Welch-Satterthwaite degrees of freedom of a difference of two clustered rates from the
    subjects' image counts alone: each side's G - 1 weighted by its 1 / G (a rate's variance
    when a subject's images agree), so the noise of the variances does not steer it."""
    sides = [(1.0, float((s**2).sum()) / float(s.sum()) ** 2) for s in (a_sizes, b_sizes)]
    return satterthwaite_df(sides)


def difference_limits(a_totals, b_totals, level: float = 0.95) -> tuple[float, float]:
    """:func:`difference_interval` of the two groups' ``(n_s, k_s)``, both rates' intervals
    on :func:`difference_df`."""
    df = difference_df(a_totals[0], b_totals[0])
    a = rate_from_totals(*a_totals, level=level, df=df)
    return difference_interval(a, rate_from_totals(*b_totals, level=level, df=df))


@dataclass(frozen=True)
class Difference:
    """``a.share - b.share`` with its interval at ``level`` and the p-value of the test that
    interval inverts (no difference)."""

    a: Rate
    b: Rate
    estimate: float
    low: float
    high: float
    p: float


def rate_difference(
    a_totals: tuple[np.ndarray, np.ndarray],
    b_totals: tuple[np.ndarray, np.ndarray],
    level: float = 0.95,
) -> Difference:
    """The difference of two groups' clustered rates from their subjects' ``(n_s, k_s)``."""
    a, b = rate_from_totals(*a_totals, level=level), rate_from_totals(*b_totals, level=level)
    if not (math.isfinite(a.share) and math.isfinite(b.share)):
        return Difference(a, b, math.nan, math.nan, math.nan, math.nan)
    lo, hi = difference_limits(a_totals, b_totals, level)
    return Difference(a, b, a.share - b.share, lo, hi, _inverted_p(a_totals, b_totals))


def _excludes_zero(a_totals, b_totals, level: float) -> bool:
    lo, hi = difference_limits(a_totals, b_totals, level)
    return lo > 0.0 or hi < 0.0


def _inverted_p(a_totals, b_totals, steps: int = 40) -> float:
    """The smallest alpha whose 1 - alpha interval excludes 0 (bisection; the interval widens
    with the level). 1 when even the 0-level interval holds 0 (equal shares)."""
    lo, hi = 0.0, 1.0  # alpha: at 1 the interval is the point-like 0-level interval
    if not _excludes_zero(a_totals, b_totals, 1e-9):
        return 1.0
    if _excludes_zero(a_totals, b_totals, 1.0 - 1e-12):
        return 1e-12
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        if _excludes_zero(a_totals, b_totals, 1.0 - mid):
            hi = mid
        else:
            lo = mid
    return hi


def totals_by(frame: pd.DataFrame, hit: str, subject: str = "subject_id") -> tuple:
    """``(n_s, k_s)`` of a frame's rows, ``hit`` a boolean column."""
    return subject_totals(frame[hit].to_numpy(), frame[subject].to_numpy())


#: The name of the pooled other groups in a group-vs-rest comparison, and the comparison kinds.
REST = "rest"
PAIR, GROUP_VS_REST = "pair", "group_vs_rest"


def group_differences(
    frame: pd.DataFrame, hit: str, level: float = 0.95, group: str = "group",
    subject: str = "subject_id",
) -> list[tuple[str, str, str, Difference]]:  # fmt: skip
    """``(comparison, group_a, group_b, difference)`` of the share of ``hit`` between each pair
    of ``frame``'s groups (name order, a - b) and, with three groups or more, between each group
    and the others pooled (``group_b`` = :data:`REST`; with two it would repeat the pair)."""
    groups = {g: totals_by(part, hit, subject) for g, part in frame.groupby(group, sort=True)}
    out = [(PAIR, a, b, rate_difference(groups[a], groups[b], level))
           for a, b in itertools.combinations(sorted(groups), 2)]  # fmt: skip
    if len(groups) > 2:
        for g in sorted(groups):
            rest = totals_by(frame[frame[group] != g], hit, subject)
            out.append((GROUP_VS_REST, g, REST, rate_difference(groups[g], rest, level)))
    return out
