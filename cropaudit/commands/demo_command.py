"""``cropaudit demo [--out DIR]``: the main job on the embedded default."""

from __future__ import annotations

from cropaudit.commands import options as o


def main(args) -> int:
    from cropaudit.model.plugin import require_allowed
    from cropaudit.pipelines.demo_pipeline import run_demo

    require_allowed(args.models or (), args.allow_plugins)
    run_demo(
        args.out,
        pipeline_args=args.pipeline_args,
        with_stats=not args.no_stats,
        show_progress=not args.no_progress,
        overwrite=args.overwrite,
        models=args.models,
        design=args.design,
    )
    return 0


COMMAND = o.Command(
    "demo",
    "run the embedded default end to end (synthetic faces, built-in model)",
    (
        o.out("output directory", default="./cropaudit-demo"),
        o.overwrite(
            "write into a non-empty --out that is not a demo output (other files are kept)"
        ),
        o.flag("--no-stats", "stop after the survival table"),
        o.flag("--no-progress", "no progress bar on the terminal"),
        o.ALLOW_PLUGINS,
        o.arg(
            "--models",
            nargs="+",
            metavar="SPEC",
            help="croppers to compare on the same composites (e.g. baseline smartcrop "
            "opencv-spectral-residual); default: the demo config's one model",
        ),
        o.arg(
            "--design",
            choices=("pairs", "single"),
            default="pairs",
            help="pairs: pairs of synthetic faces (default); single: synthetic full-body "
            "figures, one per image, face or body (the male-gaze check)",
        ),
    ),
    main,
    pipeline_args=True,
)
