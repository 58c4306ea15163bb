"""The "Findings" section both pages open with: the findings of :mod:`cropaudit.stats.findings`
in their own words, one line each, the verdict marked, grouped by cropper.

The statistics page shows what its stage wrote to ``findings.json``; the run report computes the
findings of its own rows (its estimates may come from a statistics folder that covers other runs
too) with the run's ``[analysis]`` settings.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any

from cropaudit.report.inputs import RunInputs
from cropaudit.report.pagekit import esc, note

#: A verdict as the page names it, before the finding's own words.
VERDICT_LABELS = {
    "disparity": "disparity",
    "parity": "parity",
    "inconclusive": "too little data",
}


def findings_html(items: Sequence[Mapping[str, Any]], width: float | None = None) -> str:
    """The section's body from finding records (:class:`~cropaudit.stats.findings.Finding` as a
    mapping, or a ``findings.json`` record)."""
    if not items:
        return note("No findings: there are no estimates to read them from.")
    counts = {v: sum(1 for f in items if f["verdict"] == v) for v in VERDICT_LABELS}
    band = f"0.5 ± {width:g}" if width is not None else "the parity band"
    parts = [
        note(
            f"{len(items)} findings: {counts['disparity']} disparities (the interval excludes "
            f"parity: 0.5 for a ratio, 0 for a difference), {counts['parity']} consistent with "
            f"parity (the interval inside {band}, or 0 ± the same width for a difference), "
            f"{counts['inconclusive']} with too little data to say. Each line: the estimate, its "
            "interval, the effective n and the p-value of the test that interval inverts, "
            "Holm-adjusted within its family. Details in the sections below."
        )
    ]
    by_model: dict[str, list[Mapping[str, Any]]] = {}
    for f in items:
        by_model.setdefault(str(f["model_name"]), []).append(f)
    for lines in by_model.values():
        texts = [str(f["text"]) for f in lines]
        head = shared_head(texts)
        if head:
            parts.append(f"<h3>{esc(head.rstrip(', '))}</h3>")
        rows = "".join(
            f"<li><span class='verdict-{esc(f['verdict'])}'>"
            f"{esc(VERDICT_LABELS.get(f['verdict'], f['verdict']))}</span> "
            f"{esc(text[len(head) :])}</li>"
            for f, text in zip(lines, texts, strict=True)
        )
        parts.append(f"<ul>{rows}</ul>")
    return "".join(parts)


def shared_head(texts: Sequence[str]) -> str:
    """The words every one of several lines starts with, up to a ", " (what the lines are
    about: the cropper and criterion), said once as a heading; "" when nothing is shared."""
    if len(texts) < 2:
        return ""
    common = os.path.commonprefix(list(texts))
    cut = common.rfind(", ")
    return common[: cut + 2] if cut > 0 else ""


def run_findings(inputs: RunInputs) -> list[dict[str, Any]]:
    """The findings of the run's own rows (pairs and single images), read with the run's
    ``[analysis]`` settings (:func:`cropaudit.stats.run_findings.run_findings`)."""
    from cropaudit.report.single_section import single_tables
    from cropaudit.stats.run_findings import run_findings as read

    analysis = inputs.config.analysis
    rates = differences = None
    if inputs.single is not None and inputs.single.num_rows:
        rates, differences = single_tables(inputs)
    items = read(
        inputs.estimates,
        primary_criterion=analysis.primary_criterion or None,
        parity_width=analysis.parity_width,
        aspect_ratios=tuple(inputs.config.crop.aspect_ratios),
        survival=inputs.survival_table,
        rates=rates,
        differences=differences,
    )
    return [dataclasses.asdict(f) for f in items]


def findings_section(inputs: RunInputs) -> str:
    """The run report's section."""
    items = run_findings(inputs)
    if not items:
        return note(inputs.stats_source or "No estimates: no findings.")
    return findings_html(items, inputs.config.analysis.parity_width)
