"""The run report's sections (``cropaudit report``), each a function of the run's inputs, and
:data:`SECTIONS`, the one list of the page's anchors; the page itself is the page kit's skeleton
(:mod:`cropaudit.report.pagekit`), its figures the plot kit's (:mod:`cropaudit.report.plotkit`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from cropaudit.report.cropper_section import croppers_section
from cropaudit.report.detector import detector_section
from cropaudit.report.estimate_tables import Block, blocks, position_table, ratio_table
from cropaudit.report.findings_section import findings_section
from cropaudit.report.gallery import GalleryItem
from cropaudit.report.inputs import RunInputs
from cropaudit.report.pagekit import (
    Section,
    esc,
    frame_table,
    html_page,
    img,
    kv_table,
    note,
    render_sections,
    table,
)
from cropaudit.report.plan_section import planning_section
from cropaudit.report.plotkit import (
    comparison_label,
    forest_plot,
    interval_plot,
    table_interval_plot,
    varying_context,
)
from cropaudit.schemas.criteria import POINT
from cropaudit.schemas.survival import A_FIRST, B_FIRST, PAIRS, WINNERS
from cropaudit.stats.intervals import finite, reported_interval


def short_label(row: pd.Series, estimates: pd.DataFrame) -> str:
    """The row's comparison, naming only the context that varies across the run."""
    return comparison_label(row, varying_context(estimates))


# -- sections ------------------------------------------------------------------------------------


def design_section(inputs: RunInputs) -> str:
    c, s = inputs.config, inputs.summary
    first = inputs.survival.iloc[0] if len(inputs.survival) else None
    model = s.get("model") or (
        {k: first[k] for k in ("model_name", "model_hash", "model_source", "preprocessing")}
        if first is not None
        else {}
    )
    d = c.design
    if d.pairs:
        pairs = "; ".join(f"{a} vs {b}" for a, b in d.pairs)
    else:
        pair_rows = inputs.survival["design"] == PAIRS
        seen = sorted(inputs.survival.loc[pair_rows, "pair_id"].unique())
        pairs = "all unordered pairs of distinct groups" + (f": {'; '.join(seen)}" if seen else "")
    groups = s.get("groups") or {}
    versions = s.get("versions") or (first["versions"] if first is not None else "")
    rows = [
        ("experiment", f"{c.name} — {c.description}" if c.description else c.name),
        ("dataset", c.dataset or "–"),
        ("manifest", s.get("manifest") or c.manifest.path),
        (
            "manifest rows",
            f"{s.get('manifest_faces', '?')} faces used, "
            f"{s.get('manifest_dead_lettered', '?')} rows dead-lettered",
        ),
        ("groups", " × ".join(c.groups.attributes)),
        ("faces per group", ", ".join(f"{g}: {n}" for g, n in sorted(groups.items())) or "–"),
        ("allowed labels", json.dumps(c.groups.labels) if c.groups.labels else "any"),
        ("pairs", pairs),
        ("composites per pair", f"{d.composites_per_pair} ({d.order} order)"),
        (
            "controls",
            f"{', '.join(d.controls)} ({d.controls_per_group} per group)" if d.controls else "none",
        ),
        ("layout", f"{c.layout.kind} {json.dumps(c.layout.params(), sort_keys=True)}"),
        ("model spec", c.model.spec),
        ("model", model.get("model_name", "–")),
        ("model hash (sha256)", model.get("model_hash", "–")),
        ("model source", model.get("model_source", "–")),
        ("preprocessing", model.get("preprocessing", "–")),
        ("crop aspect ratios (h/w)", ", ".join(f"{r:g}" for r in c.crop.aspect_ratios)),
        ("design seed", d.seed),
        ("config hash", inputs.config_hash),
        ("runner", f"{s.get('runner', '?')}, {s.get('seconds', '?')} s"),
        ("versions", versions),
    ]
    return (
        "<details><summary>Config, model, seeds, hashes and versions of this run</summary>"
        + kv_table(rows)
        + "<details><summary>config.toml</summary><pre>"
        + esc(inputs.config_toml)
        + "</pre></details></details>"
    )


