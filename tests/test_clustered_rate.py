"""Subject-clustered rates of single images and their differences between groups
(cropaudit.stats.clustered_rate, cropaudit.stats.gaze), and the fast coverage checks of the
single-image and agreement studies (cropaudit.stats.simulation_single)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cropaudit.stats.clustered_rate import (
    GROUP_VS_REST,
    PAIR,
    REST,
    clustered_rate,
    difference_df,
    difference_interval,
    rate_difference,
    rate_from_totals,
)
from cropaudit.stats.gaze import FACE_RATE_DIFFERENCE_COLUMNS, face_rate_differences, face_rates
from cropaudit.stats.intervals import wilson
from cropaudit.stats.simulation import summarise
from cropaudit.stats.simulation_single import (
    AGREEMENT_DESIGNS,
    SINGLE_DESIGNS,
    agreement_coverage_study,
    single_coverage_study,
)


def test_clustered_rate_widens_with_correlated_subjects_and_never_collapses():
    subjects = np.repeat([f"s{i}" for i in range(10)], 6)
    # every subject all-or-nothing: 60 images but about 10 independent draws
    clumped = np.repeat([True] * 6 + [False] * 4, 6)
    c = clustered_rate(clumped, subjects)
    assert c.share == pytest.approx(0.6) and (c.n, c.subjects) == (60, 10)
    plain = wilson(36, 60)
    assert c.high - c.low > 1.8 * (plain[1] - plain[0])
    assert c.effective_n == pytest.approx(9)  # G - 1: ten all-or-nothing people
    # no subject effect (independent images, 100 people): about n effective images and about
    # Wilson's width (a t quantile on 99 degrees of freedom)
    people = np.repeat([f"p{i}" for i in range(100)], 6)
    free = [clustered_rate(np.random.default_rng(i).random(600) < 0.6, people) for i in range(20)]
    assert 450 < np.mean([r.effective_n for r in free]) < 750
    widths = np.mean([r.high - r.low for r in free])
    assert widths == pytest.approx(np.subtract(*wilson(360, 600)[::-1]), rel=0.1)
    for hits in (np.zeros(60, bool), np.ones(60, bool)):  # 0 or 60 of 60: honest, wide
        r = clustered_rate(hits, subjects)
        assert r.high - r.low > 0.2 and r.effective_n == pytest.approx(10)
        assert r.low <= r.share <= r.high
    assert np.isnan(rate_from_totals(np.array([]), np.array([])).share)


def test_difference_p_is_the_test_its_interval_inverts():
    """On many random tables: p < 1 - level exactly when 0 lies outside the interval, the
    interval contains the estimate, and has positive width."""
    rng = np.random.default_rng(3)
    outside = 0
    for _ in range(60):
        groups = []
        for _side in range(2):
            n_s = rng.integers(1, 8, int(rng.integers(3, 25))).astype(float)
            p = rng.uniform(0.02, 0.98)
            groups.append((n_s, rng.binomial(n_s.astype(int), p).astype(float)))
        d = rate_difference(*groups, level=0.9)
        assert d.low < d.estimate < d.high or d.low <= d.estimate <= d.high < 1
        assert d.high > d.low
        excluded = d.low > 0 or d.high < 0
        assert (d.p < 0.1) == excluded, (d.p, d.low, d.high)
        outside += excluded
    assert 5 < outside < 55  # both kinds of table were checked
    same = (np.full(5, 4.0), np.full(5, 2.0))
    assert rate_difference(same, same).p == 1.0


def single_frame(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    """A minimal single-image table of (group, subject, outcome) rows, one 1:1 crop each that
    keeps what the point landed on."""
    return pd.DataFrame(
        {
            "group": [r[0] for r in rows],
            "subject_id": [r[1] for r in rows],
            "point_on": [r[2] for r in rows],
            "crops": [[{"aspect_ratio": 1.0, "kept": r[2]}] for r in rows],
            "model_name": "m",
        }
    )


def test_face_rate_differences_pairs_rest_and_families():
    rng = np.random.default_rng(0)
    rows = []
    for group, rate in (("f", 0.3), ("m", 0.8), ("x", 0.55)):
        for s in range(15):
            for _ in range(3):
                on = "face" if rng.random() < rate else "body"
                rows.append((group, f"{group}{s}", on))
    table = single_frame(rows)
    rates = face_rates(table).set_index("group")
    assert rates.loc["f", "subjects"] == 15 and rates.loc["f", "n"] == 45
    assert (rates.ci_low < rates.face_share).all() and (rates.face_share < rates.ci_high).all()
    assert (rates.body_low < rates.body_share).all()
    diffs = face_rate_differences(table)
    assert list(diffs.columns) == FACE_RATE_DIFFERENCE_COLUMNS
    pairs = diffs[diffs.comparison == PAIR]
    assert list(zip(pairs.group_a, pairs.group_b)) == [("f", "m"), ("f", "x"), ("m", "x")]
    rest = diffs[diffs.comparison == GROUP_VS_REST]
    assert list(rest.group_a) == ["f", "m", "x"] and set(rest.group_b) == {REST}
    assert (rest.n_b == 90).all()
    fm = pairs.iloc[0]
    assert fm.difference == pytest.approx(
        rates.loc["f", "face_share"] - rates.loc["m", "face_share"]
    )
    assert fm.difference_high < 0 and fm.p < 0.05  # 0.3 vs 0.8: a clear difference
    assert set(diffs.p_family) == {"m|base|point|single|pair", "m|base|point|single|group_vs_rest"}
    assert (diffs.p_holm >= diffs.p - 1e-12).all() and (diffs.p_bh >= diffs.p - 1e-12).all()
    # Holm within the family of three pairs, not across all six rows
    smallest = pairs.p.min()
    assert pairs.set_index("p").loc[smallest, "p_holm"] == pytest.approx(min(3 * smallest, 1))
    two = face_rate_differences(table[table.group != "x"])
    assert list(two.comparison) == [PAIR]  # with two groups, "vs rest" would repeat the pair
    crops = face_rate_differences(table, criterion="crop_1.00")
    assert crops.difference.tolist() == diffs.difference.tolist()
    assert face_rate_differences(table.iloc[:0]).empty


def test_single_image_coverage_fast_band_and_unclustered_fails():
    """Eight images per person with a strong subject effect: the clustered intervals cover near
    0.95; the plain Wilson ones (images independent) fall far below."""
    results = single_coverage_study(SINGLE_DESIGNS["images_8_subject_sd2"], 1000, seed=41)
    summary = summarise(results).set_index("method")
    for method in ("rate_a", "rate_b", "difference"):
        assert 0.925 <= summary.loc[method, "coverage"] <= 0.975, method  # MC SE 0.007
        assert summary.loc[method, "zero_width"] == 0
        assert summary.loc[f"{method}_unclustered", "coverage"] < 0.85, method


def test_agreement_coverage_fast_band():
    """Two croppers on the same composites, agreement near 1: the reported interval covers in
    a loose band (300 experiments); the naive Wilson is narrower."""
    results = agreement_coverage_study(AGREEMENT_DESIGNS["agreement_near_1"], 300, seed=43)
    assert results.truth.iloc[0] > 0.97
    summary = summarise(results).set_index("method")
    assert 0.92 <= summary.loc["reported", "coverage"] <= 0.985
    assert summary.loc["reported", "zero_width"] == 0
    assert summary.loc["reported", "mean_width"] > summary.loc["wilson", "mean_width"]


def test_difference_interval_is_newcombe_from_the_two_rates():
    a = rate_from_totals(np.full(20, 3.0), np.full(20, 2.0))
    b = rate_from_totals(np.full(20, 3.0), np.full(20, 1.0))
    lo, hi = difference_interval(a, b)
    d = a.share - b.share
    assert lo == pytest.approx(d - np.hypot(a.share - a.low, b.high - b.share))
    assert hi == pytest.approx(d + np.hypot(a.high - a.share, b.share - b.low))


def test_difference_uses_welch_df_of_the_two_sides():
    """The difference's intervals are on the Welch-Satterthwaite combination of the sides'
    G - 1: 2 (G - 1) for equal sides, near the small side's where one side is small, and the
    reported difference is Newcombe's interval from the rates on that df."""
    assert difference_df(np.full(12, 2.0), np.full(12, 2.0)) == pytest.approx(22.0)
    lopsided = difference_df(np.full(10, 3.0), np.full(80, 3.0))
    assert 9.0 < lopsided < 12.0
    a_totals, b_totals = (np.full(12, 2.0), np.full(12, 1.0)), (np.full(12, 2.0), np.full(12, 2.0))
    d = rate_difference(a_totals, b_totals)
    on_df = [rate_from_totals(*t, df=22.0) for t in (a_totals, b_totals)]
    assert (d.low, d.high) == pytest.approx(difference_interval(*on_df))
    own = difference_interval(d.a, d.b)  # each rate on its own G - 1: wider
    assert own[0] < d.low and d.high < own[1]
    assert d.a.df == pytest.approx(11.0)  # the reported rates keep their own df
