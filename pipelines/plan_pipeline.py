"""``cropaudit plan``: the planning table (:mod:`cropaudit.stats.planning`) of a pilot's survival
table, per pair stratum, with the strata of the statistics stage (:func:`key_table`).

A pilot is a finished run (its survival table), a statistics output whose inputs were runs (its
``_SUCCESS`` names them; its estimates give the interval level), or a demo folder (``run/`` and
``stats/``). The variance components are recomputed from the survival rows: the estimates table
carries the total cluster-robust variance, not its split by side.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cropaudit import fileio
from cropaudit.csvcells import safe_cell
from cropaudit.errors import UserError
from cropaudit.pipelines.stats_pipeline import resolve_survival
from cropaudit.report.plan_section import SHOWN
from cropaudit.rundir.ownership import check_new_file
from cropaudit.rundir.run_dir import SURVIVAL, RunDir
from cropaudit.rundir.stats_dir import DEFAULT_LEVEL, INNER_STATS, StatsDir
from cropaudit.stats import planning
from cropaudit.stats.planning import plan_survival


@dataclass(frozen=True)
class PlanInputs:
    """What ``cropaudit plan PATH`` reads: survival files, the statistics folder (if any) where
    the table goes by default, the interval level (the estimates', else 0.95), and per run how
    its survival table differs from its summary (used with ``--trust-modified``)."""

    survival_files: list[str]
    stats_dir: str | None
    level: float
    unverified: dict[str, list[str]] = field(default_factory=dict)


def resolve(path: str, trust_modified: bool = False) -> PlanInputs:
    """A run, statistics or demo folder as :class:`PlanInputs` (``UserError`` otherwise)."""
    path = path.rstrip("/") or "/"
    if not fileio.is_folder(path):
        raise UserError(f"{path} is not a folder; give a run, statistics or demo folder")
    run = RunDir.open(path)
    if fileio.exists(run.folder(SURVIVAL)) or fileio.exists(run.summary_path):
        files, modified = resolve_survival([run.root], trust_modified)
        beside = StatsDir(fileio.join(path, INNER_STATS))
        if run.root == path or not fileio.exists(beside.root):
            return PlanInputs(files, None, DEFAULT_LEVEL, modified)
        return PlanInputs(files, beside.root, beside.level(), modified)  # a demo folder
    stats = StatsDir(path)
    if fileio.exists(stats.estimates_folder):
        inputs = stats.success().get("inputs") or []
        if any(str(i).endswith((".parquet", ".csv")) for i in inputs):
            raise UserError(
                f"{path} was computed from a plain table; plan from a run folder instead"
            )
        files, modified = resolve_survival(inputs, trust_modified)
        return PlanInputs(files, path, stats.level(), modified)
    raise UserError(
        f"{path} is neither a run folder (survival/), a statistics folder (estimates/) nor a "
        "demo folder (run/ and stats/)"
    )


def _check_format(path: str) -> None:
    if not path.endswith((".parquet", ".csv")):
        raise UserError(f"{path}: the plan is written as .parquet or .csv")


def write_plan(plan: pd.DataFrame, path: str) -> str:
    """Write ``plan`` to ``path`` (.parquet or .csv; list columns joined by spaces in CSV)."""
    _check_format(path)
    if path.endswith(".parquet"):
        buf = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(plan, preserve_index=False), buf, compression="snappy")
        data = buf.getvalue()
    else:
        flat = plan.copy()
        for col in flat.columns:
            if flat[col].map(lambda v: isinstance(v, (list, np.ndarray))).any():
                flat[col] = flat[col].map(lambda v: " ".join(map(str, v)))
            if not pd.api.types.is_numeric_dtype(flat[col]):  # text a spreadsheet must not run
                flat[col] = flat[col].map(safe_cell)
        data = flat.to_csv(index=False, float_format="%.6g").encode()
    fileio.write_atomic(path, data)
    return path


def format_plan(plan: pd.DataFrame) -> str:
    """The printed table (numbers short, missing as '-')."""
    shown = plan[[c for c in SHOWN if c in plan]].rename(columns=SHOWN)

    def cell(v: object) -> str:
        if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
            return "-"
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    return shown.astype(object).map(cell).to_string(index=False)


def run_plan(
    path: str,
    half_width: float,
    out: str | None = None,
    level: float | None = None,
    criteria: Sequence[str] | None = None,
    trust_modified: bool = False,
    overwrite: bool = False,
    assurance: float | None = None,
) -> tuple[pd.DataFrame, str | None]:
    """Plan from the pilot at ``path``; writes ``out`` (else ``STATS/plan.parquet`` when a
    statistics folder was found); returns the table and where it went."""
    inputs = resolve(path, trust_modified)
    target = out or (StatsDir(inputs.stats_dir).plan if inputs.stats_dir else None)
    if target:
        _check_format(target)
        check_new_file(target, overwrite)
    raw = [fileio.read_bytes(f) for f in inputs.survival_files]
    tables = [pq.read_table(pa.BufferReader(data)) for data in raw]
    table = pa.concat_tables(tables, promote_options="default")
    sure = planning.ASSURANCE if assurance is None else assurance
    plan = plan_survival(table, half_width, level or inputs.level, criteria, sure)
    # Provenance on every row: what was read, byte for byte, and whether tables that differ
    # from their run summaries were let in (what differs, per run, as JSON).
    plan.insert(0, "source", fileio.absolute(path.rstrip("/")))
    plan["survival_files"] = [list(inputs.survival_files)] * len(plan)
    plan["survival_sha256"] = [[hashlib.sha256(d).hexdigest() for d in raw]] * len(plan)
    plan["trust_modified"] = bool(trust_modified)
    plan["unverified_inputs"] = (
        json.dumps(inputs.unverified, sort_keys=True) if inputs.unverified else ""
    )
    if target:
        write_plan(plan, target)
    return plan, target