def counts_section(inputs: RunInputs) -> str:
    s, df = inputs.summary, inputs.survival
    overview = [
        ("composites planned", s.get("composites_expected", "?")),
        ("survival rows", s.get("survival_rows", len(df))),
        ("composites dead-lettered", s.get("composites_dead_lettered", "?")),
        ("all composites accounted for", s.get("all_composites_accounted", "?")),
        ("duplicate composite ids", s.get("duplicate_composite_ids", "?")),
        ("survival table sha256", s.get("survival_table_sha256", "?")),
    ]
    counters = s.get("beam_counters") or {}
    if counters:
        overview.append(("Beam counters", ", ".join(f"{k} {v}" for k, v in counters.items())))
    rows = []
    keys = ["design", "pair_id"]
    if "variant" in df.columns and df["variant"].nunique() > 1:
        keys.insert(0, "variant")
    for key, g in df.groupby(keys, sort=True):
        winners = g["point_winner"].value_counts()
        subjects = set(g["a_subject_id"]) | set(g["b_subject_id"])
        rows.append(
            [
                *key,
                len(g),
                len(subjects),
                int((g["position"] == A_FIRST).sum()),
                int((g["position"] == B_FIRST).sum()),
                *(int(winners.get(w, 0)) for w in WINNERS),
            ]
        )
    headers = [
        "design", "pair (a vs b)", "composites", "subjects", "a first", "b first",
        "point → a", "point → b", "tie", "background",
    ]  # fmt: skip
    if len(keys) == 3:
        headers = ["variant", *headers]
    return (
        kv_table(overview)
        + "<details><summary>Composites, subjects, slots and point winners per pair</summary>"
        + table(headers, rows)
        + "</details>"
    )


def dead_letter_section(inputs: RunInputs) -> str:
    dead = inputs.dead
    if dead.empty:
        return note("No dead letters: every manifest row, image and composite went through.")
    rows = []
    for (stage, reason), g in dead.groupby(["stage", "reason"], sort=True):
        example = g.iloc[0]
        detail = str(example["detail"])
        detail = detail if len(detail) <= 200 else detail[:200] + "…"
        rows.append([stage, reason, len(g), example["element_id"], detail])
    return note(
        "Every row, image or composite that could not go on, by stage and reason code "
        "(the full table is dead_letter/*.parquet in the run directory)."
    ) + table(["stage", "reason", "count", "example", "detail"], rows)


def survival_section(inputs: RunInputs) -> str:
    est = inputs.estimates
    parts = [note(inputs.stats_source)]
    if est is None or est.empty:
        return "".join(parts)
    first = est.iloc[0]
    parts.append(
        note(
            "Survival ratio = wins a / (wins a + wins b), the chance that group a's face survives "
            "when the cropper keeps exactly one face; 0.5 is parity; neither = ties and crops "
            f"that kept no face. Lines and intervals: {first['level']:.0%} subject-clustered "
            "(Wilson score on the effective number of composites); p (adjusted): the test that "
            "interval inverts, Holm-adjusted within its family; bootstrap p "
            f"({int(first['replicates'])} replicates, unadjusted) beside it."
        )
    )
    for block in blocks(est):
        png = forest_plot(block.rows, block.criteria[0], block.title)["png"]
        parts.append(
            block.heading()
            + img(png, f"survival ratio, {block.title}", data_criterion=block.criteria[0])
            + ratio_table(block.rows)
        )
    return "".join(parts)


def position_section(inputs: RunInputs) -> str:
    est = inputs.estimates
    if (est is None or est.empty) and (inputs.survival is None or inputs.survival.empty):
        return note("No pair composites: position bias is a question of pairs.")
    intro = note(
        "Position bias: the first-slot rate is the share of decisive composites won by the face "
        "drawn first (top for vertical_gap, left for horizontal), whatever its group; 0.5 means "
        "the slot does not matter. The design counterbalances order, so the survival ratios "
        "above are not confounded by it; the order-adjusted ratio averages the two "
        "position-conditional ratios."
    )
    if est is None or est.empty:
        return intro + raw_position_table(inputs.survival)
    parts = [intro]
    plotted = set()
    for block in blocks(est):
        if block.model not in plotted:  # each cropper's first criterion: the plot
            plotted.add(block.model)
            parts.append(position_plot(block, est))
        parts.append(block.heading("position") + position_table(block.rows))
    return "".join(parts)


def position_plot(block: Block, est: pd.DataFrame) -> str:
    rows = block.rows.reset_index(drop=True)
    cis = [reported_interval(r, "first_slot_rate") for _, r in rows.iterrows()]
    png = interval_plot(
        [short_label(r, est) for _, r in rows.iterrows()],
        list(rows["first_slot_rate"]),
        [lo for lo, _ in cis],
        [hi for _, hi in cis],
        title=f"{block.title}: share of decisive composites won by the first slot",
        xlabel="first-slot rate",
        reference_label="no position effect (0.5)",
    )
    return img(png, f"first-slot rate, {block.title}", data_criterion="position")


