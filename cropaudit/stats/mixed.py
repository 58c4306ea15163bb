"""Model-based cross-check of the survival ratio: a crossed random-effects logistic model.

For the decisive composites of one stratum,

    logit P(a survives) = b0 + b1 * (+1/2 if a first else -1/2) + u_a - v_b,
    u ~ N(0, sd_a^2) per a-subject, v ~ N(0, sd_b^2) per b-subject (crossed, not nested),

fitted by statsmodels' ``BinomialBayesMixedGLM`` (variational Bayes, its default weak priors).
The estimand of the bootstrap is a population average, not the model's conditional b0, so the
model's survival ratio is averaged the same way: theta = 1/2 sum_{s=+-1/2} E[expit(b0 + s b1 + Z)],
Z ~ N(0, sd_a^2 + sd_b^2) (Gauss-Hermite). Its interval propagates the approximate posterior of
(b0, b1, log sd_a, log sd_b) by simulation (fixed seed). Where the model's interval and the
reported one do not overlap, the stratum is flagged: the two methods disagree beyond their
intervals, which a reviewer should see.

The fit is O(composites x subjects) per iteration (seconds per hundred composites), so it runs
only for strata up to ``max_composites`` decisive composites (default ``MAX_COMPOSITES``;
``cropaudit stats --model-max N``); every other stratum says why in ``model_status``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from cropaudit.stats.bootstrap import SufficientStats

#: Default largest stratum (decisive composites) the model is fitted to: a fit costs seconds
#: per hundred composites on two cores, and the bootstrap stage must stay fast.
MAX_COMPOSITES = 200
_DRAWS = 2000
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(40)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


def population_ratio(b0: np.ndarray, b1: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """theta of the module docstring for arrays of (b0, b1, total subject sd)."""
    z = np.asarray(sd)[..., None] * _NODES
    out = 0.0
    for s in (0.5, -0.5):
        eta = np.asarray(b0)[..., None] + s * np.asarray(b1)[..., None] + z
        out = out + 0.5 * (expit(eta) @ _WEIGHTS)
    return out


#: The model's numeric columns (null where it was not fitted).
MODEL_FLOATS = ("model_ratio", "model_low", "model_high", "model_sd_a", "model_sd_b")


def skipped(status: str) -> dict:
    """Model columns of a stratum without a fit: nulls (not computed) and the reason."""
    return {**dict.fromkeys(MODEL_FLOATS), "model_status": status}


def crossed_logit(
    a_idx: np.ndarray, b_idx: np.ndarray, a_first: np.ndarray, a_won: np.ndarray, level: float
) -> dict:
    """Fit the model to decisive composites (integer subject codes per side, booleans) and
    return ``model_ratio``, ``model_low``/``model_high``, ``model_sd_a``/``model_sd_b`` (the
    subject standard deviations on the logit scale) and ``model_status``."""
    from statsmodels.genmod.bayes_mixed_glm import BinomialBayesMixedGLM

    n = len(a_won)
    if n < 2 or a_won.all() or not a_won.any():
        return skipped("skipped: every decisive composite went one way (the model diverges)")
    _, a_code = np.unique(a_idx, return_inverse=True)
    _, b_code = np.unique(b_idx, return_inverse=True)
    n_a, n_b = a_code.max() + 1, b_code.max() + 1
    if n_a < 2 or n_b < 2:
        return skipped("skipped: fewer than two subjects on a side")
    exog = np.column_stack([np.ones(n), np.where(a_first, 0.5, -0.5)])
    rows = np.r_[np.arange(n), np.arange(n)]
    cols = np.r_[a_code, n_a + b_code]
    vals = np.r_[np.ones(n), -np.ones(n)]  # v_b enters with a minus sign
    exog_vc = sp.csr_matrix((vals, (rows, cols)), shape=(n, n_a + n_b))
    ident = np.r_[np.zeros(n_a, int), np.ones(n_b, int)]
    model = BinomialBayesMixedGLM(a_won.astype(float), exog, exog_vc, ident, vcp_p=1.0, fe_p=2.0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = model.fit_vb(rng=np.random.default_rng(0))
    except Exception as exc:  # noqa: BLE001 - any optimiser failure is recorded, not raised
        return skipped(f"failed: {type(exc).__name__}")
    rng = np.random.default_rng(1)
    b = rng.normal(res.fe_mean, res.fe_sd, (_DRAWS, 2))
    log_sd = rng.normal(res.vcp_mean, res.vcp_sd, (_DRAWS, 2))
    total = np.sqrt(np.exp(2 * log_sd).sum(1))
    draws = population_ratio(b[:, 0], b[:, 1], total)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(draws, [alpha, 1.0 - alpha])
    sd_a, sd_b = np.exp(res.vcp_mean)
    point = population_ratio(res.fe_mean[0], res.fe_mean[1], math.hypot(sd_a, sd_b))
    return dict(
        model_ratio=float(point), model_low=float(lo), model_high=float(hi),
        model_sd_a=float(sd_a), model_sd_b=float(sd_b), model_status="fitted",
    )  # fmt: skip


def model_check(
    stats: SufficientStats, estimates: dict, level: float, max_composites: int = MAX_COMPOSITES
) -> dict:
    """The model columns of one stratum (module docstring) beside its ``estimates``:
    ``model_*`` and ``model_disagrees`` (the model's interval and the reported ratio interval
    do not overlap)."""
    decisive = estimates["decisive"]
    if decisive > max_composites:
        out = skipped(f"skipped: {decisive} decisive composites > {max_composites} (time budget)")
    else:
        rows = stats.composites()
        if rows is None:
            out = skipped("skipped: a subject is face a and face b (sides not identified)")
        else:
            out = crossed_logit(*rows, level)
    lo, hi = estimates["ratio_low"], estimates["ratio_high"]
    fitted = out["model_status"] == "fitted"
    out["model_disagrees"] = fitted and bool(out["model_high"] < lo or out["model_low"] > hi)
    return out
