"""Score intervals on the design-effect-adjusted effective sample size: the reported interval of
every bootstrapped statistic.

Why not the bootstrap. When a pair's decisive composites all go one way (``0 of 16``) every
bootstrap replicate equals the estimate and percentile/BCa intervals collapse to a point; in
small or unbalanced designs they also cover a little under nominal, because the two-way
cluster-robust variance they are rescaled to is itself estimated from few clusters.

The interval. For a statistic p in [0, 1] (a proportion of decisive composites, or the mean of
two) with two-way cluster-robust variance V (Cameron, Gelbach & Miller 2011; computed from the
same subject and cell moments as the bootstrap correction, :func:`cluster_variance`, divided by
:func:`small_sample_factor`, the expectation of its centred sums under the stratum's variance
components, which is the CGM factor 1 - h for equal clusters and smaller where a few subjects
carry the data: with 1 - h both popularity-weighted designs of the study covered 0.933), the
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
Near 0 or 1 in a small stratum the test is one-sided where the other tail is out of reach
(:func:`score_interval`): equal-tailed, a 16-composite pair at 0.85 covered 0.98-0.99.

The variance at a candidate theta. Wilson's interval takes V(theta) = V theta (1 - theta) /
(p (1 - p)), a constant design effect. But subject effects act on the logit scale, so the
subjects' part of the variance shrinks about like (theta (1 - theta))^2 towards a bound: at a
high ratio with a large subject variance and a dozen faces a side the constant design effect
under-stated the variance at truths nearer 1/2 than the estimate (0.926, misses one-sided). So
V(theta) mixes the two, V ((1 - w) r + w r^2) with r = theta (1 - theta) / (p (1 - p)) and w
the subjects' share of V (:func:`subject_share`, from :func:`components`) weighted by
1 - SHARE_DF / df (:func:`subject_weight`): with few subjects the share is noisy and the t
quantile already widens the interval, and in full it widened 16-composite pairs to 0.974 and
10 x 10 subjects to 0.971; with the weight every design of the study is in the band. The
interval is still the exact set a score test accepts (|p - theta| / sqrt(V(theta)) grows
monotonically away from p on each side), Wilson's where w = 0 and at p in {0, 1}.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.special import ndtr, ndtri
from scipy.stats import t as student_t

#: Name written to ``<stat>_interval_method`` for the interval of this module.
METHOD = "wilson_effective_n"

#: Degrees of freedom (:func:`cluster_df`) at or below which the subject share of the variance
#: is not used (:func:`subject_weight`); above, its weight grows as 1 - SHARE_DF / df.
SHARE_DF = 10.0


@dataclass(frozen=True)
class ClusterSizes:
    """What the small-sample factor needs beyond the moments, from the decisive composites n_s
    of each subject and k_c of each cell: per side the sums of n_s^2 and n_s^3, the sum of
    k_c^2, cross = sum_c k_c n_a(c) n_b(c), and per side sum_c k_c^2 n_s(c) (n_a(c), n_b(c):
    the composites of the cell's a- and b-subject)."""

    sq_a: float
    sq_b: float
    sq_cells: float
    cube_a: float
    cube_b: float
    cross: float = 0.0
    cells_a: float = 0.0
    cells_b: float = 0.0

    @classmethod
    def of(
        cls, totals: np.ndarray, a_side: np.ndarray, lo: np.ndarray, hi: np.ndarray,
        cell_sizes: np.ndarray,
    ) -> ClusterSizes:  # fmt: skip
        """From subjects' ``totals`` and sides (``a_side``) and the cells' subjects (indices
        ``lo``, ``hi`` into them) and sizes."""
        n = np.asarray(totals, dtype=float)
        a = np.asarray(a_side, dtype=bool)
        k = np.asarray(cell_sizes, dtype=float)
        k2 = k**2
        ends_a = n[lo] * a[lo] + n[hi] * a[hi]
        ends_b = n[lo] * ~a[lo] + n[hi] * ~a[hi]
        return cls(
            float((n[a] ** 2).sum()), float((n[~a] ** 2).sum()), float(k2.sum()),
            float((n[a] ** 3).sum()), float((n[~a] ** 3).sum()), float((k * n[lo] * n[hi]).sum()),
            float((k2 * ends_a).sum()), float((k2 * ends_b).sum()),
        )  # fmt: skip


def components(
    q_a: float, q_b: float, q_c: float, sizes: ClusterSizes, n: float
) -> tuple[float, float, float]:
    """Method-of-moments split of the residual sums (``q_a``, ``q_b``: squared subject totals of
    side a and b; ``q_c``: of cells) into a-subject, b-subject and composite-level variances,
    each clipped at 0 (0 where no subject has composites in two cells): E q_a = var_a S_a +
    var_b K + var_c n, E q_b likewise, E q_c = (var_a + var_b) K + var_c n (derivation in
    :mod:`cropaudit.stats.planning`). Not divided by any small-sample factor."""
    k = sizes.sq_cells
    var_a = max((q_a - q_c) / (sizes.sq_a - k), 0.0) if sizes.sq_a > k else 0.0
    var_b = max((q_b - q_c) / (sizes.sq_b - k), 0.0) if sizes.sq_b > k else 0.0
    return var_a, var_b, max(q_c - (var_a + var_b) * k, 0.0) / n


def small_sample_factor(q_a: float, q_b: float, q_c: float, sizes: ClusterSizes, n: float) -> float:
    """f = E[q_a + q_b - q_c] / (n^2 Var(p)) when the residuals are centred on the estimate,
    under the variance components :func:`components` estimates (their scale cancels): the
    two-way variance is (q_a + q_b - q_c) / f. f = 1 - 2 (C_a + C_b - C_c) / (n W) + h, W the
    variance of the total T, C_side = sum_s n_s Cov(T_s, T) over the side's subjects, C_c the same
    over cells (exact under the components, from :class:`ClusterSizes`), h = (S_a + S_b - K) /
    n^2. With
    equal cluster sizes, or composite-level noise alone, f = 1 - h, the CGM factor; where a few
    subjects carry the data a big subject's residual is centred on a mean it dominates
    (leverage n_s / n), its square is shrunk by about (1 - n_s / n)^2 and 1 - h overstates
    f. Capped below at 1/2, as h is capped at 1/2."""
    h = min((sizes.sq_a + sizes.sq_b - sizes.sq_cells) / n**2, 0.5)
    var_a, var_b, var_c = components(q_a, q_b, q_c, sizes, n)
    total = var_a * sizes.sq_a + var_b * sizes.sq_b + var_c * n
    if not total > 0:
        return 1.0 - h
    cov_sides = (var_a * sizes.cube_a + var_b * sizes.cube_b + (var_a + var_b) * sizes.cross
                 + var_c * (sizes.sq_a + sizes.sq_b))  # fmt: skip
    cov_cells = var_a * sizes.cells_a + var_b * sizes.cells_b + var_c * sizes.sq_cells
    return max(1.0 - 2.0 * (cov_sides - cov_cells) / (n * total) + h, 0.5)


def cluster_variance(
    gradient: np.ndarray,
    subject_moments: np.ndarray,
    pair_moments: np.ndarray,
    n: int,
    a_moments: np.ndarray | None = None,
    sizes: ClusterSizes | None = None,
) -> tuple[float, float]:
    """``(V_cgm, V_boot)`` of a statistic with influence ``gradient`` (d statistic / d wins,
    flattened ``[position * 2 + side]``) over ``n`` decisive composites: the two-way
    cluster-robust variance max((g'M_s g - g'M_c g) / f, g'M_c g / (1 - h_c)) (subjects and
    cells as clusters, floored at cells alone) and the pigeonhole bootstrap's g'(M_s + M_c)g
    (derivations in :mod:`cropaudit.stats.bootstrap`). f is :func:`small_sample_factor` with
    the a-side subjects' moments ``a_moments`` and ``sizes`` (1 - h without them, h =
    1'(M_s - M_c)1 / n^2); h_c = 1'M_c 1 / n^2, each capped at 1/2. The floor takes its own
    factor: with the two-way one it made a 16-composite pair's n* half its n. NaN when the
    gradient is undefined."""
    g = np.asarray(gradient, dtype=float).reshape(4)
    if not np.all(np.isfinite(g)) or n <= 0:
        return (math.nan, math.nan)
    m_subjects = subject_moments.astype(float)
    m_cells = pair_moments.astype(float)
    v_subjects = float(g @ m_subjects @ g)
    v_cells = float(g @ m_cells @ g)
    if a_moments is not None and sizes is not None:
        v_a = float(g @ a_moments.astype(float) @ g)
        factor = small_sample_factor(v_a, v_subjects - v_a, v_cells, sizes, float(n))
    else:
        factor = 1.0 - min(float(m_subjects.sum() - m_cells.sum()) / float(n) ** 2, 0.5)
    h_cells = min(float(m_cells.sum()) / float(n) ** 2, 0.5)
    v_cgm = max((v_subjects - v_cells) / factor, v_cells / (1.0 - h_cells), 0.0)  # rounding
    return (v_cgm, v_subjects + v_cells)


def subject_share(
    gradient: np.ndarray,
    subject_moments: np.ndarray,
    pair_moments: np.ndarray,
    n: int,
    a_moments: np.ndarray,
    sizes: ClusterSizes,
) -> float:
    """The subjects' share of the statistic's variance, var_a S_a + var_b S_b over that plus
    var_c n (:func:`components`, arguments as :func:`cluster_variance`): the part that scales
    like (theta (1 - theta))^2 in :func:`score_interval`. 0 where undefined."""
    g = np.asarray(gradient, dtype=float).reshape(4)
    if not np.all(np.isfinite(g)) or n <= 0:
        return 0.0
    v_subjects = float(g @ subject_moments.astype(float) @ g)
    v_a = float(g @ a_moments.astype(float) @ g)
    v_cells = float(g @ pair_moments.astype(float) @ g)
    var_a, var_b, var_c = components(v_a, v_subjects - v_a, v_cells, sizes, float(n))
    return share_of(var_a * sizes.sq_a, var_b * sizes.sq_b, var_c * float(n))


def share_of(subject_a: float, subject_b: float, composite: float) -> float:
    """(subject_a + subject_b) / (all three): the subject share from variance terms already
    multiplied by their sizes (stage and planning alike); 0 where the total is not positive."""
    total = subject_a + subject_b + composite
    return (subject_a + subject_b) / total if total > 0 else 0.0


def subject_weight(share: float, df: float) -> float:
    """The weight w of the (theta (1 - theta))^2 part in :func:`score_interval`: the subject
    ``share`` times (1 - SHARE_DF / df), 0 at df <= SHARE_DF. The share is a ratio of
    method-of-moments components from about df subjects' totals; in the 16-composite pairs
    (df about 7) using it in full widened the interval to 0.974-0.978 and 10 x 10 subjects (df
    18) to 0.971 (module docstring)."""
    if not (share > 0 and df > SHARE_DF):  # NaN in either: 0
        return 0.0
    return min(share, 1.0) * (1.0 - SHARE_DF / df)


def effective_subjects(subject_totals: np.ndarray) -> float:
    """G* = (sum n_s^2)^2 / sum n_s^4 over subjects' decisive composites ``subject_totals``."""
    n2 = np.asarray(subject_totals, dtype=float) ** 2
    return float(n2.sum() ** 2 / (n2**2).sum()) if n2.sum() > 0 else math.nan


def cluster_df(totals_a: np.ndarray, totals_b: np.ndarray) -> float:
    """Degrees of freedom of the t quantile (module docstring) from each side's decisive
    composites per subject, ``totals_a``/``totals_b``. NaN without any."""
    sides = []
    for totals in (totals_a, totals_b):
        n = np.asarray(totals, dtype=float)
        sides.append((float(n.sum()), float((n**2).sum())))
    return satterthwaite_df(sides)


def satterthwaite_df(sides: list[tuple[float, float]]) -> float:
    """Satterthwaite's combination of the sides' G - 1, G = (sum n_s)^2 / sum n_s^2, weighted by
    sum n_s^2; ``sides``: each side's (sum n_s, sum n_s^2), observed or expected (planning).
    NaN without any."""
    parts = [(sq, total**2 / sq - 1.0) for total, sq in sides if sq > 0]
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


def score_interval(
    p: float, n_eff: float, level: float, df: float, n: float = math.inf, share: float = 0.0
) -> tuple[float, float]:
    """Score interval of a proportion ``p`` on ``n_eff`` trials with a t(``df``) quantile
    (normal when ``df`` is infinite), {theta : (p - theta)^2 <= q^2 V(theta)}; NaN when ``p``
    or ``n_eff`` is undefined. V(theta) = V ((1 - w) r + w r^2), r = theta (1 - theta) /
    (p (1 - p)), V = p (1 - p) / n_eff, w = :func:`subject_weight` (``share``, ``df``): Wilson's
    interval at w = 0 (and at p in {0, 1}).

    With ``n`` (the decisive composites) the test it inverts does not spend half its level on a
    tail no outcome can reach: no sample of n composites gives a lower bound above
    r = n / (n + q^2) (all n won, and no more information than n independent composites; the
    subject part only lowers a lower bound above 1/2), so
    a true value above r is never missed from above, and it is tested one-sided (level
    quantile) from below; likewise below 1 - r. Applied where r > 1/2 and the equal-tailed
    interval straddles r (or 1 - r); a tiny pair near 0.85 covered 0.98 without it."""
    if not (math.isfinite(p) and math.isfinite(n_eff) and n_eff > 0):
        return (math.nan, math.nan)
    w = subject_weight(share, df)
    q = _quantile(0.5 + level / 2.0, df)
    lo, hi = _score(p, n_eff, q, w)
    reach = n / (n + q * q) if math.isfinite(n) and n > 0 else math.inf
    if not reach > 0.5:
        return (lo, hi)
    one_lo, one_hi = _score(p, n_eff, _quantile(level, df), w)
    if lo < reach <= hi:
        hi = max(reach, one_hi)
    if lo <= 1.0 - reach < hi:
        lo = min(1.0 - reach, one_lo)
    return (lo, hi)


def score_pvalue(
    p: float, n_eff: float, df: float, n: float = math.inf, null: float = 0.5, share: float = 0.0
) -> float:
    """The p-value against ``null`` of the test :func:`score_interval` inverts: the smallest
    1 - level at which ``null`` lies outside ``score_interval(p, n_eff, level, df, n)``, so
    p < 1 - level exactly when ``null`` is outside that interval. NaN where it is undefined.

    At ``null`` = 1/2 this is the equal-tailed score test, 2 P(T_df > |p - 1/2| /
    sqrt(V(1/2))), V(theta) as in :func:`score_interval` (|p - theta| / sqrt(V(theta)) grows
    monotonically away from p on either side, so the interval is exactly where it is <= q): the
    tail rule never moves 1/2 across a bound, since it applies only where
    r = n / (n + q^2) > 1/2, lowers the upper bound to no less than r (raises the lower one to
    no more than 1 - r) and only narrows the interval. For another ``null`` the rule can decide
    (a one-sided test beyond r), and the level is found by bisection on the interval itself."""
    if not (math.isfinite(p) and math.isfinite(n_eff) and n_eff > 0 and 0.0 < null < 1.0):
        return math.nan
    if null == 0.5:
        z = abs(p - null) / math.sqrt(_variance_at(null, p, n_eff, subject_weight(share, df)))
        tail = student_t.sf(z, max(df, 1.0)) if math.isfinite(df) else ndtr(-z)
        return float(min(1.0, 2.0 * tail))

    def outside(alpha: float) -> bool:
        lo, hi = score_interval(p, n_eff, 1.0 - alpha, df, n, share)
        return not lo <= null <= hi

    if not outside(1.0 - 1e-12):
        return 1.0
    low, high = 0.0, 1.0 - 1e-12  # outside at ``high``; find the smallest such alpha
    for _ in range(60):
        mid = 0.5 * (low + high)
        low, high = (low, mid) if outside(mid) else (mid, high)
    return float(high)


def _quantile(upper: float, df: float) -> float:
    """The t(``df``) quantile at ``upper`` (normal when ``df`` is infinite; df floored at 1)."""
    return float(student_t.ppf(upper, max(df, 1.0)) if math.isfinite(df) else ndtri(upper))


def _variance_at(theta: float, p: float, n_eff: float, w: float) -> float:
    """V(theta) of :func:`score_interval`: theta (1 - theta) / n_eff at w = 0 or p in {0, 1}."""
    spread = theta * (1.0 - theta)
    if not (w > 0 and 0.0 < p < 1.0):
        return spread / n_eff
    r = spread / (p * (1.0 - p))
    return p * (1.0 - p) / n_eff * ((1.0 - w) * r + w * r * r)


def _score(p: float, n_eff: float, q: float, w: float) -> tuple[float, float]:
    """{theta : (p - theta)^2 <= q^2 V(theta)}: Wilson's closed form at w = 0 (or p in {0,
    1}), else each bound the one root of (p - theta)^2 - q^2 V(theta) between p and 0 (1),
    where it is positive (V(0) = 0)."""
    if not (w > 0 and 0.0 < p < 1.0):
        return _wilson(p, n_eff, q)

    def excess(theta: float) -> float:
        return (p - theta) ** 2 - q * q * _variance_at(theta, p, n_eff, w)

    return (brentq(excess, 0.0, p, xtol=1e-14), brentq(excess, p, 1.0, xtol=1e-14))


def _wilson(p: float, n_eff: float, q: float) -> tuple[float, float]:
    """{theta : (p - theta)^2 <= q^2 theta (1 - theta) / n_eff}, clipped to [0, 1]."""
    q2 = q * q
    denom = 1.0 + q2 / n_eff
    centre = (p + q2 / (2.0 * n_eff)) / denom
    half = q * math.sqrt(max(p * (1.0 - p), 0.0) / n_eff + q2 / (4.0 * n_eff**2)) / denom
    # At p = 0 (or 1) the bound is exactly 0 (1); rounding would leave it a hair inside.
    return (
        0.0 if p <= 0.0 else max(centre - half, 0.0),
        1.0 if p >= 1.0 else min(centre + half, 1.0),
    )
