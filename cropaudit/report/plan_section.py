"""The "Planning" section of the run report and of the statistics page: the pilot's survival
table as a pilot (:mod:`cropaudit.stats.planning`).

Per pair, the subjects per group and composites per subject that would bring the reported
interval to a half-width of ``DEFAULT_HALF_WIDTH``, and the floor the pilot's own subjects allow
however many composites are added: the answer to "how many do I need?" before the next run.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import pyarrow as pa

from cropaudit.report.inputs import RunInputs
from cropaudit.stats.planning import DEFAULT_HALF_WIDTH, PLAN_ROWS, plan_survival

#: Columns of the plan as shown (the page's table and ``cropaudit plan``'s print), with headings.
SHOWN = {
    "design": "design",
    "criterion": "criterion",
    "group_a": "a",
    "group_b": "b",
    "pilot_subjects_a": "subj a",
    "pilot_subjects_b": "subj b",
    "pilot_composites": "decisive",
    "ratio": "ratio",
    "pilot_half_width": "pilot hw",
    "subjects_per_group": "subj/group",
    "composites_per_subject": "comp/subj",
    "total_composites": "composites",
    "predicted_half_width": "planned hw",
    "plateau_composites_per_subject": "plateau comp/subj",
    "floor_half_width": "floor hw (pilot subj)",
    "status": "with the pilot's subjects",
    "assured_subjects_per_group": "assured subj/group",
    "assured_composites_per_subject": "assured comp/subj",
}


def planning_section(inputs: RunInputs) -> str:
    """The run report's section (this run as the pilot)."""
    est = inputs.estimates
    level = float(est["level"].iloc[0]) if est is not None and not est.empty else 0.95
    return plan_html(inputs.survival_table, level, inputs.run_dir)


def stats_planning_section(
    survival_files: Sequence[str], estimates: pd.DataFrame, stats_dir: str
) -> str:
    """The statistics page's planning section (its body): the runs it analysed as the pilot, at
    the estimates' level. Reads the survival files again (the stage keeps no rows), up to
    ``PLAN_ROWS`` rows; beyond, a note names the command."""
    import pyarrow.parquet as pq

    from cropaudit import fileio
    from cropaudit.report.page import note

    if not survival_files:
        return note(
            "No plan: these estimates come from a plain table; plan from a run folder "
            "(cropaudit plan RUN_DIR --half-width H)."
        )
    rows = sum(pq.read_metadata(pa.BufferReader(fileio.read_bytes(f))).num_rows
               for f in survival_files)  # fmt: skip
    if rows > PLAN_ROWS:
        return note(
            f"Not planned here: the survival tables have {rows:,} rows, and planning re-reads "
            f"them (more than {PLAN_ROWS:,} would slow the statistics stage); run "
            f"cropaudit plan {stats_dir} --half-width {DEFAULT_HALF_WIDTH}."
        )
    level = float(estimates["level"].iloc[0]) if len(estimates) else 0.95
    tables = [pq.read_table(pa.BufferReader(fileio.read_bytes(f))) for f in survival_files]
    table = pa.concat_tables(tables, promote_options="default")
    return plan_html(table, level, stats_dir)


def plan_html(survival_table: pa.Table | None, level: float, pilot: str) -> str:
    """The section's body: an explanation and the plan table of ``survival_table`` at
    ``DEFAULT_HALF_WIDTH`` (``pilot``: the folder named in the command for other targets)."""
    from cropaudit.errors import UserError
    from cropaudit.report.estimate_tables import VARYING
    from cropaudit.report.page import note, table

    if survival_table is None:
        return note("No survival table: nothing to plan from.")
    try:
        plan = plan_survival(survival_table, DEFAULT_HALF_WIDTH, level)
    except UserError as exc:
        return note(f"No plan: {exc}.")
    planned = plan[plan["subjects_per_group"].notna()] if "subjects_per_group" in plan else plan
    if planned.empty:
        reasons = plan["status"].value_counts() if "status" in plan else pd.Series(dtype=int)
        why = "; ".join(f"{status} ({n} rows)" for status, n in reasons.items())
        return note(
            f"Nothing to plan from this run: none of its {len(plan)} comparisons can be "
            f"planned as a pilot for a half-width of {DEFAULT_HALF_WIDTH} — {why}."
        )
    intro = note(
        f"This run as a pilot: per pair, the fewest subjects per group (subj/group) and "
        f"composites per face (comp/subj) that bring the {level:.0%} reported interval to a "
        f"half-width of {DEFAULT_HALF_WIDTH} (planned hw), predicted from the run's variance "
        "components (a-subject, b-subject and composite-level, the split of the two-way "
        "cluster-robust variance behind the reported interval). With the same faces, more "
        "composites stop helping at the plateau: beyond 'plateau comp/subj' the half-width "
        "shrinks by less than 5%, towards the floor this run's subjects allow (floor hw); a "
        "target below it needs more subjects, not more composites. Criteria with identical "
        f"plans share a row. Other targets: cropaudit plan {pilot} --half-width H."
    )
    skipped = len(plan) - len(planned)
    if skipped:
        intro += note(f"{skipped} of {len(plan)} comparisons could not be planned (not shown).")
    several = [c for c in VARYING if c in planned and planned[c].nunique() > 1]
    columns = several + [c for c in SHOWN if c in planned]
    rows: dict[tuple, list] = {}
    for row in planned[columns].itertuples(index=False):
        values = [None if v is pd.NA else v.item() if hasattr(v, "item") else v for v in row]
        criterion = columns.index("criterion") if "criterion" in columns else None
        key = tuple(map(str, (v for i, v in enumerate(values) if i != criterion)))
        if key in rows and criterion is not None:
            rows[key][criterion] += f", {values[criterion]}"
        else:
            rows[key] = values  # plain Python numbers: the page right-aligns them
    return intro + table([{**VARYING, **SHOWN}[c] for c in columns], rows.values())
