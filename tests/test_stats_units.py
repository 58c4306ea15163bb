"""Unit tests of the pure statistics: intervals, tests, weights, accumulators."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from statsmodels.stats.proportion import proportion_confint

from cropaudit.stats import effective, intervals
from cropaudit.stats.bootstrap import (
    SufficientStats,
    bca_interval,
    bootstrap_pvalue,
    percentile_interval,
    shrink_factor,
)
from cropaudit.stats.stratum import derived, estimate_stratum, gradients
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
    merged = parts[2].merge(parts[0]).merge(parts[1]).use_weights(cache)
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


# -- bootstrap variance correction (pigeonhole bootstrap -> two-way cluster-robust variance) ----
def _stats(a, b, position, outcome, replicates=16, seed=0):
    return SufficientStats(replicates).add_batch(
        np.asarray(a, dtype=object),
        np.asarray(b, dtype=object),
        np.asarray(position),
        np.asarray(outcome),
        WeightCache(replicates, seed),
    )


def test_pair_cells_unordered_without_self_pairs_and_exact_merge(monkeypatch):
    stats = _stats(["x", "y", "x", "x"], ["y", "x", "x", "z"], [0, 1, 0, 1], [0, 0, 1, 3])
    # (x,y) and (y,x) share one cell (same two weights); x-x is one-way only; background rows
    # carry no residual, so x-z has no cell.
    assert stats.pair_cells.reshape(-1, 4).tolist() == [[1, 0, 1, 0]]
    monkeypatch.setattr("cropaudit.stats.bootstrap._PAIR_BUFFER", 7)  # force many compactions
    rng = np.random.default_rng(3)
    rows = _random_rows(rng, 600)
    rows["b_subject"] = np.where(rng.random(600) < 0.3, rows["a_subject"], rows["b_subject"])
    whole = SufficientStats(8).add_batch(**rows, weights=WeightCache(8, 0))
    parts = [
        SufficientStats(8).add_batch(
            **{k: v[i] for k, v in rows.items()}, weights=WeightCache(8, 0)
        )
        for i in np.array_split(rng.permutation(600), 5)
    ]
    merged = pickle.loads(pickle.dumps(parts[4]))
    for part in parts[3::-1]:
        merged.merge(pickle.loads(pickle.dumps(part)))
    merged.use_weights(WeightCache(8, 0))  # weight caches are never pickled
    for x, y in zip(whole.moments(), merged.moments(), strict=True):
        assert np.array_equal(x, y)
    assert len(whole.pair_cells) == len(merged.pair_cells) <= 600
    assert estimate_stratum(whole) == estimate_stratum(merged)


def test_gradients_match_finite_differences():
    wins = np.array([[30.0, 12.0], [17.0, 25.0]])
    grads = gradients(wins)
    base = derived(wins)
    for k in range(4):
        step = np.zeros(4)
        step[k] = 1e-6
        bumped = derived(wins + step.reshape(2, 2))
        for stat, g in grads.items():
            assert (bumped[stat] - base[stat]) / 1e-6 == pytest.approx(g[k], rel=1e-4, abs=1e-9)


def test_shrink_factor_limits():
    g = np.array([0.5, -0.5, 0.5, -0.5])
    m = np.diag([4, 4, 4, 4])
    zero = np.zeros((4, 4), np.int64)

    def lam(*args):
        return shrink_factor(*effective.cluster_variance(*args))

    # No cell noise: nothing to remove, only the small-sample factor 1 / (1 - h), h = 16 / n^2.
    assert lam(g, m, zero, 400) == pytest.approx(1 / math.sqrt(1 - 16 / 400**2))
    # Floor (cells alone), with the cells' own factor 1 / (1 - h_c), h_c = 16 / n^2.
    assert lam(g, m, m, 400) == pytest.approx(math.sqrt(0.5 / (1 - 16 / 400**2)))
    assert lam(np.full(4, np.nan), m, m, 400) == 1.0
    assert lam(g, zero, zero, 400) == 1.0
    assert lam(g, m, zero, 2) == pytest.approx(math.sqrt(2))  # h capped at 1/2


def test_subject_effect_without_noise_keeps_bootstrap_nearly_whole():
    # 40 x 40 faces, every pair once, a-face i wins iff i < 20: only subject effects. Residuals
    # +-1/2: subject sums T = +-20 (a faces) and 0 (b faces), cell sums +-1/2.
    a = [f"a{i}" for i in range(40) for _ in range(40)]
    b = [f"b{j}" for _ in range(40) for j in range(40)]
    outcome = [0 if i < 20 else 1 for i in range(40) for _ in range(40)]
    stats = _stats(a, b, np.arange(1600) % 2, outcome)
    est = estimate_stratum(stats)
    v_subjects, v_cells = 40 * 20.0**2, 1600 * 0.25
    h = (80 * 40**2 - 1600) / 1600**2  # 1/40 + 1/40 - 1/1600
    expected = math.sqrt((v_subjects - v_cells) / (1 - h) / (v_subjects + v_cells))
    assert est["ratio_boot_shrink"] == pytest.approx(expected)
    assert est["ratio_boot_shrink"] == pytest.approx(1.0, abs=0.01)  # little cell noise: ~1
    assert estimate_stratum(stats, correction="none")["ratio_boot_shrink"] == 1.0


def test_independent_composites_corrected_variance_is_binomial():
    # Every composite has its own two faces: the pigeonhole bootstrap's variance is 3 p(1-p)/n;
    # the corrected one is exactly the (unbiased) binomial p(1-p)/(n-1).
    rng = np.random.default_rng(4)
    n = 3000
    outcome = (rng.random(n) < 0.6).astype(int)
    stats = _stats(
        [f"a{i}" for i in range(n)], [f"b{i}" for i in range(n)], np.arange(n) % 2, outcome, 2000
    )
    est = estimate_stratum(stats)
    plain = estimate_stratum(stats, correction="none")
    p = est["ratio"]
    binomial_se = math.sqrt(p * (1 - p) / n)
    assert est["ratio_boot_shrink"] == pytest.approx(math.sqrt(n / (3 * (n - 1))))
    assert plain["ratio_boot_se"] == pytest.approx(math.sqrt(3) * binomial_se, rel=0.06)
    assert est["ratio_boot_se"] == pytest.approx(binomial_se, rel=0.06)
    width = est["ratio_percentile_high"] - est["ratio_percentile_low"]
    assert width == pytest.approx(2 * 1.96 * binomial_se, rel=0.08)


def test_bootstrap_variance_matches_its_expansion():
    # The identity behind the correction: E* var = (sum_s T_s^2 + sum_c S_c^2) / n^2.
    rng = np.random.default_rng(5)
    rows = _random_rows(rng, 2000)
    rows["outcome"] = (rng.random(2000) < 0.3).astype(int)
    stats = SufficientStats(3000).add_batch(**rows, weights=WeightCache(3000, 2))
    m_subjects, m_pairs = stats.moments()
    g = gradients(stats.wins)["ratio"]
    expansion = float(g @ (m_subjects + m_pairs) @ g)
    assert np.nanvar(derived(stats.boot)["ratio"]) == pytest.approx(expansion, rel=0.1)


def _one_way_rows(a_won: np.ndarray, n_subjects: int, rng) -> dict:
    n = len(a_won)
    return {
        "a_subject": np.array([f"a{i}" for i in rng.integers(0, n_subjects, n)], dtype=object),
        "b_subject": np.array([f"b{i}" for i in rng.integers(0, n_subjects, n)], dtype=object),
        "position": np.arange(n) % 2,
        "outcome": np.where(a_won, 0, 1),
    }


@pytest.mark.parametrize("a_wins", [0, 16])
def test_zero_of_sixteen_interval_inside_unit_interval_with_positive_width(a_wins):
    # 16 composites of ~10 subjects, every one won by the same side: the bootstrap collapses.
    rows = _one_way_rows(np.full(16, a_wins == 16), 5, np.random.default_rng(4))
    est = estimate_stratum(SufficientStats(200).add_batch(**rows, weights=WeightCache(200, 0)))
    assert est["wins_a"] == a_wins and est["decisive"] == 16
    assert est["ratio_percentile_low"] == est["ratio_percentile_high"] == a_wins / 16
    for stat in ("ratio", "order_adjusted_ratio", "first_slot_rate"):
        lo, hi = est[f"{stat}_low"], est[f"{stat}_high"]
        assert 0.0 <= lo <= est[stat] <= hi <= 1.0, stat
        assert hi - lo > 0.05, stat
        assert est[f"{stat}_interval_method"] == "wilson_effective_n"
    # No information on the design effect at the boundary: every subject's composites count as
    # one block, n* = n^2 / sum n_s^2, wider than the naive Wilson interval on 16 composites.
    assert est["ratio_effective_n"] < 16
    naive = intervals.wilson(a_wins, 16)
    assert est["ratio_high"] - est["ratio_low"] > naive[1] - naive[0]


def _inverted(
    p: float, n_eff: float, level: float, df: float, n: float, w: float = 0.0
) -> tuple[float, float]:
    """The interval by brute force: the values theta on a fine grid that the score test the
    tail rule describes accepts (one-sided beyond r = n / (n + q^2) and below 1 - r, where no
    sample of n composites can reject from the other side; equal-tailed between), with the
    variance at theta p(1 - p) / n_eff ((1 - w) s + w s^2), s = theta (1 - theta) / (p (1 - p))."""
    from scipy.stats import t as student_t

    q, q1 = student_t.ppf(0.5 + level / 2, df), student_t.ppf(level, df)
    r = n / (n + q * q)
    theta = np.linspace(1e-7, 1 - 1e-7, 2_000_001)
    spread = theta * (1 - theta) / (p * (1 - p))
    z = (p - theta) / np.sqrt(p * (1 - p) / n_eff * ((1 - w) * spread + w * spread**2))
    two = np.abs(z) <= q
    if r > 0.5:
        accept = np.where(theta >= r, z >= -q1, np.where(theta <= 1 - r, z <= q1, two))
    else:
        accept = two
    return float(theta[accept].min()), float(theta[accept].max())


@pytest.mark.parametrize(
    ("p", "n_eff", "df", "n"),
    [
        (14 / 15, 12.0, 9.0, 15),  # near the top of a tiny pair: the upper bound is one-sided
        (0.6, 9.0, 8.0, 15),  # wide: the upper end straddles r and moves
        (1 / 24, 20.0, 12.0, 24),  # near the bottom
        (0.5, 4.0, 3.0, 6),  # r below 1/2: equal-tailed
        (0.55, 400.0, 60.0, 1000),  # large: nothing reaches r, equal-tailed
    ],
)
def test_tail_rule_is_the_inversion_of_its_test(p, n_eff, df, n):
    got = effective.score_interval(p, n_eff, 0.95, df, n)
    want = _inverted(p, n_eff, 0.95, df, n)
    assert got == pytest.approx(want, abs=2e-6)
    plain = effective.score_interval(p, n_eff, 0.95, df)
    assert got[0] >= plain[0] and got[1] <= plain[1]  # the rule only gives up an unreachable tail


@pytest.mark.parametrize(
    ("p", "n_eff", "df", "n", "share"),
    [
        (0.9, 30.0, 22.0, 240, 0.87),  # 12 faces a side near 0.8: widened towards 1/2
        (14 / 15, 12.0, 14.0, 15, 0.6),  # tiny, near the top: with the tail rule
        (0.2, 50.0, 60.0, 500, 1.0),
        (0.6, 40.0, 9.0, 200, 0.9),  # df <= SHARE_DF: the share is not used (Wilson)
    ],
)
def test_subject_share_interval_is_the_inversion_of_its_test(p, n_eff, df, n, share):
    """With a subject share the variance at theta mixes theta (1 - theta) and its square; the
    interval is still exactly the set the test accepts, and it reaches further towards 1/2 than
    Wilson's (the subject part grows faster there) and less far towards the bound."""
    w = effective.subject_weight(share, df)
    assert (w == 0.0) == (df <= effective.SHARE_DF)
    got = effective.score_interval(p, n_eff, 0.95, df, n, share)
    assert got == pytest.approx(_inverted(p, n_eff, 0.95, df, n, w), abs=2e-6)
    plain = effective.score_interval(p, n_eff, 0.95, df, n)
    towards, away = (0, 1) if p > 0.5 else (1, 0)
    if w > 0:
        assert abs(got[towards] - 0.5) < abs(plain[towards] - 0.5)
        assert abs(got[away] - 0.5) <= abs(plain[away] - 0.5) + 1e-12
    else:
        assert got == plain


