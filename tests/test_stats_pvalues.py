"""One test per reported interval: ``ratio_p``, ``order_adjusted_p`` and ``first_slot_p`` invert
the intervals the estimates report (p < 1 - level exactly when 1/2 is outside), tiny strata are
never significant, and multiplicity is adjusted within declared families."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pyarrow as pa
import pytest

from cropaudit.schemas.survival import PAIRS, SAME_GROUP, SAME_IMAGE
from cropaudit.stats import effective
from cropaudit.stats.bootstrap import SufficientStats
from cropaudit.stats.run_estimates import run_estimates
from cropaudit.stats.simulation import (
    DESIGNS,
    HELD_OUT,
    NEAR_BAND,
    PoissonWeights,
    simulate_experiment,
)
from cropaudit.stats.stratum import BOOTSTRAPPED, PVALUES, estimate_stratum
from cropaudit.stats.synthetic_tables import synthetic_survival
from cropaudit.stats.tests_multiple import holm
from cropaudit.stats.weights import WeightCache

LEVELS = (0.9, 0.95, 0.99)


def _agrees(p: float, lo: float, hi: float, level: float, null: float = 0.5) -> bool:
    """p < 1 - level iff ``null`` is outside [lo, hi] (a p-value within rounding of the level
    decides nothing either way)."""
    alpha = 1.0 - level
    if abs(p - alpha) < 1e-9:
        return True
    return (p < alpha) == (not lo <= null <= hi)


def test_pvalue_inverts_the_interval_on_a_grid_of_strata():
    rng = np.random.default_rng(22)
    checked = 0
    for _ in range(3000):
        n = int(rng.integers(1, 400))
        p = float(rng.integers(0, n + 1) / n)
        n_eff = float(n * rng.uniform(0.05, 1.5))
        df = float(rng.choice([rng.uniform(0.2, 60.0), math.inf, math.nan]))
        share = float(rng.choice([0.0, rng.uniform(0.0, 1.0)]))  # the subjects' part of V
        for level in LEVELS:
            lo, hi = effective.score_interval(p, n_eff, level, df, n, share)
            pv = effective.score_pvalue(p, n_eff, df, n, share=share)
            assert 0.0 <= pv <= 1.0
            assert _agrees(pv, lo, hi, level), (p, n_eff, df, n, share, level, pv, lo, hi)
            checked += 1
    assert checked == 9000


@pytest.mark.parametrize("share", [0.0, 0.9])
@pytest.mark.parametrize("null", [0.15, 0.8, 0.93])
@pytest.mark.parametrize(
    ("p", "n_eff", "df", "n"),
    [
        (14 / 15, 12.0, 9.0, 15),
        (0.6, 9.0, 8.0, 15),
        (1 / 24, 20.0, 12.0, 24),
        (0.7, 60.0, 30.0, 80),
    ],
)
def test_pvalue_against_other_nulls_inverts_the_interval_with_its_tail_rule(
    p, n_eff, df, n, null, share
):
    """Away from 1/2 the tail rule can decide (a one-sided test beyond r): the p-value is still
    the level at which ``null`` leaves the interval."""
    pv = effective.score_pvalue(p, n_eff, df, n, null=null, share=share)
    for level in np.linspace(0.5, 0.995, 100):
        lo, hi = effective.score_interval(p, n_eff, float(level), df, n, share)
        assert _agrees(pv, lo, hi, float(level), null), (level, pv, lo, hi)


def _designs():
    return {**DESIGNS, **HELD_OUT, **NEAR_BAND}


@pytest.mark.parametrize("name", sorted(_designs()))
def test_every_row_of_simulated_experiments_agrees_with_its_intervals(name):
    design = _designs()[name]
    rng = np.random.default_rng(7)
    weights = PoissonWeights(20, np.random.default_rng(8))
    for e in range(12):
        stats = SufficientStats(20).add_batch(
            **simulate_experiment(design, rng, f"e{e}"), weights=weights
        )
        for level in LEVELS:
            est = estimate_stratum(stats, level)
            for stat in BOOTSTRAPPED:
                p, lo, hi = est[PVALUES[stat]], est[f"{stat}_low"], est[f"{stat}_high"]
                assert _agrees(p, lo, hi, level), (name, e, stat, level, p, lo, hi)


def _two(a_subjects, b_subjects, positions, outcomes) -> dict:
    return {
        "a_subject": np.array(a_subjects, dtype=object),
        "b_subject": np.array(b_subjects, dtype=object),
        "position": np.array(positions),
        "outcome": np.array(outcomes),
    }


def test_a_two_composite_comparison_is_never_significant():
    """Every way two decisive composites can fall (same or different faces, either order,
    either winner): no p-value below 0.05 and 1/2 inside every interval."""
    seen = 0
    for a_ids, b_ids in itertools.product(
        (["a1", "a1"], ["a1", "a2"]), (["b1", "b1"], ["b1", "b2"])
    ):
        for positions in ([0, 1], [0, 0], [1, 1]):
            for outcomes in itertools.product((0, 1), repeat=2):
                rows = _two(a_ids, b_ids, positions, list(outcomes))
                stats = SufficientStats(50).add_batch(**rows, weights=WeightCache(50, 1))
                est = estimate_stratum(stats)
                for stat in BOOTSTRAPPED:
                    p = est[PVALUES[stat]]
                    if math.isfinite(est[stat]):
                        assert p >= 0.05, (a_ids, b_ids, positions, outcomes, stat, p)
                        assert est[f"{stat}_low"] <= 0.5 <= est[f"{stat}_high"]
                seen += 1
    assert seen == 48


def test_bootstrap_pvalue_never_below_what_the_replicates_resolve():
    """16 of 16 won by a: every replicate equals the estimate, the bootstrap p is at its floor
    2 / (B + 1) (>= 1 / (B + 1)), while the reported test sees the few faces behind them."""
    rows = _two([f"a{i % 3}" for i in range(16)], [f"b{i % 4}" for i in range(16)],
                [i % 2 for i in range(16)], [0] * 16)  # fmt: skip
    for replicates in (20, 199):
        est = estimate_stratum(SufficientStats(replicates).add_batch(**rows,
                               weights=WeightCache(replicates, 3)))  # fmt: skip
        assert est["p_bootstrap"] >= 1.0 / (replicates + 1)
        assert est["p_first_slot_bootstrap"] >= 1.0 / (replicates + 1)
        assert est["ratio_low"] < 0.5 or est["ratio_p"] < 0.05


def _run_table() -> pa.Table:
    parts = [
        synthetic_survival(1200, groups=("A", "B", "C"), seed=1, baseline_logit=0.6),
        synthetic_survival(300, groups=("A", "B", "C"), seed=2, design=SAME_GROUP),
        synthetic_survival(300, groups=("A", "B", "C"), seed=3, design=SAME_IMAGE),
        synthetic_survival(600, groups=("A", "B", "C"), seed=4, model_name="other"),
    ]
    return pa.concat_tables(parts)


def test_families_separate_controls_and_adjust_within_each():
    est = run_estimates(_run_table(), replicates=20, model_max=0)  # no GLMM: p-values only
    assert est["p_family"].notna().all()
    for family, rows in est.groupby("p_family"):
        # One family: one model, variant, criterion, design and kind of comparison.
        keys = rows[["model_name", "variant", "criterion", "design", "comparison"]]
        assert len(keys.drop_duplicates()) == 1, family
        for test in ("ratio_p", "order_adjusted_p", "first_slot_p", "p_bootstrap"):
            want = holm(rows[test].to_numpy())
            assert np.allclose(rows[f"{test}_holm"].to_numpy(), want, equal_nan=True)
            assert (rows[f"{test}_bh"] <= rows[f"{test}_holm"] + 1e-12).all()
            assert (rows[f"{test}_holm"] >= rows[test] - 1e-12).all()
    controls = est[est["design"].isin([SAME_GROUP, SAME_IMAGE])]
    pairs = est[est["design"] == PAIRS]
    assert len(controls) and len(pairs)
    assert not set(controls["p_family"]) & set(pairs["p_family"])
    # Three groups: pairs and group-vs-rest are families of their own too.
    assert {"pair", "group_vs_rest"} == set(pairs["comparison"])
    kinds = pairs.groupby("p_family")["comparison"].nunique()
    assert (kinds == 1).all()
    # A family is adjusted alone: a family's adjusted p does not change when rows of other
    # families are left out.
    one = est[est["p_family"] == pairs["p_family"].iloc[0]]
    alone = run_estimates(_run_table().filter(pa.compute.equal(_run_table()["design"], PAIRS)),
                          replicates=20, model_max=0)  # fmt: skip
    alone = alone[alone["p_family"] == one["p_family"].iloc[0]]
    assert np.allclose(alone["ratio_p_holm"].to_numpy(), one["ratio_p_holm"].to_numpy())


def test_identical_criteria_need_identical_winners_row_for_row():
    """Two crop criteria with the same winners in every row are named together; one whose wins
    and losses are the same counts but on other composites is not."""
    table = synthetic_survival(400, aspect_ratios=(0.56, 1.0, 2.0), seed=5, tie_rate=0.0,
                               background_rate=0.0)  # fmt: skip
    crops = table["crops"].to_pylist()
    point = table["point_winner"].to_pylist()
    for i, row in enumerate(crops):
        row[0]["winner"] = point[i]  # crop_0.56 = point, row for row
        # crop_2.00: point's winners, swapped between two composites that differ: same
        # counts, other composites.
        row[2]["winner"] = point[i]
    first_a = point.index("a")
    first_b = point.index("b")
    crops[first_a][2]["winner"], crops[first_b][2]["winner"] = "b", "a"
    index = table.schema.get_field_index("crops")
    table = table.set_column(index, table.schema.field("crops"),
                             pa.array(crops, table.schema.field("crops").type))  # fmt: skip
    est = run_estimates(table, replicates=10)
    same = {r.criterion: list(r.identical_criteria) for r in est.itertuples()}
    assert same["point"] == ["crop_0.56", "point"]
    assert same["crop_0.56"] == ["crop_0.56", "point"]
    assert same["crop_2.00"] == ["crop_2.00"]
    assert same["crop_1.00"] == ["crop_1.00"]
    # The counts of crop_2.00 equal the point's: counts alone would have called them one.
    by = est.set_index("criterion")
    assert by.loc["crop_2.00", "wins_a"] == by.loc["point", "wins_a"]
