"""``cropaudit demo``: the main job on the embedded default, end to end with no downloads."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from cropaudit import config as config_mod
from cropaudit.pipelines.audit_pipeline import run_audit
from cropaudit.pipelines.stats_pipeline import print_findings, run_stats
from cropaudit.rundir import ownership
from cropaudit.rundir.run_dir import INNER_RUN
from cropaudit.rundir.stats_dir import INNER_STATS, REPORT
from cropaudit.synthetic import write_face_set
from cropaudit.synthetic_figures import write_figure_set

#: The demo folder's own files; ``run/`` and ``stats/`` are outputs of their own inside it.
DEMO_OUTPUT = ownership.OutputKind(
    "demo",
    (REPORT, "faces/manifest.csv", "faces/images/*.jpg",
     "figures/manifest.csv", "figures/images/*.png"),
    inner=(INNER_RUN, INNER_STATS),
)  # fmt: skip
#: ``cropaudit demo --design``: the embedded config and the images it is run on, by design.
DEMO_DESIGNS = {
    "pairs": ("demo", lambda out, seed: write_face_set(out / "faces", seed=seed)),
    "single": ("demo_single", lambda out, seed: write_figure_set(out / "figures", seed=seed)),
}


def embedded_config(name: str = "demo") -> config_mod.ExperimentConfig:
    text = resources.files("cropaudit.experiments").joinpath(f"{name}.toml").read_text()
    return config_mod.loads(text)


def run_demo(
    out_dir: str,
    pipeline_args: list[str] | None = None,
    with_stats: bool = True,
    show_progress: bool = True,
    overwrite: bool = False,
    models: Sequence[str] | None = None,
    design: str = "pairs",
) -> dict:
    """Synthetic faces -> audit run -> statistics -> report, all under ``out_dir``; ``models``
    (first one as ``model.spec``, the rest as ``model.compare``) compares croppers. ``design``
    ``single`` runs the single-image design on synthetic full-body figures instead of pairs of
    faces (:data:`DEMO_DESIGNS`). A demo folder is rerun in place; any other non-empty folder
    needs ``overwrite``."""
    out = Path(out_dir)
    config_name, write_images = DEMO_DESIGNS[design]
    config = embedded_config(config_name)
    if models:
        config = config.replace(model={"spec": models[0], "compare": list(models[1:])})
    with ownership.writing(
        out_dir, DEMO_OUTPUT, overwrite=overwrite, config_hash=config.config_hash, rerun=True
    ):
        write_images(out, config.design.seed)
        summary = _demo(out, config, pipeline_args, with_stats, show_progress)
        ownership.finish(out_dir, DEMO_OUTPUT, config.config_hash)
    return summary


def _demo(out: Path, config, pipeline_args, with_stats: bool, show_progress: bool) -> dict:
    summary = run_audit(
        config,
        str(out / INNER_RUN),
        config_dir=str(out),
        pipeline_args=pipeline_args,
        overwrite=True,
        show_progress=show_progress,
    )
    if with_stats:
        stats_dir = out / INNER_STATS
        run_stats(
            [str(out / INNER_RUN)],
            str(stats_dir),
            replicates=500,
            pipeline_args=pipeline_args,
            overwrite=True,
        )
        print(f"statistics -> {stats_dir}/estimates, plots and {REPORT}")
        from cropaudit.report import build_report

        build_report(str(out / INNER_RUN), str(out / REPORT), stats_dir=str(stats_dir))
        print_findings(str(stats_dir))
    return summary
