"""Survival estimates from any table of composites: the public entry point for analysts.

``estimate_survival`` takes a pandas DataFrame or an Arrow table (a cropaudit survival table, a
DuckDB query result, a CSV of another audit) with one row per composite: the subject id of face
a and of face b, the position (``a_first`` / ``b_first``) and the outcome (``a``, ``b``, ``tie``,
``background``), plus any stratum columns. It runs the statistics stage's own per-stratum code
(:class:`SufficientStats`, :func:`estimate_stratum`) with the same counter-based weights, so for
the same rows, replicates and seed it returns the numbers ``cropaudit stats`` writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from cropaudit.errors import UserError
from cropaudit.schemas.survival import POSITIONS, WINNERS
from cropaudit.stats.bootstrap import SufficientStats
from cropaudit.stats.mixed import MAX_COMPOSITES, MODEL_FLOATS, model_check
from cropaudit.stats.stratum import estimate_stratum
from cropaudit.stats.tests_multiple import adjust_rows
from cropaudit.stats.weights import WeightCache

#: Roles of the columns ``estimate_survival`` needs, with their default column names (those of
#: the survival table; its outcome is ``point_winner`` or a crop's winner).
ROLES = {
    "a_subject": "a_subject_id",
    "b_subject": "b_subject_id",
    "position": "position",
    "outcome": "outcome",
}


def _codes(values: pd.Series, names: Sequence[str], role: str, column: str) -> np.ndarray:
    if values.isna().any():
        raise UserError(f"column {column!r} ({role}) has missing values")
    codes = pd.Categorical(values.astype(str), categories=list(names)).codes
    if (codes < 0).any():
        bad = sorted(set(values.astype(str)) - set(names))[:5]
        raise UserError(
            f"column {column!r} ({role}) has values {bad}; expected one of {', '.join(names)}"
        )
    return codes.astype(np.int64)


def estimate_survival(
    table: pd.DataFrame | pa.Table | pa.RecordBatchReader,
    by: Sequence[str] = (),
    columns: Mapping[str, str] | None = None,
    replicates: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    correction: str = "cgm",
    model_max: int = MAX_COMPOSITES,
) -> pd.DataFrame:
    """Estimates per stratum (``by`` columns; one stratum when empty) of ``table`` (pandas,
    Arrow table or record batch reader), one row each, with the ``by`` columns first and then
    the estimates-table columns of :func:`estimate_stratum`; p-values are Holm / BH-adjusted
    within each row's family (``p_family``). ``columns`` maps a role of ``ROLES`` to the
    table's column name (defaults: ``ROLES``). Subject ids are compared as
    strings, so bootstrap weights match the stage's for the same ids and ``seed``; strata up to
    ``model_max`` decisive composites also get the crossed random-effects model
    (:mod:`cropaudit.stats.mixed`)."""
    if isinstance(table, pa.RecordBatchReader):  # e.g. DuckDB's ``.arrow()``
        table = table.read_all()
    df = table.to_pandas() if isinstance(table, pa.Table) else table
    names = {**ROLES, **(columns or {})}
    unknown = set(columns or {}) - set(ROLES)
    if unknown:
        raise UserError(f"unknown column roles {sorted(unknown)}; expected {', '.join(ROLES)}")
    missing = [c for c in [*names.values(), *by] if c not in df.columns]
    if missing:
        raise UserError(f"table has no column(s) {missing}; map them with columns={{role: name}}")
    if replicates < 2:
        raise UserError("replicates must be at least 2")
    for role in ("a_subject", "b_subject"):
        if df[names[role]].isna().any():
            raise UserError(f"column {names[role]!r} ({role}) has missing values")
    position = _codes(df[names["position"]], POSITIONS, "position", names["position"])
    outcome = _codes(df[names["outcome"]], WINNERS, "outcome", names["outcome"])
    a = df[names["a_subject"]].astype(str).to_numpy(dtype=object)
    b = df[names["b_subject"]].astype(str).to_numpy(dtype=object)
    weights = WeightCache(replicates, seed)
    groups = (
        df.groupby(list(by), sort=True, dropna=False).indices if by else {(): np.arange(len(df))}
    )
    rows: list[dict[str, Any]] = []
    for key, idx in groups.items():
        stats = SufficientStats(replicates)
        stats.add_batch(a[idx], b[idx], position[idx], outcome[idx], weights)
        key = key if isinstance(key, tuple) else (key,)
        est = estimate_stratum(stats, level, correction)
        est.update(model_check(stats, est, level, model_max))
        rows.append({**dict(zip(by, key, strict=True)), **est})
    adjust_rows(rows)
    out = pd.DataFrame(rows)
    return out.astype({c: float for c in MODEL_FLOATS})  # not fitted: NaN, as read from Parquet
