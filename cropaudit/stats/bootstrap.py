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
  jackknife (BCa acceleration) with memory O(subjects), not O(rows);
* ``pair_cells[pair, position, side]``: the wins of each unordered pair of distinct subjects
  (a *cell* of the crossed design), memory O(cells) <= O(rows), for the variance correction below.

Why a correction. For a statistic linear in the rows, sum_c g.x_c (g the influence of one row,
x_c its one-hot wins), the pigeonhole bootstrap's variance is
sum_{c,c'} g.x_c g.x_c' Cov*(W_a W_b, W_a' W_b'); for independent Poisson(1) weights that
covariance is 0 (no shared subject), 1 (one shared subject) or E[W^2]^2 - 1 = 3 (the same two
subjects). Hence, exactly in expectation over the weights,

    V_boot = sum_subjects T_s^2 + sum_cells S_c^2,   T_s, S_c = sums of g.x over a subject / cell,

while the two-way cluster-robust variance (Cameron, Gelbach & Miller 2011), which counts every
covariance once, is V_cgm = sum_s T_s^2 - sum_c S_c^2: the bootstrap counts the within-cell
(composite-level, mostly Bernoulli) variance three times instead of once (Owen 2007 notes the
same excess), which made 95% intervals cover ~98% in the simulation study. Residuals are taken
about the estimate, not the truth, which biases both sums down by about Var(theta_hat) times
h = (sum_s n_s^2 - sum_c m_c^2) / n^2 (n_s, m_c: decisive composites of subject s / cell c; with
equal clusters h = 1/G_a + 1/G_b - 1/G_cells, and with all composites independent the result is
exactly p(1-p)/(n-1)), so V_cgm is divided by 1 - h.

``shrink_factor`` turns this into lambda = sqrt(V_cgm / V_boot) (V_cgm floored at
sum_c S_c^2 / (1 - sum_c m_c^2 / n^2), cells as independent clusters with their own small-sample
factor, since it can go negative), and the estimates move every replicate
towards the point estimate by lambda before taking percentile / BCa intervals: the replicate
distribution keeps its shape (z0 and the acceleration are unchanged) but has the two-way
variance. All sums reduce to 4 x 4 integer moment matrices sum x x^T over subjects and over
cells, so they are exact and independent of row order and sharding.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import ndtr, ndtri

from cropaudit.schemas.survival import POSITIONS, WINNERS
from cropaudit.stats.weights import WeightCache

#: Integer codes of positions and outcomes (the pair table's winners), in schema order.
POSITION_CODE = {p: i for i, p in enumerate(POSITIONS)}
OUTCOME_CODE = {o: i for i, o in enumerate(WINNERS)}

#: Bootstrap variance corrections: ``cgm`` rescales to the two-way cluster-robust variance (see
#: the module docstring); ``none`` keeps the plain pigeonhole bootstrap (conservative).
CORRECTIONS = ("cgm", "none")

#: Subjects x replicates per block of the replicate-sum product (an int32 copy of the weights:
#: 256 MB), and subjects per row block of its sparse product (``_BLOCK`` x replicates int32).
_BLOCK_ELEMENTS = 1 << 26
_BLOCK = 4096


#: Pending pair rows kept before they are sorted and summed into the compact pair table.
_PAIR_BUFFER = 1 << 16


class SufficientStats:
    """Mergeable accumulator of one stratum (picklable; the weight cache lives elsewhere)."""

    def __init__(self, replicates: int) -> None:
        self.replicates = int(replicates)
        self.counts = np.zeros((2, 4), dtype=np.int64)
        # Replicate sums are computed once, from the pair table, when first asked for (``boot``)
        # with the weight source rows were added with (never pickled; see ``use_weights``).
        self._boot: np.ndarray | None = None
        self._weights: WeightCache | None = None
        self.subject_index: dict[str, int] = {}
        self._known: pd.Index | None = None  # the ids of subject_index, for batch lookups
        self._cells = np.zeros((16, 2, 2), dtype=np.int64)
        self._a_count = np.zeros(16, dtype=np.int64)  # decisive composites as face a
        self._self_wins = np.zeros((16, 4), dtype=np.int64)  # rows of one subject on both sides
        # Pair cells: key lo << 32 | hi of the two subject indices (lo < hi), sorted and unique,
        # with wins [position * 2 + side] (int32: 24 bytes a cell); new rows wait in
        # ``_pending`` until compacted.
        self._pair_keys = np.zeros(0, dtype=np.int64)
        self._pair_wins = np.zeros((0, 4), dtype=np.int32)
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._pending_rows = 0
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
            a_count = np.zeros(len(cells), dtype=np.int64)
            a_count[: len(self._a_count)] = self._a_count
            self._a_count = a_count
            self_wins = np.zeros((len(cells), 4), dtype=np.int64)
            self_wins[: len(self._self_wins)] = self._self_wins
            self._self_wins = self_wins

    def _indices(self, subject_ids: Sequence[str]) -> np.ndarray:
        """Indices of distinct ``subject_ids``, new ones appended in the order given (one hash
        lookup in C for the batch; the dict is only touched for subjects not seen before)."""
        index = self.subject_index
        ids = pd.Index(np.asarray(subject_ids, dtype=object))
        if self._known is None or len(self._known) != len(index):
            self._known = pd.Index(np.fromiter(index, dtype=object, count=len(index)))
        out = self._known.get_indexer(ids).astype(np.int64)
        new = out < 0
        if new.any():
            fresh = ids[new]
            out[new] = np.arange(len(index), len(index) + len(fresh))
            index.update(zip(fresh, out[new].tolist()))
            self._known = self._known.append(fresh)
        self._grow(len(index))
        return out

    def _add_pairs(self, i: np.ndarray, j: np.ndarray, wins: np.ndarray) -> None:
        """Queue wins ``(rows, 4)`` of subject-index pairs ``i``, ``j`` (self pairs dropped)."""
        keep = i != j
        lo, hi = np.minimum(i, j)[keep], np.maximum(i, j)[keep]
        if len(lo) == 0:
            return
        self._pending.append(((lo << 32) | hi, wins[keep]))
        self._pending_rows += len(lo)
        if self._pending_rows > max(_PAIR_BUFFER, len(self._pair_keys)):
            self._compact()

    def _compact(self) -> None:
        """Fold pending pair rows into the sorted table (amortised O(cells log cells))."""
        if not self._pending:
            return
        keys = np.concatenate([self._pair_keys, *(k for k, _ in self._pending)])
        wins = np.concatenate([self._pair_wins, *(w for _, w in self._pending)])
        order = np.argsort(keys, kind="stable")
        keys, wins = keys[order], wins[order]
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        self._pair_keys = keys[starts]
        self._pair_wins = np.add.reduceat(wins, starts, axis=0)
        self._pending, self._pending_rows = [], 0

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
        self._a_count[idx] += np.bincount(code_a, minlength=len(uniques))
        self._add_pairs(idx[code_a], idx[code_b], np.eye(4, dtype=np.int32)[cell])

        np.add.at(self._self_wins, (idx[code_a[same]], cell[same]), 1)
        self._boot = None
        return self.use_weights(weights)

    def use_weights(self, weights: WeightCache) -> SufficientStats:
        """The weight source of the replicate sums: a pure function of the subject id
        (:class:`WeightCache`), or one source for all rows of the stratum. An unpickled
        accumulator has none (weight caches stay on their worker)."""
        if weights is not self._weights:
            self._weights, self._boot = weights, None
        return self

    @property
    def boot(self) -> np.ndarray:
        """Weighted wins ``[replicate, position, side]`` (int64), computed on first use."""
        if self._boot is None:
            self._boot = self._replicate_sums()
        return self._boot

    def _replicate_sums(self) -> np.ndarray:
        """sum_rows w_a[r] * w_b[r] * onehot(cell) from the pair table: per cell type k,
        sum_lo W[lo] * (C_k W)[lo] with C_k[lo, hi] the cell's wins (a sparse matrix), plus a
        subject's weight (not its square) for each row of one subject on both sides. One product
        per stratum, O(cells x replicates + subjects x replicates), exact integers, so the sums
        do not depend on batches, order or sharding."""
        n = len(self.subject_index)
        total = np.zeros((self.replicates, 4), dtype=np.int64)
        if n == 0:
            return total.reshape(self.replicates, 2, 2)
        if self._weights is None:
            raise ValueError("replicate sums need a weight source: call use_weights first")
        # Lookups in index order (first appearance): a seeded weight source draws as it did
        # when weights were looked up per batch.
        w_subject = self._weights.lookup(list(self.subject_index))
        self._compact()
        k, cell = np.nonzero(self._pair_wins.T)  # cell types with wins, cell by cell
        key = self._pair_keys[cell]
        wins = self._pair_wins[cell, k].astype(np.int32)  # the dense side's type: no upcast copy
        # C[(k, lo), hi] = wins of cell (lo, hi) in cell type k, rows grouped by k.
        counts = sp.csr_matrix((wins, (k * n + (key >> 32), key & 0xFFFFFFFF)), shape=(4 * n, n))
        self_wins = sp.csr_matrix(self._self_wins[:n].T.astype(np.int32))
        step = max(16, min(self.replicates, _BLOCK_ELEMENTS // n))
        for r0 in range(0, self.replicates, step):
            weights = w_subject[:, r0 : r0 + step].astype(np.int32)
            for t in range(4):
                for a0 in range(t * n, (t + 1) * n, _BLOCK):
                    a1 = min(a0 + _BLOCK, (t + 1) * n)
                    part = counts[a0:a1] @ weights
                    block = weights[a0 - t * n : a1 - t * n]
                    total[r0 : r0 + step, t] += np.einsum("ur,ur->r", part, block, dtype=np.int64)
            if self_wins.nnz:
                total[r0 : r0 + step] += (self_wins @ weights).T
        return total.reshape(self.replicates, 2, 2)

    def merge(self, other: SufficientStats) -> SufficientStats:
        if other.replicates != self.replicates:
            raise ValueError("cannot merge accumulators with different replicate counts")
        self.counts += other.counts
        self._boot = None
        if self._weights is None:
            self._weights = other._weights
        if other.subject_index:
            ids = list(other.subject_index)
            idx = self._indices(ids)
            theirs = np.fromiter(other.subject_index.values(), np.int64)
            self._cells[idx] += other._cells[theirs]
            self._a_count[idx] += other._a_count[theirs]
            self._self_wins[idx] += other._self_wins[theirs]
            other._compact()
            keys = other._pair_keys
            self._add_pairs(idx[keys >> 32], idx[keys & 0xFFFFFFFF], other._pair_wins)
        for name, values in other.provenance.items():
            self.provenance.setdefault(name, set()).update(values)
        return self

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.update(_boot=None, _weights=None, _known=None)
        state["_cells"] = self.subject_cells.copy()
        state["_a_count"] = self._a_count[: len(self.subject_index)].copy()
        state["_self_wins"] = self._self_wins[: len(self.subject_index)].copy()
        self._compact()
        state.update(_pair_keys=self._pair_keys, _pair_wins=self._pair_wins, _pending=[])
        state["_pending_rows"] = 0
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if len(self._cells) == 0:
            self._cells = np.zeros((16, 2, 2), dtype=np.int64)
            self._a_count = np.zeros(16, dtype=np.int64)
            self._self_wins = np.zeros((16, 4), dtype=np.int64)

    # -- views ------------------------------------------------------------------------------
    @property
    def a_counts(self) -> np.ndarray:
        """Each subject's decisive composites as face a (``subject_cells`` order)."""
        return self._a_count[: len(self.subject_index)]

    @property
    def wins(self) -> np.ndarray:
        """Unweighted wins ``[position, side]`` (side a/b)."""
        return self.counts[:, :2]

    @property
    def pair_subjects(self) -> tuple[np.ndarray, np.ndarray]:
        """Subject indices (``subject_cells`` order) of every cell's two subjects, in
        ``pair_cells`` order."""
        self._compact()
        return self._pair_keys >> 32, self._pair_keys & 0xFFFFFFFF

    @property
    def pair_cells(self) -> np.ndarray:
        """Wins of every cell (unordered pair of distinct subjects), ``(cells, 2, 2)``."""
        self._compact()
        return self._pair_wins.reshape(-1, 2, 2)

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Exact ``(sum_s x_s x_s^T, sum_c x_c x_c^T)`` over subjects and over cells, x being the
        flattened wins ``[position * 2 + side]``; 4 x 4 int64, independent of row order."""
        subj = self.subject_cells.reshape(-1, 4)
        pair = self.pair_cells.reshape(-1, 4).astype(np.int64)
        return subj.T @ subj, pair.T @ pair

    def composites(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """The decisive composites of distinct subjects rebuilt from the pair cells, as
        ``(a subject, b subject, a first, a won)`` with subjects as ranks in id order, one entry
        per composite in (a, b) order, independent of row order; None
        when a cell's sides are ambiguous (a subject seen as face a and as face b)."""
        n = len(self.subject_index)
        totals = self.subject_cells.reshape(n, 4).sum(1)
        a_count = self._a_count[:n]
        a_only, b_only = a_count == totals, a_count == 0
        self._compact()
        lo, hi = self._pair_keys >> 32, self._pair_keys & 0xFFFFFFFF
        lo_is_a = a_only[lo] & b_only[hi]
        if not np.all(lo_is_a | (a_only[hi] & b_only[lo])):
            return None
        # Subjects by their rank in id order, cells sorted by it: the same composites in the same
        # order whatever order the rows arrived in (the model fit is then reproducible).
        rank = np.empty(n, dtype=np.int64)
        rank[np.argsort(np.array(list(self.subject_index), dtype=object), kind="stable")] = (
            np.arange(n)
        )
        a, b = rank[np.where(lo_is_a, lo, hi)], rank[np.where(lo_is_a, hi, lo)]
        order = np.lexsort((b, a))
        a, b = a[order], b[order]
        counts = self._pair_wins.astype(np.int64)[order]  # [position * 2 + side]
        cell = np.arange(4)
        reps = counts.reshape(-1)
        a_idx = np.repeat(np.repeat(a, 4), reps)
        b_idx = np.repeat(np.repeat(b, 4), reps)
        code = np.repeat(np.tile(cell, len(a)), reps)
        return a_idx, b_idx, code < 2, code % 2 == 0

    def jackknife_cells(self) -> np.ndarray:
        """Wins with each subject's composites deleted, shape ``(subjects, 2, 2)``, in subject-id
        order so that float sums over it do not depend on the order rows arrived in."""
        order = np.argsort(np.array(list(self.subject_index), dtype=object), kind="stable")
        return self.wins[None] - self.subject_cells[order]


# -- variance correction and intervals from replicates ------------------------------------------
def shrink_factor(v_cgm: float, v_boot: float) -> float:
    """lambda = sqrt(V_cgm / V_boot) from :func:`cropaudit.stats.effective.cluster_variance`'s
    ``(V_cgm, V_boot)``: by the module docstring, V_boot = g'(M_s + M_c)g and V_cgm the two-way
    variance (floored at cells as independent clusters, with small-sample factors capped at 1/2
    for strata with a handful of subjects). 1.0 when the variance is zero or undefined (nothing
    to correct)."""
    if not (math.isfinite(v_boot) and v_boot > 0):
        return 1.0
    return math.sqrt(v_cgm / v_boot)


def shrink(replicates: np.ndarray, estimate: float, factor: float) -> np.ndarray:
    """Replicates pulled towards ``estimate`` by ``factor`` (NaN replicates stay NaN)."""
    if factor == 1.0 or not math.isfinite(estimate):
        return replicates
    return estimate + factor * (replicates - estimate)


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
    return float(ndtri(share))


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
    for z in (ndtri(alpha), ndtri(1.0 - alpha)):
        denom = 1.0 - accel * (z0 + z)
        levels.append(float(ndtr(z0 + (z0 + z) / denom)) if denom > 0 else math.nan)
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