@pytest.mark.parametrize("n", [8, 16, 40])
def test_no_sample_of_n_composites_reaches_a_lower_bound_above_the_tail_point(n):
    """The rule's premise: with no more information than n independent composites (n* <= n),
    no outcome's equal-tailed lower bound exceeds r = n / (n + q^2) (nor the upper below 1 - r)."""
    from scipy.stats import t as student_t

    df = 7.0
    q = student_t.ppf(0.975, df)
    r = n / (n + q * q)
    bounds = np.array(
        [
            effective.score_interval(k / n, n_eff, 0.95, df)
            for k in range(n + 1)
            for n_eff in np.linspace(0.5, n, 40)
        ]
    )
    assert bounds[:, 0].max() == pytest.approx(r)  # reached only by n of n at n* = n
    assert bounds[:, 1].min() == pytest.approx(1 - r)


def _sizes(ia: np.ndarray, ib: np.ndarray) -> effective.ClusterSizes:
    """ClusterSizes of composites of a-subjects ``ia`` and b-subjects ``ib`` (0-based)."""
    n_a = ia.max() + 1
    totals = np.r_[np.bincount(ia), np.bincount(ib)]
    cells, k = np.unique(np.c_[ia, n_a + ib], axis=0, return_counts=True)
    a_side = np.arange(len(totals)) < n_a
    return effective.ClusterSizes.of(totals, a_side, cells[:, 0], cells[:, 1], k)