def raw_position_table(survival: pd.DataFrame) -> str:
    """First-slot wins of the salient point, counted from the survival table (no intervals)."""
    rows = []
    for (design, pair), g in survival.groupby(["design", "pair_id"], sort=True):
        decisive = g[g["point_winner"].isin(["a", "b"])]
        first = ((decisive["point_winner"] == "a") & (decisive["position"] == A_FIRST)) | (
            (decisive["point_winner"] == "b") & (decisive["position"] == B_FIRST)
        )
        n = len(decisive)
        rows.append([design, pair, n, int(first.sum()), first.sum() / n if n else float("nan")])
    return note("Counted from the survival table (no estimates, so no intervals).") + table(
        ["design", "pair", "decisive (point)", "won by first slot", "first-slot share"], rows
    )


def gaze_section(inputs: RunInputs) -> str:
    """Single-image (male-gaze) runs: :mod:`cropaudit.report.single_section`."""
    from cropaudit.report.single_section import single_section

    return single_section(inputs)


def sensitivity_section(inputs: RunInputs, criterion: str = POINT) -> str:
    df = inputs.survival
    if "variant" not in df.columns or df["variant"].nunique() < 2:
        return note(
            "One variant only (no `variant` column with several values in the survival table): "
            "nothing to compare. A sweep over pre-processing or model variants fills this section."
        )
    from cropaudit.stats import sensitivity

    try:
        survival = inputs.survival_table
        per_variant = sensitivity.variant_estimates(survival, criterion=criterion)
        flips = sensitivity.flip_rates(survival, criterion=criterion)
        by_axis = sensitivity.flip_rates_by_axis(survival, criterion=criterion)
    except Exception as exc:  # noqa: BLE001 - a failed analysis is reported, not fatal
        return note(f"Sensitivity analysis failed: {type(exc).__name__}: {exc}", "warn")
    parts = [
        note(
            f"The same composites under {df['variant'].nunique()} variants "
            f"({', '.join(map(str, sorted(df['variant'].unique())))}); criterion {criterion}. "
            "A survival ratio that moves across variants, or composites whose winner flips, "
            "means the finding depends on the variant."
        )
    ]
    if len(per_variant):
        labels = [
            f"{r['variant']}: {r['group_a']} vs {r['group_b']}" for _, r in per_variant.iterrows()
        ]
        png = table_interval_plot(
            labels,
            per_variant,
            "survival_ratio",
            title=f"{criterion}: survival ratio per variant, with interval",
            xlabel="survival ratio of group a (wins_a / (wins_a + wins_b))",
        )
        parts.append(img(png, f"survival ratio per variant, {criterion}", data_criterion="variant"))
    cols = sensitivity.VARIANT_COLUMNS
    parts.append("<h3>One estimate per variant</h3>")
    parts.append(frame_table(per_variant, cols))
    fcols = sensitivity.FLIP_COLUMNS
    parts.append("<h3>Flip rates</h3>")
    parts.append(
        note(
            "Per pair: samples rendered in at least two variants, and how many of them changed "
            "winner between variants."
        )
        + frame_table(flips, fcols)
    )
    if len(by_axis):
        acols = sensitivity.AXIS_FLIP_COLUMNS
        parts.append(
            note(
                "One axis at a time: each sample's base rendering against variants that differ "
                "from it in that axis only."
            )
            + frame_table(by_axis, acols)
        )
    return "".join(parts)


def gallery_section(
    items: Sequence[GalleryItem], problems: Sequence[str], requested: int, intro: str
) -> str:
    if requested <= 0:
        return note("Gallery turned off (--gallery 0).")
    legend = note(
        f"{intro} Each picture is the composite as the cropper saw it, untinted, with the "
        "salient point, the outlines of faces a and b and one crop box per aspect ratio; the "
        "saliency map (min-max normalised) is the panel beside it; the legend is in the "
        "picture."
    )
    figures = "".join(_figure(i, item) for i, item in enumerate(items, 1))
    failed = ""
    if problems:
        failed = note(f"{len(problems)} composite(s) could not be drawn: " + "; ".join(problems))
    return legend + failed + f"<div class='gallery'>{figures}</div>"


