"""Fast coverage study: the corrected subject-clustered bootstrap covers near nominal, the plain
pigeonhole bootstrap over-covers and the naive binomial intervals under-cover (the full study,
>= 1,000 experiments, is benchmarks/simulate_coverage.py)."""

from __future__ import annotations

import numpy as np

from cropaudit.stats.simulation import (
    SimulationDesign,
    coverage_study,
    simulate_experiment,
    summarise,
    true_ratio,
)


def test_true_ratio_is_parity_without_group_effect():
    assert true_ratio(SimulationDesign(baseline_logit=0.0)) == 0.5
    assert true_ratio(SimulationDesign(baseline_logit=0.3)) > 0.5


def test_design_matches_the_acceptance_setting():
    data = simulate_experiment(SimulationDesign(), np.random.default_rng(0), "t")
    faces, counts = np.unique(np.r_[data["a_subject"], data["b_subject"]], return_counts=True)
    assert len(faces) == 100 and set(counts) == {20}  # each face in 20 composites
    assert (data["position"] == 0).sum() == (data["position"] == 1).sum()  # counterbalanced


def test_bootstrap_coverage_near_nominal_and_naive_undercovers():
    experiments = 500
    results = coverage_study(SimulationDesign(), experiments, replicates=200, seed=11)
    summary = summarise(results).set_index("method")
    cov = summary["coverage"]
    # The acceptance band 93-97% is ~ +-2 Monte-Carlo SE (sqrt(.95 * .05 / 500) = 0.97 points):
    # nominal coverage passes it, the uncorrected bootstrap (0.98 in the full study) does not.
    for method in ("percentile", "bca"):
        assert 0.93 <= cov[method] <= 0.97, (method, cov[method])
        assert cov[f"{method}_uncorrected"] > cov[method]
    assert max(cov["wilson"], cov["clopper_pearson"], cov["twitter"]) < 0.75
    # The correction only rescales the replicates: widths shrink by lambda (~0.85 here).
    shrink = results["shrink"].mean()
    assert 0.75 < shrink < 0.95
    widths = summary["mean_width"]
    assert abs(widths["percentile"] / widths["percentile_uncorrected"] - shrink) < 0.02
