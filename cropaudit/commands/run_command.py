"""``cropaudit run CONFIG --out DIR [--manifest M] [--model SPEC] [Beam options]``."""

from __future__ import annotations

from cropaudit.commands import options as o


def apply_overrides(config, args):
    """The config with the command-line overrides applied (they change the config hash)."""
    if args.manifest:
        config = config.replace(manifest={"path": args.manifest})
    if args.model:
        config = config.replace(model={"spec": args.model})
    if args.seed is not None:
        config = config.replace(design={"seed": args.seed})
    return config


def main(args) -> int:
    from cropaudit import config as config_mod
    from cropaudit import fileio
    from cropaudit.model.plugin import require_allowed
    from cropaudit.pipelines.audit_pipeline import run_audit

    config = apply_overrides(config_mod.load(args.config), args)
    require_allowed(config.model.specs, args.allow_plugins)
    config_dir = None if args.manifest else fileio.dirname(args.config)
    run_audit(
        config,
        args.out,
        config_dir=config_dir,
        pipeline_args=args.pipeline_args,
        overwrite=args.overwrite,
        allow_large_plan=args.allow_large_plan,
        shared_model_copies=args.shared_model_copies,
        quiet=args.quiet,
        show_progress=not args.no_progress,
    )
    return 0


COMMAND = o.Command(
    "run",
    "run an audit experiment and write its survival table",
    (
        o.arg("config", help="experiment config (TOML), local or gs://"),
        o.out("output directory, local or gs://", required=True),
        o.arg("--manifest", help="override manifest.path"),
        o.model("override model.spec, e.g. fastgaze:PATH or keras:PATH"),
        o.seed("override design.seed"),
        o.overwrite("replace the run in --out (other files there are kept)"),
        o.allow_large_plan("start"),
        o.ALLOW_PLUGINS,
        o.arg(
            "--shared-model-copies",
            type=int,
            default=0,
            metavar="N",
            help="load each model N times per machine, shared by its worker processes (Beam's "
            "share_model_across_processes: on a GPU one copy saves its memory); default 0, one "
            "copy per process. Rows are the same either way",
        ),
        o.flag("--quiet", "print neither progress nor the summary"),
        o.flag(
            "--no-progress", "no progress bar (it only shows on a terminal with the direct runner)"
        ),
    ),
    main,
    description="Run the audit pipeline for CONFIG. Extra options (--runner, "
    "--direct_num_workers, --project ...) are passed to Beam.",
    pipeline_args=True,
)