def _figure(i: int, item: GalleryItem) -> str:
    r = item.row
    check = (
        "re-scored: matches the recorded row"
        if item.reproduced
        else "re-scored result differs from the recorded row"
    )
    if "point_on" in r:  # a single image (schemas.single_survival)
        crops = ", ".join(f"{c['aspect_ratio']:g}→{c['kept']}" for c in _crops(r))
        caption = (
            f"<b>#{i} {esc(r['group'])}</b> (single image)<br>"
            f"{esc(r['subject_id'])} / {esc(r['image_id'])}<br>"
            f"point on <b>{esc(r['point_on'])}</b><br>"
            f"crops keep: {esc(crops)}<br><span class='note'>{esc(check)}</span>"
        )
        return _figure_html(r, item, caption)
    first = "a" if r["position"] == A_FIRST else "b"
    crops = ", ".join(f"{c['aspect_ratio']:g}→{c['winner']}" for c in _crops(r))
    margin = r.get("margin")
    margin_text = "–" if margin is None or not finite(margin) else f"{float(margin):+.4g}"
    caption = (
        f"<b>#{i} {esc(r['group_a'])} vs {esc(r['group_b'])}</b> ({esc(r['design'])})<br>"
        f"a: {esc(r['a_subject_id'])} / {esc(r['a_image_id'])}<br>"
        f"b: {esc(r['b_subject_id'])} / {esc(r['b_image_id'])}<br>"
        f"first slot: face {first} ({esc(r['position'])})<br>"
        f"point → <b>{esc(r['point_winner'])}</b>, margin {esc(margin_text)}<br>"
        f"crops: {esc(crops)}<br><span class='note'>{esc(check)}</span>"
    )
    return _figure_html(r, item, caption)


def _figure_html(r: dict[str, Any], item: GalleryItem, caption: str) -> str:
    alt = f"composite {r['composite_id']}"
    width = max(200, min(item.width, 480))
    return (
        f"<figure style='width:{width}px'>"
        + img(
            item.png,
            alt,
            cls="gallery-image",
            width=item.width,
            height=item.height,
            data_composite_id=item.composite_id,
        )
        + f"<figcaption>{caption}</figcaption></figure>"
    )


@dataclass(frozen=True)
class Gallery:
    """The gallery's drawn composites, what could not be drawn, how many were asked for, and
    the sentence that introduces them (:func:`cropaudit.report.gallery_for`)."""

    items: Sequence[GalleryItem] = ()
    problems: Sequence[str] = ()
    requested: int = 0
    intro: str = ""


@dataclass(frozen=True)
class RunPage:
    """What the run report renders: the run's inputs (estimates attached) and its gallery."""

    inputs: RunInputs
    gallery: Gallery = Gallery()


def _of_inputs(section):
    return lambda page: section(page.inputs)


def _gallery(page: RunPage) -> str:
    g = page.gallery
    return gallery_section(g.items, g.problems, g.requested, g.intro)


#: The run report's sections, in order: the one list of its anchors.
SECTIONS: tuple[Section[RunPage], ...] = (
    Section("findings", "Findings", _of_inputs(findings_section)),
    Section("survival-ratios", "Survival ratios", _of_inputs(survival_section)),
    Section("croppers", "Croppers side by side", _of_inputs(croppers_section)),
    Section("position-bias", "Position bias", _of_inputs(position_section)),
    Section("sensitivity", "Sensitivity", _of_inputs(sensitivity_section)),
    Section("planning", "Planning", _of_inputs(planning_section)),
    Section("face-or-body", "Face or body", _of_inputs(gaze_section)),
    Section("face-detector", "Face detector", _of_inputs(detector_section)),
    Section("gallery", "Gallery", _gallery),
    Section("counts", "Counts", _of_inputs(counts_section)),
    Section("dead-letters", "Dead letters", _of_inputs(dead_letter_section)),
    Section("design", "Design and provenance", _of_inputs(design_section)),
)


def render_page(page: RunPage) -> str:
    inputs = page.inputs
    c = inputs.config
    model = inputs.summary.get("model", {}).get("model_name", c.model.spec)
    header = (
        f"<p class='note'>Run {esc(inputs.run_dir)} · config {esc(inputs.config_hash[:12])} · "
        f"model {esc(model)}. Self-contained page: every figure is embedded.</p>"
    )
    return html_page(
        kind="report",
        title=f"cropaudit report: {c.name}",
        heading=f"cropaudit report: {c.name}",
        sections=SECTIONS,
        bodies=render_sections(SECTIONS, page),
        header=header,
        warnings=inputs.warnings,
    )


def _crops(row: dict[str, Any]) -> list[dict[str, Any]]:
    crops = row.get("crops")
    return [] if crops is None else list(crops)
