"""What the explorer's estimates table shows: one row per stratum of the run's estimates, the
columns the page filters and sorts by, and the run's findings in the report's words."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from cropaudit.report.findings_section import run_findings
from cropaudit.report.inputs import RunInputs
from cropaudit.schemas.estimates import KEY_FIELDS

#: Key fields the page leaves out (one run: provenance, not a choice to filter by).
PROVENANCE_KEYS = ("model_hash", "layout", "layout_params", "preprocessing")
#: Columns the page receives, in table order: the stratum's key, counts, the survival ratio and
#: the reported interval, and its p-values where the statistics output has them.
COLUMNS = (
    *(k for k in KEY_FIELDS if k not in PROVENANCE_KEYS),
    "n",
    "decisive",
    "wins_a",
    "wins_b",
    "ties",
    "background",
    "ratio",
    "ratio_low",
    "ratio_high",
    "ratio_effective_n",
    "order_adjusted_ratio",
    "first_slot_rate",
    "ratio_p_holm",
    "p_binomial_holm",
    "level",
)


def jsonable(value: Any) -> Any:
    """A value JSON can carry: numpy scalars as Python's, NaN and NA as None, arrays as lists."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def estimate_rows(estimates: pd.DataFrame | None) -> list[dict]:
    """The rows of the page's estimates table (empty without estimates)."""
    if estimates is None or estimates.empty:
        return []
    present = [c for c in COLUMNS if c in estimates.columns]
    return [jsonable(r) for r in estimates[present].to_dict("records")]


def finding_lines(inputs: RunInputs) -> tuple[list[dict], str]:
    """The run's findings, as the run report reads them
    (:func:`cropaudit.report.findings_section.run_findings`), and a note when there are none."""
    items = run_findings(inputs)
    if not items:
        return [], inputs.stats_source or "No estimates: no findings."
    keep = ("kind", "verdict", "model_name", "design", "criterion", "group_a", "group_b", "text")
    return [{k: jsonable(f[k]) for k in keep} for f in items], ""
