"""``cropaudit report RUN_DIR``: one self-contained HTML page about a finished run.

Sections: the findings first (:mod:`cropaudit.report.findings_section`), then survival-ratio
interval plots and tables per cropper and group of criteria with identical winners
(:func:`cropaudit.report.plotkit.forest_plot`), the croppers side by side, position bias,
sensitivity across variants (when the survival table has several), planning (subjects and
composites for a target interval half-width, this run as the pilot), a gallery of close-call
composites re-rendered and re-scored with the run's own model, counts, dead letters by reason,
and last, collapsed, the design and provenance (config, model, seed, hashes, versions). Every
image is an embedded ``data:`` URI, so the page works offline and can be mailed as one file.
"""

from __future__ import annotations

import json
import sys

from cropaudit import fileio
from cropaudit.report.inputs import RunInputs, attach_estimates, candidate_stats_dirs, load_run
from cropaudit.report.pagekit import relative_paths
from cropaudit.rundir import ownership

__all__ = ["RunInputs", "build_report", "gallery_for", "load_run", "render_report"]

DEFAULT_GALLERY = 12


def gallery_for(inputs: RunInputs, n: int, model_spec: str | None = None):
    """(items, problems, intro) of the gallery: see :mod:`cropaudit.report.gallery`."""
    from cropaudit.model.registry import load_handler
    from cropaudit.report.gallery import build_gallery, pick_rows
    from cropaudit.transforms.manifests import load_faces

    intro = (
        f"The {n} composites with the smallest |margin| (a_max − b_max, the gap between the "
        "faces' best saliency scores), pairs design first: close calls are where a small bias "
        "decides the crop. Each is re-rendered from the run's config and manifest and re-scored "
        "with the run's model."
    )
    if inputs.single is not None:
        intro = (
            f"The first {n} single images by id, re-rendered from the run's config and manifest "
            "and re-scored with the run's model: face box, saliency map, salient point and crops."
        )
    if n <= 0:
        return [], [], intro
    config = inputs.config
    spec = model_spec or config.model.spec
    try:
        handler = load_handler(spec, config.model.preprocess_options())
    except Exception as exc:  # noqa: BLE001 - no model here: report the rest
        return [], [f"model {spec!r} could not be loaded: {exc} (pass --model SPEC)"], intro
    if not hasattr(handler, "to_grid"):
        return [], [f"{handler.name} is a box cropper: the gallery draws saliency maps"], intro
    uri = inputs.summary.get("manifest") or config.manifest.path
    try:
        faces, _ = load_faces(uri, config)
    except Exception as exc:  # noqa: BLE001
        return [], [f"manifest {uri} could not be read: {exc}"], intro
    by_id = {f.image_id: f for f in faces}
    table = inputs.survival if inputs.single is None else inputs.single.to_pandas()
    recorded = set(table.get("model_hash", []))
    problems = []
    if recorded and handler.content_hash not in recorded:
        problems.append(
            f"model {spec!r} (sha256 {handler.content_hash[:12]}) is not the model the run "
            "recorded; the drawings below may not match the survival table"
        )
    layout = json.dumps(config.layout.params(), sort_keys=True)
    rows = pick_rows(table, n, handler, layout)
    items, failed = build_gallery(rows, config, by_id, handler)
    return items, problems + failed, intro


def render_report(
    inputs: RunInputs, gallery: int = DEFAULT_GALLERY, model_spec: str | None = None
) -> str:
    """The page for ``inputs`` (estimates already attached) as an HTML string."""
    from cropaudit.report import page

    items, problems, intro = gallery_for(inputs, gallery, model_spec)
    return page.render_page(page.RunPage(inputs, page.Gallery(items, problems, gallery, intro)))


def build_report(
    run_dir: str,
    out: str = "report.html",
    *,
    stats_dir: str | None = None,
    gallery: int = DEFAULT_GALLERY,
    compute_stats: bool = True,
    replicates: int = 1000,
    model_spec: str | None = None,
    quiet: bool = False,
    trust_modified: bool = False,
) -> str:
    """Write the report of the finished run ``run_dir`` to ``out``; returns ``out``.

    Refuses a run without ``_SUCCESS`` or with a modified survival table (unless
    ``trust_modified``), and an ``out`` that is a folder or a file this command did not write.
    Estimates come from ``stats_dir``, else a statistics output beside the run, else
    (``compute_stats``) computed in-process and not kept
    (:func:`cropaudit.stats.run_estimates.run_estimates`).
    """
    mark = ownership.html_mark("report")
    ownership.check_replaceable(out, mark)  # before the work, and again when writing
    inputs = load_run(run_dir, trust_modified)
    attach_estimates(
        inputs,
        stats_dir,
        compute=compute_stats,
        replicates=replicates,
        quiet=quiet,
    )
    text = render_report(inputs, gallery, model_spec)
    manifest = inputs.summary.get("manifest") or inputs.config.manifest.path
    local = [inputs.run_dir, manifest, stats_dir or "", *candidate_stats_dirs(inputs.run_dir)]
    text = relative_paths(text, fileio.dirname(out), local)
    ownership.replace_own_file(out, text.encode("utf-8"), mark)
    if not quiet:
        print(f"report -> {out} ({len(text) / 1e6:.1f} MB)", file=sys.stderr)
    return out
