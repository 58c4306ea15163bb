"""The report's "Planning" section: this run as a pilot (:mod:`cropaudit.stats.planning`).

Per pair, the subjects per group and composites per subject that would bring the reported
interval to a half-width of ``DEFAULT_HALF_WIDTH``, and the floor this run's own subjects allow
however many composites are added: the answer to "how many do I need?" before the next run.
"""

from __future__ import annotations

import pandas as pd

from cropaudit.report.inputs import RunInputs


def planning_section(inputs: RunInputs) -> str:
    from cropaudit.errors import UserError
    from cropaudit.pipelines.plan_pipeline import DEFAULT_HALF_WIDTH, SHOWN, plan_survival
    from cropaudit.report.page import note, table

    est = inputs.estimates
    level = float(est["level"].iloc[0]) if est is not None and not est.empty else 0.95
    if inputs.survival_table is None:
        return note("No survival table: nothing to plan from.")
    try:
        plan = plan_survival(inputs.survival_table, DEFAULT_HALF_WIDTH, level)
    except UserError as exc:
        return note(f"No plan: {exc}.")
    intro = note(
        f"This run as a pilot: per pair, the fewest subjects per group (subj/group) and "
        f"composites per face (comp/subj) that bring the {level:.0%} reported interval to a "
        f"half-width of {DEFAULT_HALF_WIDTH} (planned hw), predicted from the run's variance "
        "components (a-subject, b-subject and composite-level, the split of the two-way "
        "cluster-robust variance behind the reported interval). With the same faces, more "
        "composites stop helping at the plateau: beyond 'plateau comp/subj' the half-width "
        "shrinks by less than 5%, towards the floor this run's subjects allow (floor hw); a "
        "target below it needs more subjects, not more composites. Other targets: cropaudit "
        f"plan {inputs.run_dir} --half-width H."
    )
    columns = [c for c in SHOWN if c in plan]
    rows = [
        [None if v is pd.NA else v.item() if hasattr(v, "item") else v for v in row]
        for row in plan[columns].itertuples(index=False)
    ]  # plain Python numbers: the page right-aligns them
    return intro + table([SHOWN[c] for c in columns], rows)
