"""The estimates as both pages tabulate them: one narrow table of survival ratios and one of
position bias per group of criteria with identical results, with human column headers, a model
(and variant) column wherever the rows have several, and the interval as one cell.

The headline p-value is the reported test's (the one the reported interval inverts), adjusted
within its family (``<stat>_p_holm``); the bootstrap p-value stands beside it, unadjusted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from cropaudit.report.pagekit import esc, fmt, table
from cropaudit.report.plotkit import criteria_groups, criteria_title
from cropaudit.stats.intervals import finite, reported_interval

#: Columns shown only when the rows have more than one value, with their headers.
VARYING = {"model_name": "model", "variant": "variant"}


def interval_cell(lo: Any, hi: Any) -> str:
    """``[low, high]``, three significant digits, or a dash where either end is missing."""
    if not (finite(lo) and finite(hi)):
        return "–"
    return f"[{fmt(float(lo), 3)}, {fmt(float(hi), 3)}]"


def p_value(row: pd.Series, column: str) -> float:
    value = row.get(column)
    return float(value) if value is not None and finite(value) else math.nan


def comparison_text(row: pd.Series) -> str:
    return f"{row['group_a']} vs {row['group_b']}"


def varying(rows: pd.DataFrame) -> list[str]:
    return [c for c in VARYING if c in rows and rows[c].nunique() > 1]


@dataclass(frozen=True)
class Block:
    """What the pages show as one plot and table: one cropper's criteria with identical winners
    (``criteria``) and the rows of the first of them. ``model`` is set when the table has
    several croppers (each gets its own blocks, since their criteria merge differently)."""

    model: str | None
    criteria: tuple[str, ...]
    rows: pd.DataFrame

    @property
    def title(self) -> str:
        title = criteria_title(self.criteria)
        return f"{self.model}: {title}" if self.model else title

    def heading(self, anchor: str = "criterion") -> str:
        key = f"{self.model}-{self.criteria[0]}" if self.model else self.criteria[0]
        return f"<h3 id='{esc(anchor)}-{esc(key)}'>{esc(self.title)}</h3>"


def blocks(estimates: pd.DataFrame) -> list[Block]:
    """The blocks of an estimates table: per cropper (in table order), per criteria group."""
    if estimates.empty:
        return []
    models = list(dict.fromkeys(estimates["model_name"]))
    out = []
    for model in models:
        own = estimates[estimates["model_name"] == model]
        for group in criteria_groups(own):
            rows = own[own["criterion"] == group[0]]
            out.append(Block(model if len(models) > 1 else None, group, rows))
    return out


def ratio_table(rows: pd.DataFrame) -> str:
    """The survival ratios of ``rows`` (one criterion's)."""
    extra = varying(rows)
    headers = [
        *(VARYING[c] for c in extra), "design", "comparison", "composites", "subjects",
        "wins a : b", "neither", "ratio", "interval", "effective n", "p (adjusted)",
        "bootstrap p",
    ]  # fmt: skip
    body = []
    for _, r in rows.iterrows():
        body.append(
            [
                *(r[c] for c in extra), r["design"], comparison_text(r), int(r["n"]),
                int(r["n_subjects"]), f"{int(r['wins_a'])} : {int(r['wins_b'])}",
                int(r["ties"]) + int(r["background"]), r["ratio"],
                interval_cell(*reported_interval(r)), p_value(r, "ratio_effective_n"),
                p_value(r, "ratio_p_holm"), p_value(r, "p_bootstrap"),
            ]
        )  # fmt: skip
    return table(headers, body)


def position_table(rows: pd.DataFrame) -> str:
    """First-slot rate and order-adjusted ratio of ``rows`` (one criterion's)."""
    extra = varying(rows)
    headers = [
        *(VARYING[c] for c in extra), "design", "comparison", "a first", "b first",
        "ratio, a first", "ratio, b first", "first-slot rate", "interval", "p (adjusted)",
        "order-adjusted ratio", "interval",
    ]  # fmt: skip
    body = []
    for _, r in rows.iterrows():
        body.append(
            [
                *(r[c] for c in extra), r["design"], comparison_text(r), int(r["n_a_first"]),
                int(r["n_b_first"]), r["ratio_a_first"], r["ratio_b_first"],
                r["first_slot_rate"], interval_cell(*reported_interval(r, "first_slot_rate")),
                p_value(r, "first_slot_p_holm"), r["order_adjusted_ratio"],
                interval_cell(*reported_interval(r, "order_adjusted_ratio")),
            ]
        )  # fmt: skip
    return table(headers, body)
