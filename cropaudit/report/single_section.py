"""The run report's "Face or body" section: single-image runs (the male-gaze check).

Its findings first (:mod:`cropaudit.stats.gaze_findings`, the lines the statistics stage
prints), then per criterion a plot of the face share per group with its subject-clustered
interval, a plot of the differences between groups with their intervals and verdicts, and the
tables. The gallery section shows the images themselves with the point, crops and face box.
Everything is computed from the run's ``single_survival`` table by the functions the statistics
stage uses, so the page and ``face_rates.parquet`` agree.
"""

from __future__ import annotations

import pandas as pd

from cropaudit.report.inputs import RunInputs
from cropaudit.report.pagekit import esc, img, note, table
from cropaudit.report.plotkit import interval_plot
from cropaudit.schemas.criteria import POINT, criterion_name
from cropaudit.stats.gaze import face_rate_differences, face_rates
from cropaudit.stats.gaze_findings import difference_verdict, gaze_findings

SYNTHETIC_NOTE = (
    "These images are synthetic figures drawn by cropaudit: they show how the analysis works, "
    "not how any cropper treats real people."
)
VERDICT_WORDS = {
    "disparity": "a difference",
    "parity": "no difference beyond the parity band",
    "inconclusive": "too little data to say",
}


def single_tables(inputs: RunInputs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rates and differences of every criterion of the run, with a ``criterion`` column."""
    criteria = [POINT] + [criterion_name(c) for c in inputs.config.crop.aspect_ratios]
    rates, diffs = [], []
    for criterion in criteria:
        rates.append(face_rates(inputs.single, criterion=criterion).assign(criterion=criterion))
        diffs.append(
            face_rate_differences(inputs.single, criterion=criterion).assign(criterion=criterion)
        )
    return pd.concat(rates, ignore_index=True), pd.concat(diffs, ignore_index=True)


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def single_section(inputs: RunInputs) -> str:
    """The section's HTML (module docstring)."""
    if inputs.single is None or not inputs.single.num_rows:
        return note("No single-image rows: this section is for the `single` design (male gaze).")
    rates, diffs = single_tables(inputs)
    analysis = inputs.config.analysis
    width = analysis.parity_width
    lines = gaze_findings(
        rates,
        diffs,
        primary_criterion=analysis.primary_criterion or None,
        parity_width=width,
        aspect_ratios=inputs.config.crop.aspect_ratios,
    )
    parts = []
    if "synthetic" in (inputs.config.dataset or ""):
        parts.append(note(SYNTHETIC_NOTE, "warn"))
    parts.append(
        "<div id='single-findings'><h3>Findings</h3><ul>"
        + "".join(f"<li data-verdict='{esc(f.verdict)}'>{esc(f.text)}</li>" for f in lines)
        + "</ul></div>"
    )
    parts.append(
        note(
            "Single full-body images: the share whose salient point (or crop) keeps the face box "
            "rather than the body, per group, with intervals that count people, not images "
            "(subject-clustered: a person's images are one draw); differences between groups in "
            "points with the interval and the Holm-adjusted p of the test it inverts, within "
            f"each family. Parity band ±{100 * width:g} points."
        )
    )
    rates = rates[rates["n"] > 0]
    labels = [f"{r['criterion']}: {_rate_label(r)}" for r in rates.to_dict("records")]
    png = interval_plot(
        labels, list(rates.face_share), list(rates.ci_low), list(rates.ci_high),
        title="share of images where the face is kept, per criterion and group "
        "(subject-clustered CI)",
        xlabel="face share", reference_label="half (0.5)",
    )  # fmt: skip
    parts.append(img(png, "face share per criterion and group", data_criterion="gaze-rates"))
    if len(diffs):
        states = [difference_verdict(lo, hi, width)
                  for lo, hi in zip(diffs.difference_low, diffs.difference_high)]  # fmt: skip
        png = interval_plot(
            [f"{r['criterion']}: {_pair_label(r)}: {VERDICT_WORDS[s]}"
             for r, s in zip(diffs.to_dict("records"), states)],
            list(diffs.difference), list(diffs.difference_low), list(diffs.difference_high),
            title="difference in face share (a - b) with its interval",
            xlabel="difference in face share", reference=0.0,
            reference_label="no difference", xlim=(-1.0, 1.0),
        )  # fmt: skip
        parts.append(img(png, "differences in face share", data_criterion="gaze-differences"))
        parts.append(_difference_table(diffs, states))
    parts.append(_rate_table(rates))
    return "".join(parts)


def _rate_label(r: dict) -> str:
    variant = "" if r["variant"] == "base" else f" ({r['variant']})"
    return f"{r['model_name']}{variant}: {r['group']}"


def _pair_label(r: dict) -> str:
    variant = "" if r["variant"] == "base" else f" ({r['variant']})"
    return f"{r['model_name']}{variant}: {r['group_a']} vs {r['group_b']}"


def _interval(share: float, low: float, high: float) -> str:
    return f"{_pct(share)} [{100 * low:.0f}, {100 * high:.0f}]"


def _rate_table(block: pd.DataFrame) -> str:
    rows = [
        (r["criterion"], _rate_label(r), r["n"], r["subjects"], f"{r['effective_n']:.1f}",
         _interval(r["face_share"], r["ci_low"], r["ci_high"]),
         _interval(r["body_share"], r["body_low"], r["body_high"]), r["background"],
         f"[{100 * r['wilson_low']:.0f}, {100 * r['wilson_high']:.0f}]")
        for r in block.to_dict("records")
    ]  # fmt: skip
    return table(
        ["criterion", "cropper: group", "images", "people", "effective n", "face kept [CI]",
         "on the body [CI]", "background", "face, plain Wilson (images independent)"],
        rows,
    )  # fmt: skip


def _difference_table(d: pd.DataFrame, states: list[str]) -> str:
    rows = [
        (r["criterion"], _pair_label(r), _interval(r["share_a"], r["low_a"], r["high_a"]),
         _interval(r["share_b"], r["low_b"], r["high_b"]),
         f"{100 * r['difference']:+.0f} [{100 * r['difference_low']:+.0f}, "
         f"{100 * r['difference_high']:+.0f}]", f"{r['p']:.3g}", f"{r['p_holm']:.3g}",
         VERDICT_WORDS[s])
        for r, s in zip(d.to_dict("records"), states)
    ]  # fmt: skip
    return table(
        ["criterion", "comparison", "a: face kept", "b: face kept", "difference, points [CI]", "p",
         "p (Holm, in family)", "verdict"],
        rows,
    )  # fmt: skip
