"""Tests against parity (survival ratio = 0.5) and multiple-testing adjustment across a run.

A run compares many pairs under several models, layouts and crop criteria; reading any one
p-value alone would overstate the evidence, so every p-value of a run is adjusted together:
Holm (family-wise error) and Benjamini-Hochberg (false discovery rate).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import binomtest
from statsmodels.stats.multitest import multipletests


def binomial_pvalue(wins_a: int, decisive: int, null: float = 0.5) -> float:
    """Exact two-sided binomial test of wins_a out of the decisive composites. Treats
    composites as independent (no subject clustering): anti-conservative when faces repeat."""
    if decisive <= 0:
        return math.nan
    return float(binomtest(int(wins_a), int(decisive), null).pvalue)


def adjust(pvalues: np.ndarray | list[float], method: str) -> np.ndarray:
    """``multipletests`` over the finite p-values (``holm`` or ``fdr_bh``); NaN stays NaN."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method=method)[1]
    return out


def holm(pvalues: np.ndarray | list[float]) -> np.ndarray:
    return adjust(pvalues, "holm")


def benjamini_hochberg(pvalues: np.ndarray | list[float]) -> np.ndarray:
    return adjust(pvalues, "fdr_bh")


def adjust_rows(rows: list[dict]) -> None:
    """Add ``p_<test>_holm`` and ``p_<test>_bh`` to every row, adjusting ``p_binomial`` and
    ``p_bootstrap`` across all ``rows`` (one family: the whole run or table)."""
    for test in ("binomial", "bootstrap"):
        p = [r[f"p_{test}"] for r in rows]
        for suffix, adjusted in (("holm", holm(p)), ("bh", benjamini_hochberg(p))):
            for r, value in zip(rows, adjusted, strict=True):
                r[f"p_{test}_{suffix}"] = float(value)
