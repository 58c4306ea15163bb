"""The statistics page ``cropaudit stats`` writes beside its estimates (``OUT/report.html``) and
the forest plots (``OUT/plots/<criterion>.png|svg``), built with the report's page and plot kits.

The page is a list of :class:`~cropaudit.report.pagekit.Section` entries (:data:`SECTIONS`),
each a function of :class:`StatsPage`: adding a section is one entry.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa

from cropaudit import fileio
from cropaudit.report.pagekit import (
    Section,
    frame_table,
    html_page,
    img,
    note,
    relative_paths,
    render_sections,
)
from cropaudit.report.plotkit import criteria_order, forest_plot
from cropaudit.rundir.stats_dir import StatsDir

ESTIMATE_COLUMNS = [
    "model_name", "layout", "preprocessing", "design", "criterion", "comparison", "group_a",
    "group_b", "n", "n_subjects", "wins_a", "wins_b", "ties", "background", "ratio",
    "ratio_low", "ratio_high", "ratio_interval_method", "ratio_effective_n", "ratio_bca_low",
    "ratio_bca_high", "ratio_percentile_low", "ratio_percentile_high",
    "ratio_wilson_low", "ratio_wilson_high", "ratio_twitter_low", "ratio_twitter_high", "effect",
    "effect_low", "effect_high", "model_ratio", "model_low", "model_high", "model_sd_a",
    "model_sd_b", "model_status", "model_disagrees",
]  # fmt: skip
POSITION_COLUMNS = [
    "model_name", "layout", "preprocessing", "design", "criterion", "comparison", "group_a",
    "group_b", "n_a_first", "n_b_first", "ratio_a_first", "ratio_b_first", "first_slot_rate",
    "first_slot_rate_low", "first_slot_rate_high", "p_first_slot_bootstrap",
    "order_adjusted_ratio", "order_adjusted_ratio_low", "order_adjusted_ratio_high",
]  # fmt: skip
TEST_COLUMNS = [
    "model_name", "layout", "preprocessing", "design", "criterion", "comparison", "group_a",
    "group_b", "p_binomial", "p_binomial_holm", "p_binomial_bh", "p_bootstrap",
    "p_bootstrap_holm", "p_bootstrap_bh",
]  # fmt: skip

METHODS = """<p>Survival ratio = wins_a / (wins_a + wins_b): the chance that group a's face survives
given the crop keeps exactly one face; 0.5 is parity. Ties and background are counted, not in the
ratio. ratio_low/high is the reported interval (ratio_interval_method): a Wilson score interval on
the effective sample size ratio_effective_n, the number of independent composites worth the
subject-clustered (two-way cluster-robust) variance; it never collapses to a point, even when
every composite goes one way. Bootstrap intervals resample subjects (each face appears in many
composites) and are shown beside it; Wilson and Twitter's p &plusmn;
2&middot;sqrt(p(1&minus;p)/n) treat composites as independent and are too narrow when faces
repeat. Effect = ratio &minus; 0.5 with the reported interval. model_*: a crossed
random-effects logistic model (a random effect per face subject on each side, position fixed),
its population-averaged ratio and interval and the subject standard deviations (logit scale);
model_disagrees marks strata where its interval and the reported one do not overlap.</p>"""


@dataclass(frozen=True)
class StatsPage:
    """What the statistics page shows: the estimates, the forest plots (criterion -> PNG) and
    the survival tables used although they differ from their run summaries (run -> what
    differs)."""

    estimates: pd.DataFrame
    images: dict[str, bytes] = field(default_factory=dict)
    unverified: dict[str, list[str]] | None = None
    planning: str = ""


def unverified_note(unverified: dict[str, list[str]] | None) -> str:
    """A sentence naming survival tables used although they differ from their run summaries."""
    if not unverified:
        return ""
    runs = "; ".join(f"{run}: {', '.join(diffs)}" for run, diffs in sorted(unverified.items()))
    return (
        "These results come from survival tables that were modified after their runs "
        f"(used with --trust-modified). {runs}"
    )


def header(page: StatsPage) -> str:
    """Bootstrap settings and config hashes, the methods, and the strata where the model
    cross-check disagrees with the reported interval."""
    estimates = page.estimates
    meta = ""
    if len(estimates):
        first = estimates.iloc[0]
        meta = (
            f"<p>{int(first['replicates'])} bootstrap replicates (multiway Poisson, by subject; "
            f"variance correction {html.escape(str(first.get('bootstrap_correction', 'none')))}), "
            f"level {first['level']:.3g}, seed {int(first['seed'])}. Config hashes: "
            f"{html.escape(', '.join(sorted(set().union(*estimates['config_hashes']))))}.</p>"
        )
    disagree = (
        estimates[estimates["model_disagrees"].fillna(False).astype(bool)]
        if len(estimates) and "model_disagrees" in estimates
        else estimates.iloc[0:0]
    )
    flagged = (
        f"<p><strong>Methods disagree</strong> in {len(disagree)} strata (model interval and "
        f"reported interval do not overlap):</p>{frame_table(disagree, ESTIMATE_COLUMNS)}"
        if len(disagree)
        else ""
    )
    return meta + METHODS + flagged


def plots_section(page: StatsPage) -> str:
    return "".join(
        f"<h3>{html.escape(c)}</h3>" + img(png, c, data_criterion=c)
        for c, png in page.images.items()
    )


def estimates_section(page: StatsPage) -> str:
    return frame_table(page.estimates, ESTIMATE_COLUMNS)


def position_section(page: StatsPage) -> str:
    return note(
        "first_slot_rate: share of decisive composites won by the face drawn first (top/left). "
        "order_adjusted_ratio: mean of the two position-conditional ratios."
    ) + frame_table(page.estimates, POSITION_COLUMNS)


def tests_section(page: StatsPage) -> str:
    return note(
        f"Adjusted across all {len(page.estimates)} comparisons of the run (Holm: family-wise "
        "error; BH: false discovery rate). The exact binomial test ignores subject clustering; "
        "the bootstrap test does not."
    ) + frame_table(page.estimates, TEST_COLUMNS)


def planning_section(page: StatsPage) -> str:
    return page.planning or note("Not planned on this page: run cropaudit plan STATS_DIR.")


#: The page's sections, in order: the one list of its anchors.
SECTIONS: tuple[Section[StatsPage], ...] = (
    Section("plots", "Plots", plots_section),
    Section("estimates", "Estimates", estimates_section),
    Section("position-bias", "Position bias", position_section),
    Section("tests", "Tests against parity", tests_section),
    Section("planning", "Planning", planning_section),
)


def render_html(
    estimates: pd.DataFrame,
    images: dict[str, bytes],
    unverified: dict[str, list[str]] | None = None,
    planning: str = "",
) -> str:
    """The page as one HTML string; ``images`` maps criterion -> PNG bytes; ``unverified``
    (run -> what differs) puts a warning at the top; ``planning``: the planning section's body
    (:func:`cropaudit.report.plan_section.stats_planning_section`)."""
    page = StatsPage(estimates, images, unverified, planning)
    warning = unverified_note(unverified)
    return html_page(
        kind="stats",
        title="cropaudit statistics",
        heading="cropaudit: survival statistics",
        sections=SECTIONS,
        bodies=render_sections(SECTIONS, page),
        header=header(page),
        warnings=[f"Warning: {warning}"] if warning else [],
    )


def write_outputs(
    estimates: pa.Table,
    out_dir: str,
    unverified: dict[str, list[str]] | None = None,
    planning: str = "",
) -> str:
    """Write ``plots/<criterion>.png|svg`` and ``report.html`` under ``out_dir`` (``planning``:
    the planning section's body); returns the report path."""
    stats = StatsDir(out_dir)
    df = estimates.to_pandas()
    images = {}
    for criterion in criteria_order(df["criterion"]):
        figs = forest_plot(df, criterion)
        for fmt, data in figs.items():
            fileio.write_atomic(stats.plot(criterion, fmt), data)
        images[criterion] = figs["png"]
    above = fileio.dirname(out_dir.rstrip("/"))  # the page names its own folder, ``stats``
    page = relative_paths(render_html(df, images, unverified, planning), above, [out_dir])
    fileio.write_atomic(stats.report, page.encode("utf-8"))
    return stats.report