def test_cluster_variance_is_the_two_way_cluster_robust_variance():
    """The reported interval's variance and the bootstrap correction factor against statsmodels'
    two-way cluster-robust covariance (Cameron-Gelbach-Miller), computed independently."""
    import pandas as pd
    import statsmodels.api as sm
    from statsmodels.stats.sandwich_covariance import cov_cluster_2groups

    rng = np.random.default_rng(9)
    n = 900
    u = rng.normal(0, 1.2, 25)
    v = rng.normal(0, 1.2, 40)
    ia, ib = rng.integers(0, 25, n), rng.integers(0, 40, n)
    position = rng.integers(0, 2, n)
    p_a = 1 / (1 + np.exp(-(0.3 + u[ia] - v[ib] + 0.4 * (1 - 2 * position))))
    rows = {
        "a_subject": np.array([f"a{i}" for i in ia], dtype=object),
        "b_subject": np.array([f"b{i}" for i in ib], dtype=object),
        "position": position,
        "outcome": np.where(rng.random(n) < p_a, 0, 1),
    }
    stats = SufficientStats(2000).add_batch(**rows, weights=WeightCache(2000, 5))
    est = estimate_stratum(stats)

    won = (rows["outcome"] == 0).astype(float)
    first = np.where(position == 0, won, 1 - won)
    dummies = np.column_stack([position == 0, position == 1]).astype(float)
    cases = {
        "ratio": (won, np.ones((n, 1)), np.array([1.0])),
        "first_slot_rate": (first, np.ones((n, 1)), np.array([1.0])),
        "order_adjusted_ratio": (won, dummies, np.array([0.5, 0.5])),
    }
    cells = pd.Series(ia * 100 + ib).value_counts()
    h_cells = np.sum(cells.to_numpy() ** 2) / n**2
    # Cluster indicators: a-subjects, b-subjects, cells (n x clusters).
    z_a, z_b = np.eye(25)[ia], np.eye(40)[ib]
    z_c = pd.get_dummies(ia * 100 + ib).to_numpy(float)
    sizes = _sizes(ia, ib)
    for stat, (y, x, c) in cases.items():
        fit = sm.OLS(y, x).fit()
        both, cov_a, cov_b = cov_cluster_2groups(fit, ia, ib, use_correction=False)
        v_two_way = c @ both @ c  # cov_a + cov_b - cov_cells
        v_cells = c @ (cov_a + cov_b - both) @ c
        # Small-sample factor of the two-way variance: the expectation of the centred sums,
        # computed exactly as a trace, E[e'De] = tr(M'DM Sigma), over the truth a'Sigma a, with
        # Sigma the working model of the variance components (a: the statistic's influence,
        # M: the residual maker, D: subjects of both sides minus cells); the cells floor takes
        # 1 / (1 - h_cells).
        q_a, q_b = c @ cov_a @ c, c @ cov_b @ c
        parts = effective.components(q_a, q_b, v_cells, sizes, n)
        sigma = parts[0] * z_a @ z_a.T + parts[1] * z_b @ z_b.T + parts[2] * np.eye(n)
        a = x @ np.linalg.solve(x.T @ x, c)
        resid = np.eye(n) - x @ np.linalg.solve(x.T @ x, x.T)
        d = np.outer(a, a) * (z_a @ z_a.T + z_b @ z_b.T - z_c @ z_c.T)
        factor = np.trace(resid.T @ d @ resid @ sigma) / (a @ sigma @ a)
        v_cgm = max(v_two_way / factor, v_cells / (1 - h_cells))
        # Exact for the one-mean statistics; the order-adjusted ratio's influence differs a
        # little by position, which the factor's sizes (counts) do not weigh.
        rel = 0.01 if stat == "order_adjusted_ratio" else 1e-9
        assert est[f"{stat}_cluster_se"] ** 2 == pytest.approx(v_cgm, rel=rel), stat
        v_cgm = est[f"{stat}_cluster_se"] ** 2
        # The pigeonhole bootstrap counts the cells three times: V_boot = V_two_way + 2 V_cells;
        # its replicates are shrunk by sqrt(V_cgm / V_boot).
        lam = math.sqrt(v_cgm / (v_two_way + 2 * v_cells))
        assert est[f"{stat}_boot_shrink"] == pytest.approx(lam, rel=1e-9), stat
        # ... which the replicates bear out (2,000 replicates: SE of a variance ~3%).
        assert est[f"{stat}_boot_se"] ** 2 == pytest.approx(v_cgm, rel=0.12), stat
    # t degrees of freedom: each side's G - 1, G = (sum n_s)^2 / sum n_s^2, combined by
    # Satterthwaite with weights sum n_s^2.
    sides = [pd.Series(ia).value_counts().to_numpy(), pd.Series(ib).value_counts().to_numpy()]
    sq = [np.sum(c.astype(float) ** 2) for c in sides]
    dfs = [np.sum(c) ** 2 / q - 1 for c, q in zip(sides, sq, strict=True)]
    expected_df = sum(sq) ** 2 / sum(q**2 / d for q, d in zip(sq, dfs, strict=True))
    assert est["cluster_df"] == pytest.approx(expected_df, rel=1e-12)
    p, se = est["ratio"], est["ratio_cluster_se"]
    assert est["ratio_effective_n"] == pytest.approx(p * (1 - p) / se**2)
    assert est["ratio_effective_n"] < 0.5 * n  # strong subject effects: a design effect > 2


