"""The crossed random-effects logistic cross-check: it recovers a simulated design's subject
variance and population-averaged ratio, rebuilds composites exactly from the accumulator, and
says why it was not fitted."""

from __future__ import annotations

import numpy as np
import pytest

from cropaudit.stats.bootstrap import SufficientStats
from cropaudit.stats.mixed import model_check, population_ratio
from cropaudit.stats.simulation import PoissonWeights, SimulationDesign, simulate_experiment, truths
from cropaudit.stats.stratum import estimate_stratum


def _stats(design, seed):
    rng = np.random.default_rng(seed)
    data = simulate_experiment(design, rng, f"m{seed}")
    stats = SufficientStats(20).add_batch(**data, weights=PoissonWeights(20, rng))
    return data, stats, estimate_stratum(stats)


def test_population_ratio_is_parity_at_zero_and_shrinks_towards_it():
    assert population_ratio(0.0, 0.7, 1.3) == pytest.approx(0.5)
    assert 0.5 < population_ratio(1.0, 0.0, 2.0) < population_ratio(1.0, 0.0, 0.0)


def test_composites_rebuilt_from_the_accumulator():
    data, stats, est = _stats(SimulationDesign(subjects_per_group=12, pairings=60), 1)
    a, b, a_first, a_won = stats.composites()
    assert len(a) == est["decisive"] and int(a_won.sum()) == est["wins_a"]
    names = np.array(sorted(stats.subject_index))  # subjects come as ranks in id order
    assert set(names[a]) <= set(data["a_subject"]) and set(names[b]) <= set(data["b_subject"])
    decisive = data["outcome"] < 2
    assert int(a_first.sum()) == int((data["position"][decisive] == 0).sum())


def test_model_recovers_subject_variance_and_agrees_with_the_ratio():
    design = SimulationDesign(subjects_per_group=30, pairings=120, subject_sd=1.2)
    _, stats, est = _stats(design, 2)
    out = model_check(stats, est, 0.95, max_composites=1000)
    assert out["model_status"] == "fitted"
    assert 0.6 < out["model_sd_a"] < 2.0 and 0.6 < out["model_sd_b"] < 2.0
    assert out["model_low"] < out["model_ratio"] < out["model_high"]
    assert abs(out["model_ratio"] - est["ratio"]) < 0.03
    assert abs(out["model_ratio"] - truths(design)["ratio"]) < 0.1
    assert out["model_disagrees"] is False


def test_model_fit_independent_of_row_order():
    data, _, _ = _stats(SimulationDesign(subjects_per_group=8, pairings=30), 4)
    fits = []
    for order in (np.arange(60), np.random.default_rng(1).permutation(60)):
        rows = {k: v[order] for k, v in data.items()}
        stats = SufficientStats(5).add_batch(
            **rows, weights=PoissonWeights(5, np.random.default_rng(0))
        )
        fits.append(model_check(stats, estimate_stratum(stats), 0.95))
    assert fits[0]["model_status"] == "fitted" and fits[0] == fits[1]


def test_model_skips_say_why():
    _, stats, est = _stats(SimulationDesign(subjects_per_group=30, pairings=120), 3)
    out = model_check(stats, est, 0.95, max_composites=100)
    assert out["model_status"].startswith("skipped:") and "> 100" in out["model_status"]
    assert out["model_ratio"] is None and out["model_disagrees"] is False
    one_way = SufficientStats(5).add_batch(
        np.array(["a1", "a2"] * 8, dtype=object),
        np.array(["b1", "b2", "b3", "b4"] * 4, dtype=object),
        np.arange(16) % 2,
        np.zeros(16, dtype=int),
        PoissonWeights(5, np.random.default_rng(0)),
    )
    out = model_check(one_way, estimate_stratum(one_way), 0.95)
    assert "one way" in out["model_status"]
    within = SufficientStats(5).add_batch(
        np.array(["s1", "s2", "s3", "s4"] * 4, dtype=object),
        np.array(["s2", "s3", "s4", "s1"] * 4, dtype=object),
        np.arange(16) % 2,
        np.arange(16) % 2,
        PoissonWeights(5, np.random.default_rng(0)),
    )
    out = model_check(within, estimate_stratum(within), 0.95)
    assert "sides not identified" in out["model_status"]
