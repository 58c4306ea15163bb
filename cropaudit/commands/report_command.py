"""``cropaudit report RUN_DIR [--stats DIR] [--out report.html] [--gallery N]``."""

from __future__ import annotations

import argparse

from cropaudit.commands import options as o


def run(args: argparse.Namespace) -> int:
    from cropaudit.errors import UserError
    from cropaudit.report import build_report

    if args.gallery < 0:
        raise UserError("--gallery must be 0 or more")
    path = build_report(
        args.run_dir,
        args.out,
        stats_dir=args.stats,
        gallery=args.gallery,
        compute_stats=not args.no_compute,
        replicates=args.replicates,
        model_spec=args.model,
        quiet=args.quiet,
        trust_modified=args.trust_modified,
    )
    if not args.quiet:
        print(path)
    return 0


COMMAND = o.Command(
    "report",
    "one self-contained HTML page about a finished run",
    (
        o.arg("run_dir", metavar="RUN_DIR", help="finished run directory (_SUCCESS)"),
        o.arg("--stats", metavar="DIR", help="output directory of `cropaudit stats`"),
        o.out("the HTML file to write", default="report.html"),
        o.arg(
            "--gallery",
            type=int,
            default=12,
            metavar="N",
            help="composites in the gallery, smallest |margin| first (0: none; default 12)",
        ),
        o.replicates("bootstrap replicates when estimates have to be computed (default 1000)"),
        o.flag(
            "--no-compute", "never compute estimates: without a statistics output, leave them out"
        ),
        o.model(
            "model for the gallery when the recorded spec is not usable here "
            "(e.g. fastgaze:PATH moved); the recorded hash is checked",
            metavar="SPEC",
        ),
        o.TRUST_MODIFIED,
        o.flag("--quiet", "print nothing on success"),
    ),
    run,
    description="Write one HTML page (every image embedded, works offline) about the "
    "finished run RUN_DIR: design, counts, dead letters, survival-ratio interval plots, "
    "position bias, sensitivity across variants, and a gallery of close-call composites "
    "re-rendered with the saliency map, salient point and crop boxes drawn over them. "
    "Estimates come from --stats DIR, else from RUN_DIR/stats or RUN_DIR/../stats when "
    "they were computed from this run, else they are computed now (not kept).",
)
