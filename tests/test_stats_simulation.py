"""Fast coverage study: the subject-clustered bootstrap covers near nominal, the naive interval
does not (the full study is benchmarks/simulate_coverage.py)."""

from __future__ import annotations

import math

from cropaudit.stats.simulation import SimulationDesign, coverage_study, summarise, true_ratio


def test_true_ratio_is_parity_without_group_effect():
    assert true_ratio(SimulationDesign(baseline_logit=0.0)) == 0.5
    assert true_ratio(SimulationDesign(baseline_logit=0.3)) > 0.5


def test_bootstrap_coverage_near_nominal_and_naive_undercovers():
    experiments = 250
    results = coverage_study(SimulationDesign(), experiments, replicates=300, seed=11)
    cov = summarise(results).set_index("method")["coverage"]
    # 95% nominal; Monte-Carlo SE at 250 experiments ~ 1.4 points: allow ~2.5 SE either side.
    band = 2.5 * math.sqrt(0.95 * 0.05 / experiments)
    assert 0.95 - band - 0.01 <= cov["percentile"] <= 0.97 + band
    assert 0.95 - band - 0.01 <= cov["bca"] <= 0.97 + band
    assert cov["wilson"] < 0.80 and cov["twitter"] < 0.80
