"""Every finding of a run read one way: the pair comparisons of its estimates
(:mod:`cropaudit.stats.findings`) and the face rates of its single images
(:mod:`cropaudit.stats.gaze_findings`), with what ``cropaudit plan`` says an inconclusive
comparison needs when the run is small enough to plan from here.

The statistics stage writes these to ``findings.json``; the run report and the explorer show
the same lines for the rows they read, so the words never differ between them.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import pyarrow as pa

from cropaudit.errors import UserError
from cropaudit.stats.findings import DEFAULT_PARITY_WIDTH, Finding, findings
from cropaudit.stats.gaze_findings import gaze_findings
from cropaudit.stats.planning import PLAN_ROWS, plan_survival


def run_findings(
    estimates: pd.DataFrame | None,
    *,
    primary_criterion: str | None = None,
    parity_width: float = DEFAULT_PARITY_WIDTH,
    aspect_ratios: Sequence[float] = (),
    survival: pa.Table | None = None,
    rates: pd.DataFrame | None = None,
    differences: pd.DataFrame | None = None,
) -> list[Finding]:
    """The findings of ``estimates`` (pairs) and of the single-image ``rates`` and
    ``differences`` (face-rate tables with their ``criterion`` column); ``survival``, the pair
    rows, is planned from at a half-width of ``parity_width`` when it has at most
    :data:`~cropaudit.stats.planning.PLAN_ROWS` rows."""
    items: list[Finding] = []
    if estimates is not None and not estimates.empty:
        level = float(estimates["level"].iloc[0])
        plan = None
        if survival is not None and 0 < survival.num_rows <= PLAN_ROWS:
            try:
                plan = plan_survival(survival, parity_width, level)
            except UserError:  # nothing to plan: the findings say what they need in words
                plan = None
        items += findings(
            estimates,
            primary_criterion=primary_criterion,
            parity_width=parity_width,
            level=level,
            aspect_ratios=aspect_ratios,
            plan=plan,
        )
    if rates is not None and not rates.empty:
        items += gaze_findings(
            rates,
            differences,
            primary_criterion=primary_criterion,
            parity_width=parity_width,
            aspect_ratios=aspect_ratios,
        )
    return items
