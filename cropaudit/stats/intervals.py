"""Binomial intervals for a survival ratio, treating composites as independent trials.

These are the *naive* intervals: they ignore that each face appears in many composites, so they
are too narrow when subjects differ (the simulation study shows by how much). They are reported
beside the subject-clustered bootstrap for comparison, and Twitter's normal interval
p +/- 2 sqrt(p(1-p)/n) is reproduced only to compare with the published analysis.
"""

from __future__ import annotations

import math

import numpy as np
from statsmodels.stats.proportion import proportion_confint


def _nan_pair() -> tuple[float, float]:
    return (math.nan, math.nan)


def wilson(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval; good coverage for small n and p near 0 or 1."""
    if n <= 0:
        return _nan_pair()
    lo, hi = proportion_confint(successes, n, alpha=1.0 - level, method="wilson")
    return (float(lo), float(hi))


def clopper_pearson(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval; conservative by construction."""
    if n <= 0:
        return _nan_pair()
    lo, hi = proportion_confint(successes, n, alpha=1.0 - level, method="beta")
    return (float(lo), float(hi))


def twitter_normal(successes: int, n: int) -> tuple[float, float]:
    """Twitter's p +/- 2 sqrt(p(1-p)/n) (Yee et al. 2021), unclipped; comparison only."""
    if n <= 0:
        return _nan_pair()
    p = successes / n
    half = 2.0 * math.sqrt(p * (1.0 - p) / n)
    return (p - half, p + half)


def wilson_array(successes: np.ndarray, n: np.ndarray, level: float = 0.95) -> np.ndarray:
    """Vectorised Wilson interval, shape ``(..., 2)``; NaN where n == 0."""
    successes = np.asarray(successes, dtype=float)
    n = np.asarray(n, dtype=float)
    z = float(np.sqrt(2.0) * _erfinv(level))
    with np.errstate(invalid="ignore", divide="ignore"):
        p = successes / n
        denom = 1.0 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return np.stack([centre - half, centre + half], axis=-1)


def _erfinv(level: float) -> float:
    from scipy.special import erfinv

    return float(erfinv(level))


def finite(value) -> bool:
    """Whether ``value`` is a finite number (None and non-numbers are not)."""
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def reported_interval(row, stat: str = "ratio") -> tuple[float, float]:
    """``stat``'s reported interval (``<stat>_low/high``) from an estimates row (a mapping or a
    pandas row); for tables written before it existed, the BCa interval, or percentile where
    BCa is undefined."""
    lo, hi = row.get(f"{stat}_low"), row.get(f"{stat}_high")
    if not (finite(lo) and finite(hi)):
        lo, hi = row.get(f"{stat}_bca_low"), row.get(f"{stat}_bca_high")
    if not (finite(lo) and finite(hi)):
        lo, hi = row.get(f"{stat}_percentile_low"), row.get(f"{stat}_percentile_high")
    return lo, hi
