"""``cropaudit plan RUN_DIR|STATS_DIR|DEMO_DIR --half-width 0.02``: subjects and composites an
audit needs, per pair, from a pilot's variance components."""

from __future__ import annotations

import argparse

from cropaudit.commands.options import add_criterion, add_trust_modified


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="how many subjects and composites reach a target interval half-width",
        description="From a pilot (a finished run, a statistics output of runs, or a demo "
        "folder), per pair: the reported interval's half-width now, the fewest subjects per "
        "group and composites per subject that reach --half-width, and the plateau (composites "
        "per subject beyond which more composites of the same faces shrink the interval by less "
        "than 5%; the floor those subjects allow). Prints the table and writes it to --out, "
        "else to STATS/plan.parquet when a statistics folder is given.",
    )
    parser.add_argument("pilot", metavar="RUN_DIR|STATS_DIR", help="the pilot's folder")
    parser.add_argument(
        "--half-width",
        type=float,
        required=True,
        metavar="H",
        help="target half-width of the reported survival-ratio interval (e.g. 0.02)",
    )
    parser.add_argument(
        "--level", type=float, help="interval level (default: the estimates' level, else 0.95)"
    )
    parser.add_argument(
        "--assurance",
        type=float,
        metavar="P",
        help="the assured plan reaches the target with this probability over the pilot's "
        "sampling error (default: cropaudit.stats.planning.ASSURANCE; the central plan about "
        "half the time)",
    )
    parser.add_argument("--out", metavar="FILE", help="write the table here (.parquet or .csv)")
    add_criterion(parser, "plan for")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing table file")
    add_trust_modified(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cropaudit.pipelines.plan_pipeline import format_plan, run_plan

    plan, written = run_plan(
        args.pilot,
        args.half_width,
        out=args.out,
        level=args.level,
        criteria=args.criteria,
        trust_modified=args.trust_modified,
        overwrite=args.overwrite,
        assurance=args.assurance,
    )
    level = plan["level"].iloc[0]
    print(
        f"plan for a {level:.0%} reported-interval half-width of {args.half_width:g} (assured: "
        f"reached with probability {plan['assurance'].iloc[0]:g} over the pilot's sampling "
        "error):"
    )
    print(format_plan(plan))
    if written:
        print(f"plan -> {written}")
    return 0
