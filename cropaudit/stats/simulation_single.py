"""Simulation study of the single-image rates, their differences and cropper agreement.

Single images (:class:`SingleDesign`). Two groups of people (``subjects_a``, ``subjects_b``);
subject s has m_s images, all ``images_per_subject`` or, with ``popularity_sigma``, 1 plus a
Poisson draw of mean ``images_per_subject`` - 1 times a lognormal(0, sigma) weight normalised to
mean 1 (a few people with many photos). Image i of subject s keeps the face with probability

    logit P = logit(rate of the group) + u_s,   u_s ~ N(0, subject_sd^2),

so a subject's images are correlated. The estimand is the population share of images on the
face, E[expit(logit(rate) + u)] (image counts are independent of u, so the image-weighted share
estimates it), by Gauss-Hermite quadrature; the difference is a's minus b's. Every experiment is
analysed with :mod:`cropaudit.stats.clustered_rate` (the pipeline's code) and, for comparison,
the plain Wilson interval of each rate and Newcombe's difference interval from the two plain
Wilson intervals (``*_unclustered``), which treat images as independent.

Cropper agreement (:class:`AgreementDesign`): two croppers decide on the same pair composites.
Composite c (a-subject i, b-subject j, a counterbalanced position) has a propensity
pi_c = expit(sharpness * (u_i - v_j + e_c)), u, v ~ N(0, subject_sd^2), e ~ N(0, 1), and each
cropper keeps face a with probability pi_c independently of the other: they agree with
probability pi_c^2 + (1 - pi_c)^2, near 1/2 when the composite is a toss-up (small sharpness)
and near 1 when subjects and composite settle it (large). Truth by a seeded Monte-Carlo integral
(2^22 draws). Analysed with :func:`cropaudit.stats.agreement.agreement_estimate` (the stage's
code): the reported interval, and the naive Wilson beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from cropaudit.stats.agreement import agreement_estimate
from cropaudit.stats.clustered_rate import (
    Rate,
    difference_interval,
    difference_limits,
    rate_from_totals,
)
from cropaudit.stats.intervals import reported_interval, wilson
from cropaudit.stats.simulation import PoissonWeights, _draw, _record


@dataclass(frozen=True)
class SingleDesign:
    """Two groups of people with single images (module docstring)."""

    subjects_a: int = 40
    subjects_b: int = 40
    images_per_subject: int = 4
    rate_a: float = 0.6
    rate_b: float = 0.7
    subject_sd: float = 1.0
    popularity_sigma: float = 0.0


def true_rate(rate: float, subject_sd: float) -> float:
    """E[expit(logit(rate) + u)], u ~ N(0, subject_sd^2)."""
    nodes, w = np.polynomial.hermite_e.hermegauss(80)
    return float(np.sum(w / w.sum() * expit(logit(rate) + nodes * subject_sd)))


def single_truths(design: SingleDesign) -> dict[str, float]:
    a = true_rate(design.rate_a, design.subject_sd)
    b = true_rate(design.rate_b, design.subject_sd)
    return {"rate_a": a, "rate_b": b, "difference": a - b}


def _image_counts(design: SingleDesign, rng: np.random.Generator, n: int) -> np.ndarray:
    m = design.images_per_subject
    if design.popularity_sigma <= 0:
        return np.full(n, m, dtype=float)
    weight = rng.lognormal(0.0, design.popularity_sigma, n)
    return 1.0 + rng.poisson((m - 1) * weight / weight.mean())


def simulate_group(
    design: SingleDesign, rng: np.random.Generator, subjects: int, rate: float
) -> tuple[np.ndarray, np.ndarray]:
    """One group's subjects: images n_s and face hits k_s."""
    n_s = _image_counts(design, rng, subjects)
    p_s = expit(logit(rate) + rng.normal(0.0, design.subject_sd, subjects))
    return n_s, rng.binomial(n_s.astype(np.int64), p_s).astype(float)


def _plain(n_s: np.ndarray, k_s: np.ndarray, level: float) -> Rate:
    """The plain Wilson rate (images independent), as a :class:`Rate`."""
    n, k = int(n_s.sum()), int(k_s.sum())
    lo, hi = wilson(k, n, level)
    return Rate(k, n, len(n_s), k / n, lo, hi, float(n), np.inf)


def single_coverage_study(
    design: SingleDesign, experiments: int, level: float = 0.95, seed: int = 0
) -> pd.DataFrame:
    """One row per experiment: both rates and the difference, whether each interval
    (clustered, and ``*_unclustered``) covers its truth, and its width."""
    truth = single_truths(design)
    rng = np.random.default_rng(seed)
    rows = []
    for e in range(experiments):
        a = simulate_group(design, rng, design.subjects_a, design.rate_a)
        b = simulate_group(design, rng, design.subjects_b, design.rate_b)
        row = {"experiment": e, "images": a[0].sum() + b[0].sum()}
        for suffix, rate in (("", rate_from_totals), ("_unclustered", _plain)):
            ra, rb = rate(*a, level=level), rate(*b, level=level)
            _record(row, f"rate_a{suffix}", ra.low, ra.high, truth["rate_a"])
            _record(row, f"rate_b{suffix}", rb.low, rb.high, truth["rate_b"])
            lo, hi = difference_limits(a, b, level) if not suffix else difference_interval(ra, rb)
            _record(row, f"difference{suffix}", lo, hi, truth["difference"])
            if not suffix:
                row["difference"] = ra.share - rb.share
                row["effective_n_a"] = ra.effective_n
        rows.append(row)
    return pd.DataFrame(rows)


