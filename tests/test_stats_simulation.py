"""Fast coverage study: the reported interval (Wilson on the design-effect-adjusted effective n)
covers near nominal with no zero-width interval in a small unbalanced and a tiny design, where
the naive binomial intervals fail (the full study over every design, 1,000 experiments each,
is benchmarks/simulate_coverage.py; the variance itself is checked exactly against statsmodels
in test_stats_units.py)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.special import ndtri

from cropaudit.stats import effective
from cropaudit.stats.simulation import (
    DESIGNS,
    NEAR_BAND,
    SimulationDesign,
    coverage_study,
    simulate_experiment,
    summarise,
    true_ratio,
    truths,
)


def test_true_ratio_is_parity_without_group_effect():
    assert true_ratio(SimulationDesign(baseline_logit=0.0)) == 0.5
    assert true_ratio(SimulationDesign(baseline_logit=0.3)) > 0.5
    # Heavy tails go through the Monte-Carlo integral: still parity by symmetry (to its SE).
    assert true_ratio(SimulationDesign(baseline_logit=0.0, subject_tails="t3")) == pytest.approx(
        0.5, abs=1e-3
    )
    assert truths(DESIGNS["ratio_0.85"])["ratio"] == pytest.approx(0.85, abs=0.01)


def test_designs_have_the_documented_shape():
    rng = np.random.default_rng(0)
    data = simulate_experiment(SimulationDesign(), rng, "t")
    faces, counts = np.unique(np.r_[data["a_subject"], data["b_subject"]], return_counts=True)
    assert len(faces) == 100 and set(counts) == {20}  # each face in 20 composites
    assert (data["position"] == 0).sum() == (data["position"] == 1).sum()  # counterbalanced
    tiny = simulate_experiment(DESIGNS["tiny_16"], rng, "t")
    assert len(tiny["outcome"]) == 16
    unbalanced = simulate_experiment(DESIGNS["unbalanced_10x60"], rng, "t")
    assert len(set(unbalanced["a_subject"])) == 10 and len(set(unbalanced["b_subject"])) == 60
    popular = simulate_experiment(DESIGNS["popular_few"], rng, "t")
    _, per_face = np.unique(popular["a_subject"], return_counts=True)
    # A few faces carry the data: the effective number of a-faces, n^2 / sum n_s^2, is a
    # fraction of the faces drawn.
    assert per_face.sum() ** 2 / np.sum(per_face**2) < 0.4 * len(per_face)


#: Bands of the fast study (400 experiments: Monte-Carlo SE ~1 point; 1,000 for the tiny pair),
#: about the full study's coverage (benchmarks/simulate_coverage.py) +- 2 SE. Where a few
#: subjects carry the data the full study has 0.957 (2,000 experiments); the band there rejects
#: the two quantiles the study ruled out, a t on the pooled effective subjects (~0.99) and the
#: normal one (~0.937) (test_wrong_quantiles_fall_out_of_band); the variance's small-sample
#: factor is checked exactly in test_stats_units.py. Tiny pairs at 0.85 cannot be missed from
#: above (no 16 composites exclude 0.85); the tail rule of ``effective.score_interval`` brings
#: them from ~0.98 into the band, and without it they fall out (test_tail_rule_is_needed).
BANDS = {
    "unbalanced_10x60": (0.925, 0.975),
    "popular_few": (0.945, 0.98),
    "tiny_16_ratio_0.85": (0.935, 0.975),
}
EXPERIMENTS = {"tiny_16_ratio_0.85": 1000}


def _reported_coverage(name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    results = coverage_study(DESIGNS[name], EXPERIMENTS.get(name, 400), replicates=2, seed=3)
    return results, summarise(results).set_index("method")


@pytest.mark.parametrize(("name", "band"), list(BANDS.items()))
def test_reported_interval_covers_in_band_with_no_zero_width(name, band):
    results, summary = _reported_coverage(name)
    cov = summary["coverage"]
    assert band[0] <= cov["reported"] <= band[1], cov["reported"]
    assert summary.loc["reported", "zero_width"] == 0
    assert summary.loc["order_adjusted_ratio_reported", "zero_width"] == 0
    assert summary.loc["first_slot_rate_reported", "zero_width"] == 0
    assert (results["reported_width"] > 0).all()
    assert max(cov["wilson"], cov["twitter"]) < cov["reported"] - 0.05  # naive: too narrow


def test_tail_rule_is_needed(monkeypatch):
    """Equal-tailed (the tail rule off), the tiny pair at 0.85 over-covers out of its band."""
    plain = effective.score_interval
    monkeypatch.setattr(
        effective,
        "score_interval",
        lambda p, n_eff, level, df, n=math.inf, share=0.0: plain(p, n_eff, level, df, share=share),
    )
    _, summary = _reported_coverage("tiny_16_ratio_0.85")
    coverage = summary.loc["reported", "coverage"]
    assert coverage > BANDS["tiny_16_ratio_0.85"][1], coverage


def test_subject_share_balances_the_misses_of_a_high_ratio_with_few_faces(monkeypatch):
    """A ratio near 0.8 with subject sd 2.5 and 12 faces a side (full study 0.946-0.958 with the
    subject share, 0.926-0.945 without): without it the truth falls below the interval about
    twice as often as nominal (the variance at truths nearer 1/2 is under-stated); with it the
    reported interval is in band and those misses about nominal."""

    def study() -> tuple[float, float]:
        results = coverage_study(NEAR_BAND["ratio_0.8_sd2.5_12"], 1000, replicates=2, seed=3)
        coverage = summarise(results).set_index("method").loc["reported", "coverage"]
        return coverage, results["reported_truth_below"].mean()

    coverage, below = study()
    assert 0.93 <= coverage <= 0.97 and below < 0.03, (coverage, below)
    monkeypatch.setattr(effective, "subject_weight", lambda share, df: 0.0)
    coverage, below = study()
    assert below > 0.04, (coverage, below)


@pytest.mark.parametrize(
    ("name", "wrong"),
    [
        # t on the pooled count G* = (sum n_s^2)^2 / sum n_s^4 (the first method): too wide.
        ("cluster_df", lambda a, b: effective.effective_subjects(np.r_[a, b]) - 1.0),
        # Normal quantile: too narrow with few effective subjects. (The quantile itself, not
        # df = inf, which would also give the subject share its full weight.)
        ("_quantile", lambda upper, df: float(ndtri(upper))),
    ],
    ids=["pooled_count_df", "normal"],
)
def test_wrong_quantiles_fall_out_of_band(monkeypatch, name, wrong):
    """The band of the design where few subjects carry the data rejects the two quantiles the
    simulation study ruled out, so the fast test can tell a wrong interval from the right one."""
    monkeypatch.setattr(effective, name, wrong)
    results = coverage_study(DESIGNS["popular_few"], 400, replicates=2, seed=3)
    coverage = summarise(results).set_index("method").loc["reported", "coverage"]
    low, high = BANDS["popular_few"]
    assert not low <= coverage <= high, coverage
