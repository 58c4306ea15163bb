"""Tests against parity (survival ratio = 0.5) and multiple-testing adjustment within families.

A run compares many pairs under several models, layouts and crop criteria; reading any one
p-value alone would overstate the evidence, so p-values are adjusted (Holm: family-wise error;
Benjamini-Hochberg: false discovery rate) within declared families, one per model x variant x
criterion x design x kind of comparison (``p_family``). Not across the whole run: criteria
whose winners are mostly identical would be counted as independent questions, and the controls
(``same_group``, ``same_image`` designs, which test the pipeline, not the cropper) would dilute
the pairs' evidence. Controls are their own families, never with pairs.
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


#: What names a row's family (:func:`family`), in order.
FAMILY_FIELDS = ("model_name", "variant", "criterion", "design", "comparison")
#: The p-value columns adjusted within families: each gets ``_holm`` and ``_bh`` beside it.
ADJUSTED = ("ratio_p", "order_adjusted_p", "first_slot_p", "p_binomial", "p_bootstrap")


def family(row: dict) -> str:
    """The multiplicity family of an estimates row (``p_family``): its ``FAMILY_FIELDS`` joined
    by ``|``. A control's design is in its name, so controls never share a pair family; rows
    without a key field (a plain table's) take ``-`` for it."""
    return "|".join(str(row.get(f, "-")) for f in FAMILY_FIELDS)


def adjust_rows(rows: list[dict]) -> None:
    """Set ``p_family`` on every row and add ``<p>_holm`` and ``<p>_bh`` for each p-value of
    ``ADJUSTED`` the rows have, adjusted within each family."""
    members: dict[str, list[dict]] = {}
    for r in rows:
        r["p_family"] = family(r)
        members.setdefault(r["p_family"], []).append(r)
    for column in (c for c in ADJUSTED if rows and c in rows[0]):
        for group in members.values():
            p = [r[column] for r in group]
            for suffix, adjusted in (("holm", holm(p)), ("bh", benjamini_hochberg(p))):
                for r, value in zip(group, adjusted, strict=True):
                    r[f"{column}_{suffix}"] = float(value)
