"""Score intervals on the design-effect-adjusted effective sample size: the reported interval of
every bootstrapped statistic.

Why not the bootstrap. When a pair's decisive composites all go one way (``0 of 16``) every
bootstrap replicate equals the estimate and percentile/BCa intervals collapse to a point; in
small or unbalanced designs they also cover a little under nominal, because the two-way
cluster-robust variance they are rescaled to is itself estimated from few clusters.

The interval. For a statistic p in [0, 1] (a proportion of decisive composites, or the mean of
two) with two-way cluster-robust variance V (Cameron, Gelbach & Miller 2011; computed from the
same subject and cell moments as the bootstrap correction, :func:`cluster_variance`), the
effective sample size is n* = p (1 - p) / V: the number of independent composites that would
give the same variance (Kish's n / design effect). The interval is the Wilson score interval on
n*, {theta : (p - theta)^2 <= q^2 theta (1 - theta) / n*}, which stays inside [0, 1] and has
positive width whenever n* is finite, with q the Student-t quantile on ``df`` degrees of freedom
(:func:`cluster_df`), the few-clusters allowance: V sums the squared residual totals of the
a-subjects and of the b-subjects, and each side's sum has about G - 1 degrees of freedom,
G = (sum_s n_s)^2 / sum_s n_s^2 its effective number of subjects (n_s: a subject's decisive
composites), so Satterthwaite's rule combines the two with each side weighted by its expected
share of V, sum_s n_s^2 (subject effects shared by all of a subject's composites). n* is not capped
at n: the counterbalanced design makes the first-slot rate's design effect genuinely below 1
(a pairing's two positions cancel its subjects' effects). At p = 0 or 1, V = 0 and the data
say nothing about the design effect, so n* takes its floor n^2 / sum_s n_s^2, the effective
sample size when every subject's composites are perfectly correlated: an honest, wide interval.
The simulation study (``benchmarks/simulate_coverage.py``, eleven tuning designs, then held-out
designs) chose this method over the rescaled percentile and BCa bootstrap intervals, which
under-cover in small and unbalanced designs. Among quantiles, the normal one fell to 0.90-0.92
with 10 subjects on one side or a few subjects carrying the data; a t on the pooled count
G* = (sum n_s^2)^2 / sum n_s^4 - 1 over-covered (0.98-0.99) where few subjects carry the data and
in 16-composite pairs, because n_s^4 lets the two largest subjects set the degrees of freedom;
the per-side Satterthwaite rule kept those designs at 0.94-0.97 and the others unchanged.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtri
from scipy.stats import t as student_t

#: Name written to ``<stat>_interval_method`` for the interval of this module.
METHOD = "wilson_effective_n"


def cluster_variance(
    gradient: np.ndarray, subject_moments: np.ndarray, pair_moments: np.ndarray, n: int
) -> tuple[float, float]:
    """``(V_cgm, V_boot)`` of a statistic with influence ``gradient`` (d statistic / d wins,
    flattened ``[position * 2 + side]``) over ``n`` decisive composites: the two-way
    cluster-robust variance max((g'M_s g - g'M_c g) / (1 - h), g'M_c g / (1 - h_c)) (subjects
    and cells as clusters, floored at cells alone; h = 1'(M_s - M_c)1 / n^2 and
    h_c = 1'M_c 1 / n^2, each capped at 1/2, the small-sample factors of the two estimators) and
    the pigeonhole bootstrap's g'(M_s + M_c)g (derivations in :mod:`cropaudit.stats.bootstrap`).
    The floor takes its own factor: with the two-way one it made a 16-composite pair's n* half
    its n. NaN when the gradient is undefined."""
    g = np.asarray(gradient, dtype=float).reshape(4)
    if not np.all(np.isfinite(g)) or n <= 0:
        return (math.nan, math.nan)
    m_subjects = subject_moments.astype(float)
    m_cells = pair_moments.astype(float)
    v_subjects = float(g @ m_subjects @ g)
    v_cells = float(g @ m_cells @ g)
    h = min(float(m_subjects.sum() - m_cells.sum()) / float(n) ** 2, 0.5)
    h_cells = min(float(m_cells.sum()) / float(n) ** 2, 0.5)
    v_cgm = max((v_subjects - v_cells) / (1.0 - h), v_cells / (1.0 - h_cells), 0.0)  # rounding
    return (v_cgm, v_subjects + v_cells)


def effective_subjects(subject_totals: np.ndarray) -> float:
    """G* = (sum n_s^2)^2 / sum n_s^4 over subjects' decisive composites ``subject_totals``."""
    n2 = np.asarray(subject_totals, dtype=float) ** 2
    return float(n2.sum() ** 2 / (n2**2).sum()) if n2.sum() > 0 else math.nan


def cluster_df(totals_a: np.ndarray, totals_b: np.ndarray) -> float:
    """Degrees of freedom of the t quantile (module docstring): Satterthwaite's combination of
    the a-side's and the b-side's G - 1, G = (sum n_s)^2 / sum n_s^2, weighted by sum n_s^2;
    ``totals_a``/``totals_b``: decisive composites of each side's subjects. NaN without any."""
    parts = []
    for totals in (totals_a, totals_b):
        n = np.asarray(totals, dtype=float)
        sq = float((n**2).sum())
        if sq > 0:
            parts.append((sq, float(n.sum()) ** 2 / sq - 1.0))
    if not parts:
        return math.nan
    share = sum(sq for sq, _ in parts)
    spread = sum(sq**2 / df if df > 0 else math.inf for sq, df in parts)
    return share**2 / spread if spread > 0 else 0.0


def effective_n(p: float, variance: float, n: int, subject_sq_sum: float) -> float:
    """n* = p (1 - p) / V; at the boundary (or V = 0) the floor
    n^2 / ``subject_sq_sum`` (sum_s n_s^2): every subject's composites perfectly correlated."""
    if n <= 0 or not math.isfinite(p):
        return math.nan
    floor = min(float(n), float(n) ** 2 / subject_sq_sum) if subject_sq_sum > 0 else float(n)
    spread = p * (1.0 - p)
    if not (spread > 0 and math.isfinite(variance) and variance > 0):
        return floor
    return spread / variance


def score_interval(p: float, n_eff: float, level: float, df: float) -> tuple[float, float]:
    """Wilson score interval of a proportion ``p`` on ``n_eff`` trials with a t(``df``)
    quantile (normal when ``df`` is infinite); NaN when ``p`` or ``n_eff`` is undefined."""
    if not (math.isfinite(p) and math.isfinite(n_eff) and n_eff > 0):
        return (math.nan, math.nan)
    upper = 0.5 + level / 2.0
    q = float(student_t.ppf(upper, max(df, 1.0)) if math.isfinite(df) else ndtri(upper))
    q2 = q * q
    denom = 1.0 + q2 / n_eff
    centre = (p + q2 / (2.0 * n_eff)) / denom
    half = q * math.sqrt(max(p * (1.0 - p), 0.0) / n_eff + q2 / (4.0 * n_eff**2)) / denom
    return (max(centre - half, 0.0), min(centre + half, 1.0))
