"""Unit tests of the pure statistics: intervals, tests, weights, accumulators."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from statsmodels.stats.proportion import proportion_confint

from cropaudit.stats import intervals
from cropaudit.stats.bootstrap import (
    SufficientStats,
    bca_interval,
    bootstrap_pvalue,
    percentile_interval,
)
from cropaudit.stats.estimates import derived, estimate_stratum
from cropaudit.stats.tests_multiple import benjamini_hochberg, binomial_pvalue, holm
from cropaudit.stats.weights import WeightCache, subject_weights, weight_matrix


def test_wilson_known_value():
    # 7/20 at 95%: centre (p + z^2/2n)/(1 + z^2/n), hand-checked against statsmodels.
    lo, hi = intervals.wilson(7, 20)
    assert lo == pytest.approx(0.18119, abs=1e-4)
    assert hi == pytest.approx(0.56714, abs=1e-4)
    assert (lo, hi) == pytest.approx(proportion_confint(7, 20, method="wilson"))
    arr = intervals.wilson_array(np.array([7]), np.array([20]))[0]
    assert tuple(arr) == pytest.approx((lo, hi))


def test_clopper_pearson_known_values():
    lo, hi = intervals.clopper_pearson(0, 10)
    assert lo == 0.0
    assert hi == pytest.approx(1 - 0.025 ** (1 / 10))  # closed form at x = 0
    assert intervals.clopper_pearson(7, 20, 0.9) == pytest.approx(
        proportion_confint(7, 20, alpha=0.1, method="beta")
    )


def test_twitter_normal_and_empty():
    lo, hi = intervals.twitter_normal(50, 100)
    assert (lo, hi) == pytest.approx((0.4, 0.6))
    assert all(math.isnan(x) for x in intervals.wilson(0, 0))


def test_binomial_pvalue():
    assert binomial_pvalue(5, 10) == pytest.approx(1.0)
    assert binomial_pvalue(10, 10) == pytest.approx(2 * 0.5**10)
    assert math.isnan(binomial_pvalue(0, 0))


def test_holm_and_bh_small_examples():
    p = [0.01, 0.04, 0.03, 0.005]
    # Holm: sorted 0.005*4, 0.01*3, 0.03*2, 0.04*1 with running max.
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # BH: sorted p * m / rank with running min from the top: 0.02, 0.04*4/4 ...
    assert benjamini_hochberg(p) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    out = holm([0.01, float("nan"), 0.02])
    assert math.isnan(out[1]) and out[0] == pytest.approx(0.02)


def test_weights_deterministic_and_prefix_stable():
    w = subject_weights("cfd:AF-200", 500, seed=3)
    assert w.dtype == np.uint8 and w.shape == (500,)
    assert np.array_equal(w, subject_weights("cfd:AF-200", 500, seed=3))
    assert np.array_equal(w[:100], subject_weights("cfd:AF-200", 100, seed=3))
    assert not np.array_equal(w, subject_weights("cfd:AF-200", 500, seed=4))
    assert not np.array_equal(w, subject_weights("cfd:AF-201", 500, seed=3))


def test_weights_independent_of_order_and_poisson_moments():
    ids = [f"s{i}" for i in range(400)]
    m = weight_matrix(ids, 250, seed=0)
    rev = weight_matrix(ids[::-1], 250, seed=0)[::-1]
    assert np.array_equal(m, rev)
    assert np.array_equal(WeightCache(250, 0).lookup(ids[::7]), m[::7])
    assert m.mean() == pytest.approx(1.0, abs=0.01)
    assert m.var() == pytest.approx(1.0, abs=0.03)
    # Different subjects are (nearly) uncorrelated.
    corr = np.corrcoef(m[:50].astype(float))
    assert np.abs(corr[np.triu_indices(50, 1)]).mean() < 0.08


def _random_rows(rng, n):
    return {
        "a_subject": np.array([f"a{i}" for i in rng.integers(0, 30, n)], dtype=object),
        "b_subject": np.array([f"b{i}" for i in rng.integers(0, 30, n)], dtype=object),
        "position": rng.integers(0, 2, n),
        "outcome": rng.integers(0, 4, n),
    }


def test_accumulator_merge_equals_single_pass_in_any_order():
    rng = np.random.default_rng(0)
    rows = _random_rows(rng, 900)
    cache = WeightCache(64, 1)
    whole = SufficientStats(64).add_batch(**rows, weights=cache)
    parts = []
    for idx in np.array_split(rng.permutation(900), 3):
        part = SufficientStats(64).add_batch(
            **{k: v[idx] for k, v in rows.items()}, weights=WeightCache(64, 1)
        )
        parts.append(pickle.loads(pickle.dumps(part)))
    merged = parts[2].merge(parts[0]).merge(parts[1])
    assert np.array_equal(whole.boot, merged.boot)
    assert np.array_equal(whole.counts, merged.counts)
    assert np.array_equal(whole.jackknife_cells(), merged.jackknife_cells())
    assert estimate_stratum(whole) == estimate_stratum(merged)


def test_replicate_sums_match_direct_definition():
    rng = np.random.default_rng(1)
    rows = _random_rows(rng, 300)
    stats = SufficientStats(20).add_batch(**rows, weights=WeightCache(20, 5))
    wa = weight_matrix(rows["a_subject"], 20, 5).astype(np.int64)
    wb = weight_matrix(rows["b_subject"], 20, 5).astype(np.int64)
    w = wa * wb
    for pos in (0, 1):
        for side in (0, 1):
            mask = (rows["position"] == pos) & (rows["outcome"] == side)
            assert np.array_equal(stats.boot[:, pos, side], w[mask].sum(0))


def test_jackknife_deletes_every_composite_of_a_subject():
    stats = SufficientStats(4).add_batch(
        np.array(["x", "x", "y"], dtype=object),
        np.array(["u", "v", "u"], dtype=object),
        np.array([0, 1, 0]),
        np.array([0, 1, 0]),
        WeightCache(4, 0),
    )
    jack = dict(zip(sorted(stats.subject_index), stats.jackknife_cells(), strict=True))
    assert jack["x"].tolist() == [[1, 0], [0, 0]]  # only the y-u composite left
    assert jack["u"].tolist() == [[0, 0], [0, 1]]


def test_derived_statistics():
    cells = np.array([[30, 10], [20, 20]])  # a_first: a 30 b 10; b_first: a 20 b 20
    d = derived(cells)
    assert d["ratio"] == pytest.approx(50 / 80)
    assert d["order_adjusted_ratio"] == pytest.approx((0.75 + 0.5) / 2)
    assert d["first_slot_rate"] == pytest.approx((30 + 20) / 80)


def test_bca_reduces_to_percentile_without_bias_or_skew():
    reps = np.linspace(0.0, 1.0, 1001)
    jack = np.array([0.4, 0.5, 0.6])  # symmetric: acceleration 0
    lo, hi, z0, accel = bca_interval(reps, 0.5, jack, 0.9)
    assert z0 == pytest.approx(0.0) and accel == pytest.approx(0.0)
    assert (lo, hi) == pytest.approx(percentile_interval(reps, 0.9))
    assert (lo, hi) == pytest.approx((0.05, 0.95))


def test_bootstrap_pvalue():
    assert bootstrap_pvalue(np.full(99, 0.7)) == pytest.approx(2 / 100)
    assert bootstrap_pvalue(np.linspace(0.3, 0.7, 101)) == pytest.approx(1.0)