#: The single-image designs of the coverage study (``simulate_coverage.py --single``).
SINGLE_DESIGNS = {
    "images_4_subject_sd1": SingleDesign(),
    "images_8_subject_sd2": SingleDesign(images_per_subject=8, subject_sd=2.0),
    "few_subjects_many_images": SingleDesign(subjects_a=8, subjects_b=10, images_per_subject=30),
    "popular_few_carry": SingleDesign(subjects_a=60, subjects_b=60, popularity_sigma=1.5),
    "near_0": SingleDesign(rate_a=0.03, rate_b=0.05, subjects_a=60, subjects_b=60),
    "near_1": SingleDesign(rate_a=0.97, rate_b=0.95, subjects_a=60, subjects_b=60),
    "very_near_0": SingleDesign(rate_a=0.01, rate_b=0.03, subjects_a=80, subjects_b=80),
    "very_near_1": SingleDesign(
        rate_a=0.995, rate_b=0.98, subjects_a=50, subjects_b=50, images_per_subject=6
    ),
    "no_difference": SingleDesign(rate_a=0.5, rate_b=0.5),
    "large_difference": SingleDesign(rate_a=0.2, rate_b=0.85),
    "unbalanced_10x80": SingleDesign(subjects_a=10, subjects_b=80, images_per_subject=3),
    "small_12x12_2img": SingleDesign(subjects_a=12, subjects_b=12, images_per_subject=2),
}

#: Single-image designs fixed after the method was (``simulate_coverage.py --single --held-out``):
#: nothing was tuned on them.
SINGLE_HELD_OUT = {
    "held_out_15x40_5img_sd1.5": SingleDesign(
        subjects_a=15, subjects_b=40, images_per_subject=5, rate_a=0.3, rate_b=0.45,
        subject_sd=1.5,
    ),
    "held_out_popular_25x25_near_0.9": SingleDesign(
        subjects_a=25, subjects_b=25, images_per_subject=6, rate_a=0.9, rate_b=0.8,
        popularity_sigma=1.0,
    ),
    # Added after the difference's Welch degrees of freedom was chosen.
    "held_out_6x25_20img": SingleDesign(
        subjects_a=6, subjects_b=25, images_per_subject=20, rate_a=0.5, rate_b=0.6,
    ),
    "held_out_14x18_3img": SingleDesign(
        subjects_a=14, subjects_b=18, images_per_subject=3, rate_a=0.35, rate_b=0.6,
        subject_sd=1.2,
    ),
}  # fmt: skip


@dataclass(frozen=True)
class AgreementDesign:
    """Two croppers on the same counterbalanced composites (module docstring)."""

    subjects_a: int = 40
    subjects_b: int = 40
    pairings: int = 200
    subject_sd: float = 1.0
    sharpness: float = 0.3
    sampling: str = "random"


def true_agreement(design: AgreementDesign) -> float:
    rng = np.random.default_rng(12345)
    m = 1 << 22
    z = rng.normal(0.0, design.subject_sd, (2, m))
    pi = expit(design.sharpness * (z[0] - z[1] + rng.normal(0.0, 1.0, m)))
    return float(np.mean(pi**2 + (1 - pi) ** 2))


def agreement_coverage_study(
    design: AgreementDesign, experiments: int, level: float = 0.95, seed: int = 0,
    replicates: int = 20,
) -> pd.DataFrame:  # fmt: skip
    """One row per experiment: the agreement rate and whether the reported interval (and the
    naive Wilson, ``wilson``) covers the truth, with widths."""
    truth = true_agreement(design)
    rng = np.random.default_rng(seed)
    weights = PoissonWeights(replicates, np.random.default_rng([seed, 1]))
    k = design.pairings
    rows = []
    for e in range(experiments):
        a_idx = _draw(_Sampling(design.sampling), rng, design.subjects_a, k)
        b_idx = _draw(_Sampling(design.sampling), rng, design.subjects_b, k)
        a_idx, b_idx = np.r_[a_idx, a_idx], np.r_[b_idx, b_idx]
        u = rng.normal(0.0, design.subject_sd, design.subjects_a)
        v = rng.normal(0.0, design.subject_sd, design.subjects_b)
        pi = expit(design.sharpness * (u[a_idx] - v[b_idx] + rng.normal(0.0, 1.0, 2 * k)))
        agree = (rng.random(2 * k) < pi) == (rng.random(2 * k) < pi)
        tag = f"s{seed}e{e}"
        est = agreement_estimate(
            agree,
            np.array([f"{tag}-a{i}" for i in a_idx], dtype=object),
            np.array([f"{tag}-b{j}" for j in b_idx], dtype=object),
            np.repeat(["a_first", "b_first"], k),
            weights,
            level,
        )
        row = {"experiment": e, "truth": truth, "agreement": float(agree.mean())}
        _record(row, "reported", *reported_interval(est), truth)
        _record(row, "wilson", est["ratio_wilson_low"], est["ratio_wilson_high"], truth)
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class _Sampling:
    """What :func:`simulation._draw` reads of a design."""

    sampling: str
    popularity_sigma: float = 1.5


#: The agreement designs of the coverage study (``simulate_coverage.py --agreement``).
AGREEMENT_DESIGNS = {
    "agreement_near_0.5": AgreementDesign(sharpness=0.2),
    "agreement_mid_0.75": AgreementDesign(sharpness=1.5, subject_sd=1.0),
    "agreement_near_1": AgreementDesign(sharpness=20.0, subject_sd=1.5),
    "agreement_small_12x12": AgreementDesign(
        subjects_a=12, subjects_b=12, pairings=30, sharpness=3.0
    ),
}
