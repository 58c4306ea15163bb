"""``cropaudit demo [--out DIR]``: the main job on the embedded default."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="run the embedded default end to end (synthetic faces, built-in model)",
    )
    p.add_argument("--out", default="./cropaudit-demo", help="output directory")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="write into a non-empty --out that is not a demo output (other files are kept)",
    )
    p.add_argument("--no-stats", action="store_true", help="stop after the survival table")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on the terminal")
    p.add_argument(
        "--models",
        nargs="+",
        metavar="SPEC",
        help="croppers to compare on the same composites (e.g. baseline smartcrop "
        "opencv-spectral-residual); default: the demo config's one model",
    )
    p.set_defaults(func=main, accepts_pipeline_args=True)


def main(args) -> int:
    from cropaudit.pipelines.demo_pipeline import run_demo

    run_demo(
        args.out,
        pipeline_args=args.pipeline_args,
        with_stats=not args.no_stats,
        show_progress=not args.no_progress,
        overwrite=args.overwrite,
        models=args.models,
    )
    return 0
