"""Plots and a self-contained HTML report (images as base64 data URIs) of an estimates table."""

from __future__ import annotations

import base64
import html

import pandas as pd
import pyarrow as pa

from cropaudit import fileio, ownership
from cropaudit.stats.plots import forest_plot

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


def _table(df: pd.DataFrame, columns: list[str]) -> str:
    return df[columns].to_html(index=False, float_format=lambda x: f"{x:.4g}", na_rep="–")


def unverified_note(unverified: dict[str, list[str]] | None) -> str:
    """A sentence naming survival tables used although they differ from their run summaries."""
    if not unverified:
        return ""
    runs = "; ".join(f"{run}: {', '.join(diffs)}" for run, diffs in sorted(unverified.items()))
    return (
        "These results come from survival tables that were modified after their runs "
        f"(used with --trust-modified). {runs}"
    )


def render_html(
    estimates: pd.DataFrame,
    images: dict[str, bytes],
    unverified: dict[str, list[str]] | None = None,
    sections: str = "",
) -> str:
    """The report as one HTML string; ``images`` maps criterion -> PNG bytes; ``unverified``
    (run -> what differs) puts a warning at the top; ``sections`` (HTML) goes at the end."""
    warning = unverified_note(unverified)
    warning = f"<p><strong>Warning:</strong> {html.escape(warning)}</p>" if warning else ""
    first = estimates.iloc[0] if len(estimates) else None
    meta = (
        ""
        if first is None
        else (
            f"<p>{int(first['replicates'])} bootstrap replicates (multiway Poisson, by subject; "
            f"variance correction {html.escape(str(first.get('bootstrap_correction', 'none')))}), "
            f"level {first['level']:.3g}, seed {int(first['seed'])}. Config hashes: "
            f"{html.escape(', '.join(sorted(set().union(*estimates['config_hashes']))))}.</p>"
        )
    )
    figs = "".join(
        f"<h3>{html.escape(c)}</h3><img alt='{html.escape(c)}' "
        f"src='data:image/png;base64,{base64.b64encode(png).decode()}'/>"
        for c, png in images.items()
    )
    disagree = (
        estimates[estimates["model_disagrees"].fillna(False).astype(bool)]
        if len(estimates) and "model_disagrees" in estimates
        else estimates.iloc[0:0]
    )
    flagged = (
        f"<p><strong>Methods disagree</strong> in {len(disagree)} strata (model interval and "
        f"reported interval do not overlap):</p>{_table(disagree, ESTIMATE_COLUMNS)}"
        if len(disagree)
        else ""
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8">{ownership.html_mark("stats")}<title>cropaudit statistics</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #ccc;padding:2px 6px}}img{{max-width:100%}}</style></head><body>
<h1>cropaudit: survival statistics</h1>{warning}{meta}
<p>Survival ratio = wins_a / (wins_a + wins_b): the chance that group a's face survives given the
crop keeps exactly one face; 0.5 is parity. Ties and background are counted, not in the ratio.
ratio_low/high is the reported interval (ratio_interval_method): a Wilson score interval on the
effective sample size ratio_effective_n, the number of independent composites worth the
subject-clustered (two-way cluster-robust) variance; it never collapses to a point, even when
every composite goes one way. Bootstrap intervals resample subjects (each face appears in many
composites) and are shown beside it; Wilson and Twitter's p &plusmn;
2&middot;sqrt(p(1&minus;p)/n) treat composites as independent and are too narrow when faces
repeat. Effect = ratio &minus; 0.5 with the reported interval. model_*: a crossed
random-effects logistic model (a random effect per face subject on each side, position fixed),
its population-averaged ratio and interval and the subject standard deviations (logit scale);
model_disagrees marks strata where its interval and the reported one do not overlap.</p>{flagged}
<h2>Plots</h2>{figs}
<h2>Estimates</h2>{_table(estimates, ESTIMATE_COLUMNS)}
<h2>Position bias</h2><p>first_slot_rate: share of decisive composites won by the face drawn
first (top/left). order_adjusted_ratio: mean of the two position-conditional ratios.</p>
{_table(estimates, POSITION_COLUMNS)}
<h2>Tests against parity</h2><p>Adjusted across all {len(estimates)} comparisons of the run
(Holm: family-wise error; BH: false discovery rate). The exact binomial test ignores subject
clustering; the bootstrap test does not.</p>{_table(estimates, TEST_COLUMNS)}
{sections}</body></html>
"""


def write_outputs(
    estimates: pa.Table,
    out_dir: str,
    unverified: dict[str, list[str]] | None = None,
    sections: str = "",
) -> str:
    """Write ``plots/<criterion>.png|svg`` and ``report.html`` under ``out_dir`` (``sections``:
    HTML appended to the page); returns the report path."""
    df = estimates.to_pandas()
    images = {}
    for criterion in sorted(df["criterion"].unique()) if len(df) else []:
        figs = forest_plot(df, criterion)
        for fmt, data in figs.items():
            fileio.write_atomic(fileio.join(out_dir, "plots", f"{criterion}.{fmt}"), data)
        images[criterion] = figs["png"]
    path = fileio.join(out_dir, "report.html")
    fileio.write_atomic(path, render_html(df, images, unverified, sections).encode("utf-8"))
    return path