@pytest.mark.parametrize("sampling", ["regular", "popularity"])
def test_small_sample_factor_is_the_expectation_of_the_centred_sums(sampling):
    """The factor of the two-way variance against the exact expectation of the centred sums
    (a trace) under known variance components: where a few subjects carry the data it is far
    below the equal-cluster factor 1 - h (which then understates the variance), and with
    every face in as many composites it is 1 - h."""
    from cropaudit.stats.simulation import SimulationDesign, simulate_experiment

    design = SimulationDesign(
        subjects_per_group=40, pairings=400, sampling=sampling, popularity_sigma=1.0
    )
    data = simulate_experiment(design, np.random.default_rng(3), "f")
    ia = np.unique(data["a_subject"], return_inverse=True)[1]
    ib = np.unique(data["b_subject"], return_inverse=True)[1]
    n = len(ia)
    z_a, z_b = np.eye(ia.max() + 1)[ia], np.eye(ib.max() + 1)[ib]
    cell_ids = np.unique(ia * 1000 + ib, return_inverse=True)[1]
    z_c = np.eye(cell_ids.max() + 1)[cell_ids]
    sizes = _sizes(ia, ib)
    var_a, var_b, var_c = 0.04, 0.03, 0.2
    # Uncentred expectations of the three sums (effective.components inverts them exactly).
    q_a = var_a * sizes.sq_a + var_b * sizes.sq_cells + var_c * n
    q_b = var_a * sizes.sq_cells + var_b * sizes.sq_b + var_c * n
    q_c = (var_a + var_b) * sizes.sq_cells + var_c * n
    assert effective.components(q_a, q_b, q_c, sizes, n) == pytest.approx((var_a, var_b, var_c))
    sigma = var_a * z_a @ z_a.T + var_b * z_b @ z_b.T + var_c * np.eye(n)
    centre = np.eye(n) - 1.0 / n
    d = z_a @ z_a.T + z_b @ z_b.T - z_c @ z_c.T
    exact = np.trace(centre @ d @ centre @ sigma) / sigma.sum()
    got = effective.small_sample_factor(q_a, q_b, q_c, sizes, n)
    equal_clusters = 1 - (sizes.sq_a + sizes.sq_b - sizes.sq_cells) / n**2
    assert got == pytest.approx(exact, rel=1e-9)
    if sampling == "popularity":
        assert exact < 0.9 * equal_clusters
    else:
        assert got == pytest.approx(equal_clusters, rel=1e-9)
