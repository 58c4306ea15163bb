"""The statistics page ``cropaudit stats`` writes beside its estimates (``OUT/report.html``) and
the forest plots (``OUT/plots/<criterion>.png|svg``), built with the report's page and plot kits.

The page is a list of :class:`~cropaudit.report.pagekit.Section` entries (:data:`SECTIONS`),
each a function of :class:`StatsPage`: adding a section is one entry. It opens with the findings
the stage wrote to ``findings.json``; its tables show what a person reads (every column of every
row stays in ``estimates/*.parquet``), the methods and settings come last, collapsed.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa

from cropaudit import fileio
from cropaudit.report.estimate_tables import (
    blocks,
    comparison_text,
    interval_cell,
    position_table,
    ratio_table,
)
from cropaudit.report.findings_section import findings_html
from cropaudit.report.pagekit import (
    Section,
    html_page,
    img,
    note,
    relative_paths,
    render_sections,
    table,
)
from cropaudit.report.plotkit import criteria_order, forest_plot
from cropaudit.rundir.stats_dir import StatsDir

#: The model cross-check's columns as the page shows them (the rest are in estimates.parquet).
CROSS_CHECK = {
    "model_ratio": "model ratio", "model_low": "model low", "model_high": "model high",
    "model_sd_a": "subject SD a (logit)", "model_sd_b": "subject SD b (logit)",
    "model_status": "fit", "model_disagrees": "disagrees",
}  # fmt: skip
#: The tests' columns as the page shows them: the reported test first (its family, raw and
#: adjusted), then the exact binomial and the bootstrap ones beside.
TESTS = {
    "p_family": "family", "ratio_p": "p", "ratio_p_holm": "p (Holm)", "ratio_p_bh": "p (BH)",
    "p_binomial": "binomial p", "p_bootstrap": "bootstrap p",
    "p_bootstrap_holm": "bootstrap p (Holm)",
}  # fmt: skip

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
    #: ``findings.json`` as the stage wrote it (:mod:`cropaudit.stats.findings`), or None.
    findings: dict | None = None


def unverified_note(unverified: dict[str, list[str]] | None) -> str:
    """A sentence naming survival tables used although they differ from their run summaries."""
    if not unverified:
        return ""
    runs = "; ".join(f"{run}: {', '.join(diffs)}" for run, diffs in sorted(unverified.items()))
    return (
        "These results come from survival tables that were modified after their runs "
        f"(used with --trust-modified). {runs}"
    )


def provenance(page: StatsPage) -> str:
    """Bootstrap settings, config hashes and the methods, collapsed: the page's last section."""
    estimates = page.estimates
    meta = ""
    if len(estimates):
        first = estimates.iloc[0]
        meta = (
            f"<p>{int(first['replicates'])} bootstrap replicates (multiway Poisson, by subject; "
            f"variance correction {html.escape(str(first.get('bootstrap_correction', 'none')))}), "
            f"level {first['level']:.3g}, seed {int(first['seed'])}. Config hashes: "
            f"{html.escape(', '.join(sorted(set().union(*estimates['config_hashes']))))}. "
            "Every column of every row is in estimates/*.parquet beside this page.</p>"
        )
    return (
        f"<details><summary>Methods, settings and config hashes</summary>{meta}{METHODS}</details>"
    )


def plots_section(page: StatsPage) -> str:
    parts = [
        note(
            "Per criterion, the survival ratio of every comparison with its reported interval; "
            "p (adjusted): the test that interval inverts, Holm-adjusted within its family; "
            "bootstrap p beside it, unadjusted; neither = ties and crops that kept no face."
        )
    ]
    for block in blocks(page.estimates):
        first = block.criteria[0]
        png = page.images.get(first) if block.model is None else None
        png = png or forest_plot(block.rows, first, block.title)["png"]
        parts.append(
            block.heading() + img(png, block.title, data_criterion=first) + ratio_table(block.rows)
        )
    return "".join(parts)


def position_section(page: StatsPage) -> str:
    intro = note(
        "First-slot rate: share of decisive composites won by the face drawn first "
        "(top/left). Order-adjusted ratio: mean of the two position-conditional ratios."
    )
    tables = [b.heading("position") + position_table(b.rows) for b in blocks(page.estimates)]
    return intro + "".join(tables)


