"""Streaming sufficient statistics for the subject-clustered (multiway) bootstrap, and the
percentile / BCa intervals computed from them.

Each composite is one Bernoulli-like outcome shared by two subjects, so subjects are crossed, not
nested: resampling composites would treat the ~20 composites of one face as independent and
understate the variance. The pigeonhole bootstrap (Owen 2007) reweights subjects instead; with
Poisson(1) weights a replicate is a weighted sum over rows, so everything needed is, per stratum,

* ``counts[position, outcome]``: plain counts (position a_first/b_first x outcome a/b/tie/bg);
* ``boot[replicate, position, side]``: weighted wins of face a / face b, integers (weights are
  products of integer Poisson counts), so sums are exact and independent of order and sharding;
* ``subject_cells[subject, position, side]``: each subject's own wins, for a delete-one-subject
  jackknife (BCa acceleration) with memory O(subjects), not O(rows).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import norm

from cropaudit.stats.weights import WeightCache

POSITIONS = ("a_first", "b_first")
OUTCOMES = ("a", "b", "tie", "background")
POSITION_CODE = {p: i for i, p in enumerate(POSITIONS)}
OUTCOME_CODE = {o: i for i, o in enumerate(OUTCOMES)}

#: Rows per matrix product. float32 sums of <= 4096 products of weights <= 30 stay below 2**24,
#: hence exact; the product matrix stays ~16 MB at 1,000 replicates.
_CHUNK = 4096


class SufficientStats:
    """Mergeable accumulator of one stratum (picklable; the weight cache lives elsewhere)."""

    def __init__(self, replicates: int) -> None:
        self.replicates = int(replicates)
        self.counts = np.zeros((2, 4), dtype=np.int64)
        self.boot = np.zeros((self.replicates, 2, 2), dtype=np.int64)
        self.subject_index: dict[str, int] = {}
        self._cells = np.zeros((16, 2, 2), dtype=np.int64)
        self.provenance: dict[str, set[str]] = {}

    # -- building -------------------------------------------------------------------------
    @property
    def subject_cells(self) -> np.ndarray:
        return self._cells[: len(self.subject_index)]

    def _grow(self, n: int) -> None:
        if n > len(self._cells):
            cells = np.zeros((max(n, 2 * len(self._cells)), 2, 2), dtype=np.int64)
            cells[: len(self._cells)] = self._cells
            self._cells = cells

    def _indices(self, subject_ids: Sequence[str]) -> np.ndarray:
        index = self.subject_index
        out = np.empty(len(subject_ids), dtype=np.int64)
        for i, sid in enumerate(subject_ids):
            j = index.get(sid)
            if j is None:
                j = index[sid] = len(index)
            out[i] = j
        self._grow(len(index))
        return out

    def add_provenance(self, values: Mapping[str, object]) -> None:
        for name, value in values.items():
            self.provenance.setdefault(name, set()).add(str(value))

    def add_batch(
        self,
        a_subject: np.ndarray,
        b_subject: np.ndarray,
        position: np.ndarray,
        outcome: np.ndarray,
        weights: WeightCache,
    ) -> SufficientStats:
        """Add rows (one per composite); ``position``/``outcome`` are the integer codes above."""
        position = np.asarray(position, dtype=np.int64)
        outcome = np.asarray(outcome, dtype=np.int64)
        self.counts += np.bincount(position * 4 + outcome, minlength=8).reshape(2, 4)
        decisive = outcome < 2
        if not decisive.any():
            return self
        a_subject = np.asarray(a_subject, dtype=object)[decisive]
        b_subject = np.asarray(b_subject, dtype=object)[decisive]
        cell = position[decisive] * 2 + outcome[decisive]
        n = len(cell)
        codes, uniques = pd.factorize(np.concatenate([a_subject, b_subject]))
        code_a, code_b = codes[:n], codes[n:]
        same = code_a == code_b
        uniques = list(uniques)

        # Per-subject wins for the jackknife (a composite counts once for each distinct subject).
        local = np.zeros((len(uniques), 4), dtype=np.int64)
        np.add.at(local, (code_a, cell), 1)
        np.add.at(local, (code_b[~same], cell[~same]), 1)
        idx = self._indices(uniques)
        self._cells[idx] += local.reshape(-1, 2, 2)

        # Replicate sums: sum_rows w_a[r] * w_b[r] * onehot(cell), in exact float32 chunks.
        w_subject = weights.lookup(uniques).astype(np.float32)
        total = np.zeros((self.replicates, 4), dtype=np.int64)
        for start in range(0, n, _CHUNK):
            sl = slice(start, start + _CHUNK)
            w = w_subject[code_a[sl]]
            w_b = w_subject[code_b[sl]]
            w_b[same[sl]] = 1.0  # one subject drawn twice (same_image): its weight, not squared
            w *= w_b
            onehot = np.zeros((len(w), 4), dtype=np.float32)
            onehot[np.arange(len(w)), cell[sl]] = 1.0
            total += np.rint(w.T @ onehot).astype(np.int64)
        self.boot += total.reshape(self.replicates, 2, 2)
        return self

    def merge(self, other: SufficientStats) -> SufficientStats:
        if other.replicates != self.replicates:
            raise ValueError("cannot merge accumulators with different replicate counts")
        self.counts += other.counts
        self.boot += other.boot
        if other.subject_index:
            ids = list(other.subject_index)
            idx = self._indices(ids)
            self._cells[idx] += other._cells[np.fromiter(other.subject_index.values(), np.int64)]
        for name, values in other.provenance.items():
            self.provenance.setdefault(name, set()).update(values)
        return self

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_cells"] = self.subject_cells.copy()
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if len(self._cells) == 0:
            self._cells = np.zeros((16, 2, 2), dtype=np.int64)

    # -- views ------------------------------------------------------------------------------
    @property
    def wins(self) -> np.ndarray:
        """Unweighted wins ``[position, side]`` (side a/b)."""
        return self.counts[:, :2]

    def jackknife_cells(self) -> np.ndarray:
        """Wins with each subject's composites deleted, shape ``(subjects, 2, 2)``, in subject-id
        order so that float sums over it do not depend on the order rows arrived in."""
        order = np.argsort(np.array(list(self.subject_index), dtype=object), kind="stable")
        return self.wins[None] - self.subject_cells[order]


# -- intervals from replicates ----------------------------------------------------------------
def percentile_interval(replicates: np.ndarray, level: float) -> tuple[float, float]:
    """Equal-tailed percentile interval; replicates with an undefined statistic are dropped."""
    reps = replicates[np.isfinite(replicates)]
    if len(reps) < 2:
        return (math.nan, math.nan)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(reps, [alpha, 1.0 - alpha])
    return (float(lo), float(hi))


def jackknife_acceleration(jackknife: np.ndarray) -> float:
    """BCa acceleration from delete-one (subject) estimates (Efron 1987, eq. 6.6)."""
    jack = jackknife[np.isfinite(jackknife)]
    if len(jack) < 3:
        return 0.0
    d = jack.mean() - jack
    denom = 6.0 * float(np.sum(d**2)) ** 1.5
    return float(np.sum(d**3) / denom) if denom > 0 else 0.0


def bias_correction(replicates: np.ndarray, estimate: float) -> float:
    """z0 = Phi^-1(share of replicates below the estimate), ties counted half."""
    reps = replicates[np.isfinite(replicates)]
    if len(reps) == 0 or not math.isfinite(estimate):
        return math.nan
    share = (np.sum(reps < estimate) + 0.5 * np.sum(reps == estimate)) / len(reps)
    return float(norm.ppf(share))


def bca_interval(
    replicates: np.ndarray, estimate: float, jackknife: np.ndarray, level: float
) -> tuple[float, float, float, float]:
    """BCa interval (Efron 1987): percentile levels shifted for median bias (z0) and for the
    skewness of the estimator (acceleration). Returns ``(low, high, z0, acceleration)``; the
    interval is NaN when all replicates fall on one side of the estimate (z0 infinite)."""
    reps = replicates[np.isfinite(replicates)]
    z0 = bias_correction(reps, estimate)
    accel = jackknife_acceleration(jackknife)
    if len(reps) < 2 or not math.isfinite(z0):
        return (math.nan, math.nan, z0, accel)
    alpha = (1.0 - level) / 2.0
    levels = []
    for z in (norm.ppf(alpha), norm.ppf(1.0 - alpha)):
        denom = 1.0 - accel * (z0 + z)
        levels.append(float(norm.cdf(z0 + (z0 + z) / denom)) if denom > 0 else math.nan)
    if not all(math.isfinite(q) for q in levels):
        return (math.nan, math.nan, z0, accel)
    lo, hi = np.quantile(reps, levels)
    return (float(lo), float(hi), z0, accel)


def bootstrap_pvalue(replicates: np.ndarray, null: float = 0.5) -> float:
    """Two-sided bootstrap p-value against ``null``: twice the smaller tail share of replicates
    beyond the null, with the +1 correction so p is never 0 (inverts the percentile interval)."""
    reps = replicates[np.isfinite(replicates)]
    if len(reps) == 0:
        return math.nan
    below = (np.sum(reps <= null) + 1) / (len(reps) + 1)
    above = (np.sum(reps >= null) + 1) / (len(reps) + 1)
    return float(min(1.0, 2.0 * min(below, above)))
