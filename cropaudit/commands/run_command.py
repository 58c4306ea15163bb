"""``cropaudit run CONFIG --out DIR [--manifest M] [--model SPEC] [Beam options]``."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "run",
        help="run an audit experiment and write its survival table",
        description="Run the audit pipeline for CONFIG. Extra options (--runner, "
        "--direct_num_workers, --project ...) are passed to Beam.",
    )
    p.add_argument("config", help="experiment config (TOML), local or gs://")
    p.add_argument("--out", required=True, help="output directory, local or gs://")
    p.add_argument("--manifest", help="override manifest.path")
    p.add_argument("--model", help="override model.spec, e.g. fastgaze:PATH or keras:PATH")
    p.add_argument("--seed", type=int, help="override design.seed")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run in --out (other files there are kept)",
    )
    p.add_argument(
        "--allow-large-plan",
        action="store_true",
        help="start a plan estimated far beyond the local runner (a cluster is meant)",
    )
    p.add_argument("--quiet", action="store_true", help="print neither progress nor the summary")
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (it only shows on a terminal with the direct runner)",
    )
    p.set_defaults(func=main, accepts_pipeline_args=True)


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
    from cropaudit.pipelines.audit_pipeline import run_audit

    config = apply_overrides(config_mod.load(args.config), args)
    config_dir = None if args.manifest else fileio.dirname(args.config)
    run_audit(
        config,
        args.out,
        config_dir=config_dir,
        pipeline_args=args.pipeline_args,
        overwrite=args.overwrite,
        allow_large_plan=args.allow_large_plan,
        quiet=args.quiet,
        show_progress=not args.no_progress,
    )
    return 0
