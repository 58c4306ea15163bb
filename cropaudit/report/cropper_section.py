"""The report's "Croppers side by side" section (runs that compare croppers).

Two tables per criterion: each cropper's survival ratio with its subject-clustered interval, one
column per cropper, for every group pair of the ``pairs`` design; and the agreement between every
two croppers (:func:`cropaudit.stats.agreement.agreement`) per group pair. Nothing here knows
which kind of cropper produced a row: everything comes from the survival and estimates tables.
"""

from __future__ import annotations

import pandas as pd

from cropaudit.report.inputs import RunInputs
from cropaudit.schemas.survival import PAIRS


def ratio_cell(row: pd.Series) -> str:
    from cropaudit.report.pagekit import fmt
    from cropaudit.stats.intervals import reported_interval

    lo, hi = reported_interval(row)
    return f"{fmt(row['ratio'], 3)} [{fmt(lo, 3)}, {fmt(hi, 3)}] n={int(row['decisive'])}"


def side_by_side(estimates: pd.DataFrame, models: list[str]) -> dict[str, pd.DataFrame]:
    """criterion -> (group pair x cropper) table of "ratio [low, high] n=decisive" cells."""
    est = estimates[(estimates["design"] == PAIRS) & (estimates["comparison"] == "pair")]
    out = {}
    for criterion, sub in est.groupby("criterion", sort=True):
        cells = sub.assign(cell=[ratio_cell(r) for _, r in sub.iterrows()])
        wide = cells.pivot_table(
            index=["group_a", "group_b"], columns="model_name", values="cell", aggfunc="first"
        )
        out[criterion] = wide.reindex(columns=[m for m in models if m in wide.columns])
    return out


def croppers_section(inputs: RunInputs) -> str:
    from cropaudit.report.pagekit import esc, img, note, table
    from cropaudit.report.plotkit import (
        criteria_groups,
        criteria_order,
        criteria_title,
        croppers_plot,
    )
    from cropaudit.stats.agreement import agreement

    survival = inputs.survival
    models = sorted(set(survival["model_name"])) if "model_name" in survival else []
    if len(models) < 2:
        return note("One cropper in this run; list more in model.compare to compare them here.")
    est = inputs.estimates
    replicates, seed, level = 1000, 0, 0.95
    if est is not None and not est.empty:
        first = est.iloc[0]
        replicates, seed, level = int(first["replicates"]), int(first["seed"]), first["level"]
    parts = [
        note(
            f"{len(models)} croppers scored the same composites: {', '.join(models)}. Per "
            "comparison of the pairs design, each cropper's survival ratio with its "
            f"{level:.0%} subject-clustered interval (table: ratio [interval] n=decisive "
            "composites); below, how often two croppers decided alike."
        )
    ]
    has_estimates = est is not None and not est.empty
    pairs = est[est["design"] == PAIRS] if has_estimates else None
    tables = side_by_side(est, models) if has_estimates else {}
    for group in criteria_groups(pairs) if has_estimates else []:
        heading = esc(criteria_title(group))
        parts.append(f"<h3 id='croppers-{esc(group[0])}'>{heading}</h3>")
        shown = [
            m for m in models if (pairs[pairs["criterion"] == group[0]]["model_name"] == m).any()
        ]
        png = croppers_plot(pairs, group[0], shown)
        parts.append(img(png, f"croppers side by side, {group[0]}", data_criterion=group[0]))
        wide = tables.get(group[0])
        if wide is not None and not wide.empty:
            rows = [
                [a, b, *(v if isinstance(v, str) else "–" for v in r)]
                for (a, b), r in wide.iterrows()
            ]
            parts.append(table(["a", "b", *wide.columns], rows))
    agree = agreement(survival, replicates, seed, level)
    agree = agree[agree["design"] == PAIRS]
    blocks = []
    for criterion in criteria_order(agree["criterion"]):
        sub = agree[agree["criterion"] == criterion]
        rows = [
            [
                r["group_a"], r["group_b"], r["model_1"], r["model_2"], int(r["n"]),
                int(r["agree"]), r["agreement"], r["agreement_boot_low"],
                r["agreement_boot_high"], r["agreement_wilson_low"], r["agreement_wilson_high"],
            ]
            for _, r in sub.iterrows()
        ]  # fmt: skip
        headers = [
            "a", "b", "cropper 1", "cropper 2", "composites", "agree", "agreement",
            "boot low", "boot high", "Wilson low", "Wilson high",
        ]  # fmt: skip
        blocks.append(f"<h4>{esc(criterion)}</h4>" + table(headers, rows))
    if blocks:
        parts.append(
            "<details><summary>Agreement: how often two croppers decided alike (kept the same "
            "face, or both tied / kept neither), with subject-clustered bootstrap and naive "
            "Wilson intervals</summary>" + "".join(blocks) + "</details>"
        )
    return "".join(parts)