def _by_block(page: StatsPage, columns: dict[str, str], anchor: str, cells=None) -> str:
    """One table per block: design, comparison and the ``columns`` present."""
    parts = []
    for block in blocks(page.estimates):
        shown = [c for c in columns if c in block.rows]
        body = [
            [r["design"], comparison_text(r), *(cells(r) if cells else []), *(r[c] for c in shown)]
            for _, r in block.rows.iterrows()
        ]
        heads = ["design", "comparison", *(["ratio", "interval"] if cells else [])]
        parts.append(block.heading(anchor) + table([*heads, *(columns[c] for c in shown)], body))
    return "".join(parts)


def cross_check_section(page: StatsPage) -> str:
    estimates = page.estimates
    flagged = (
        int(estimates["model_disagrees"].fillna(False).astype(bool).sum())
        if len(estimates) and "model_disagrees" in estimates
        else 0
    )
    summary = note(
        "A crossed random-effects logistic model (a random effect per face subject on each "
        "side, position fixed): its population-averaged ratio and interval beside the reported "
        f"one. It disagrees (the intervals do not overlap) in {flagged} of "
        f"{len(estimates)} rows."
    )

    def reported(r):
        return [r["ratio"], interval_cell(r.get("ratio_low"), r.get("ratio_high"))]

    return summary + _by_block(page, CROSS_CHECK, "cross-check", reported)


def tests_section(page: StatsPage) -> str:
    return note(
        "p: the test against parity (0.5) that the reported interval inverts; Holm (family-wise "
        "error) and BH (false discovery rate) adjust it within its family (cropper, variant, "
        "criterion, design and kind of comparison; controls apart). The exact binomial test "
        "ignores subject clustering; the bootstrap test does not, but cannot go below "
        "1/(replicates + 1)."
    ) + _by_block(page, TESTS, "tests")


def findings_of(page: StatsPage) -> str:
    if page.findings is None:
        return note("No findings.json beside these estimates: run cropaudit stats again.")
    return findings_html(page.findings.get("findings", []))


def planning_section(page: StatsPage) -> str:
    return page.planning or note("Not planned on this page: run cropaudit plan STATS_DIR.")


#: The page's sections, in order: the one list of its anchors.
SECTIONS: tuple[Section[StatsPage], ...] = (
    Section("findings", "Findings", findings_of),
    Section("plots", "Survival ratios", plots_section),
    Section("position-bias", "Position bias", position_section),
    Section("tests", "Tests against parity", tests_section),
    Section("cross-check", "Model cross-check", cross_check_section),
    Section("planning", "Planning", planning_section),
    Section("methods", "Methods and provenance", provenance),
)


def render_html(
    estimates: pd.DataFrame,
    images: dict[str, bytes],
    unverified: dict[str, list[str]] | None = None,
    planning: str = "",
    findings: dict | None = None,
) -> str:
    """The page as one HTML string; ``images`` maps criterion -> PNG bytes; ``unverified``
    (run -> what differs) puts a warning at the top; ``planning``: the planning section's body
    (:func:`cropaudit.report.plan_section.stats_planning_section`); ``findings``: the
    contents of ``findings.json``."""
    page = StatsPage(estimates, images, unverified, planning, findings)
    warning = unverified_note(unverified)
    return html_page(
        kind="stats",
        title="cropaudit statistics",
        heading="cropaudit: survival statistics",
        sections=SECTIONS,
        bodies=render_sections(SECTIONS, page),
        header="",
        warnings=[f"Warning: {warning}"] if warning else [],
    )


def write_outputs(
    estimates: pa.Table,
    out_dir: str,
    unverified: dict[str, list[str]] | None = None,
    planning: str = "",
) -> str:
    """Write ``plots/<criterion>.png|svg`` and ``report.html`` under ``out_dir`` (``planning``:
    the planning section's body; the findings: ``findings.json`` there, when written);
    returns the report path."""
    stats = StatsDir(out_dir)
    found = None
    if fileio.exists(stats.findings):
        found = json.loads(fileio.read_bytes(stats.findings))
    df = estimates.to_pandas()
    images = {}
    for criterion in criteria_order(df["criterion"]):
        figs = forest_plot(df, criterion)
        for fmt, data in figs.items():
            fileio.write_atomic(stats.plot(criterion, fmt), data)
        images[criterion] = figs["png"]
    above = fileio.dirname(out_dir.rstrip("/"))  # the page names its own folder, ``stats``
    page = relative_paths(render_html(df, images, unverified, planning, found), above, [out_dir])
    fileio.write_atomic(stats.report, page.encode("utf-8"))
    return stats.report
