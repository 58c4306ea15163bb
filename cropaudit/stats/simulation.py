"""Simulation study of interval coverage, using the pipeline's own estimator code.

Generative model (one experiment): groups A and B with ``subjects_per_group`` faces each. Each
a-face is paired with ``composites_per_subject / 2`` b-faces (a random regular bipartite design,
so every face appears in exactly ``composites_per_subject`` composites), and every pairing is
drawn twice, a first and b first (counterbalanced). A composite is background with probability
``background_rate``; otherwise face a survives with

    logit P(a) = baseline_logit + u_i - v_j + position_effect * (+1 if a first else -1),
    u_i, v_j ~ N(0, subject_sd^2)  (subject random effects).

Estimand and truth: the population-average survival probability of a group-A face against a
group-B face, given that exactly one survives, over the *populations* of A and B subjects (not the
50 drawn in one experiment) and the counterbalanced design,
theta = 1/2 sum_{s=+1,-1} E[expit(baseline + Z + s * position_effect)], Z = u - v ~ N(0, 2
subject_sd^2). Background is independent of faces, so it drops out of the ratio. Computed by
Gauss-Hermite quadrature; the mean estimate over experiments matches it (the plug-in ratio is
unbiased up to O(1/n)), so coverage is measured against the right number. Because the truth is a
population quantity, an interval must carry the subject-sampling variance, which is what the
naive binomial intervals leave out.

Every experiment is analysed with the corrected bootstrap (``correction``, default ``cgm``) and,
from the same replicates, the uncorrected one (``*_uncorrected`` columns), so the study shows
what the correction does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit

from cropaudit.stats.bootstrap import SufficientStats, bca_interval, percentile_interval
from cropaudit.stats.estimates import derived, estimate_stratum
from cropaudit.stats.weights import WeightCache


@dataclass(frozen=True)
class SimulationDesign:
    subjects_per_group: int = 50
    composites_per_subject: int = 20
    baseline_logit: float = 0.3
    subject_sd: float = 1.5
    position_effect: float = 0.5
    background_rate: float = 0.05


def true_ratio(design: SimulationDesign) -> float:
    """theta of the module docstring, by 80-point Gauss-Hermite quadrature."""
    nodes, w = np.polynomial.hermite_e.hermegauss(80)
    z = nodes * np.sqrt(2.0) * design.subject_sd
    w = w / w.sum()
    return float(
        0.5
        * sum(
            np.sum(w * expit(design.baseline_logit + z + s * design.position_effect))
            for s in (1.0, -1.0)
        )
    )


def simulate_experiment(design: SimulationDesign, rng: np.random.Generator, tag: str) -> dict:
    """One experiment's composites as columns (subject ids prefixed by ``tag``)."""
    n = design.subjects_per_group
    k = design.composites_per_subject // 2
    a_idx = np.tile(np.arange(n), k)
    b_idx = np.concatenate([rng.permutation(n) for _ in range(k)])
    u = rng.normal(0.0, design.subject_sd, n)
    v = rng.normal(0.0, design.subject_sd, n)
    a_idx = np.concatenate([a_idx, a_idx])
    b_idx = np.concatenate([b_idx, b_idx])
    position = np.repeat([0, 1], n * k)  # a_first, b_first
    sign = np.where(position == 0, 1.0, -1.0)
    p_a = expit(design.baseline_logit + u[a_idx] - v[b_idx] + design.position_effect * sign)
    outcome = np.where(rng.random(len(p_a)) < p_a, 0, 1)
    outcome[rng.random(len(p_a)) < design.background_rate] = 3
    ids_a = np.array([f"{tag}-a{i}" for i in range(n)], dtype=object)
    ids_b = np.array([f"{tag}-b{i}" for i in range(n)], dtype=object)
    return {
        "a_subject": ids_a[a_idx],
        "b_subject": ids_b[b_idx],
        "position": position,
        "outcome": outcome,
    }


def _uncorrected_intervals(stats: SufficientStats, estimate: float, level: float) -> dict:
    """The ratio's plain-bootstrap intervals, as ``estimate_stratum(..., "none")`` gives them
    (the same functions on the unshrunk replicates) without recomputing everything else."""
    reps = derived(stats.boot)["ratio"]
    jack = derived(stats.jackknife_cells())["ratio"]
    lo, hi = percentile_interval(reps, level)
    out = {"ratio_percentile_low": lo, "ratio_percentile_high": hi}
    out["ratio_bca_low"], out["ratio_bca_high"], _, _ = bca_interval(reps, estimate, jack, level)
    return out


def coverage_study(
    design: SimulationDesign,
    experiments: int,
    replicates: int = 500,
    level: float = 0.95,
    seed: int = 0,
    correction: str = "cgm",
) -> pd.DataFrame:
    """One row per experiment: the estimate, whether each interval covers the truth and its
    width, and the bootstrap shrink factor lambda of the ratio."""
    truth = true_ratio(design)
    rng = np.random.default_rng(seed)
    rows = []
    for e in range(experiments):
        data = simulate_experiment(design, rng, tag=f"s{seed}e{e}")
        stats = SufficientStats(replicates)
        # Fresh cache per experiment: subject ids never repeat across experiments.
        stats.add_batch(**data, weights=WeightCache(replicates, seed))
        est = estimate_stratum(stats, level, correction)
        plain = _uncorrected_intervals(stats, est["ratio"], level)
        row = {
            "experiment": e,
            "truth": truth,
            "ratio": est["ratio"],
            "shrink": est["ratio_boot_shrink"],
        }
        for method, source, name in (
            ("percentile", est, "percentile"),
            ("bca", est, "bca"),
            ("percentile", plain, "percentile_uncorrected"),
            ("bca", plain, "bca_uncorrected"),
            ("wilson", est, "wilson"),
            ("clopper_pearson", est, "clopper_pearson"),
            ("twitter", est, "twitter"),
        ):
            lo, hi = source[f"ratio_{method}_low"], source[f"ratio_{method}_high"]
            row[f"{name}_covers"] = bool(lo <= truth <= hi)
            row[f"{name}_width"] = hi - lo
        rows.append(row)
    return pd.DataFrame(rows)


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Coverage with its Monte-Carlo standard error, and mean width, per method."""
    n = len(results)
    out = []
    for col in results.columns:
        if col.endswith("_covers"):
            method = col.removesuffix("_covers")
            cov = results[col].mean()
            out.append(
                {
                    "method": method,
                    "coverage": cov,
                    "mc_se": float(np.sqrt(cov * (1 - cov) / n)),
                    "mean_width": results[f"{method}_width"].mean(),
                }
            )
    return pd.DataFrame(out)
