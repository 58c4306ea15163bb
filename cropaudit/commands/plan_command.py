"""``cropaudit plan RUN_DIR|STATS_DIR|DEMO_DIR --half-width 0.02``: subjects and composites an
audit needs, per pair, from a pilot's variance components."""

from __future__ import annotations

import argparse

from cropaudit.commands import options as o


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


COMMAND = o.Command(
    "plan",
    "how many subjects and composites reach a target interval half-width",
    (
        o.arg("pilot", metavar="RUN_DIR|STATS_DIR", help="the pilot's folder"),
        o.arg(
            "--half-width",
            type=float,
            required=True,
            metavar="H",
            help="target half-width of the reported survival-ratio interval (e.g. 0.02)",
        ),
        o.level("interval level (default: the estimates' level, else 0.95)"),
        o.arg(
            "--assurance",
            type=float,
            metavar="P",
            help="the assured plan reaches the target with this probability over the pilot's "
            "sampling error (default: cropaudit.stats.planning.ASSURANCE; the central plan about "
            "half the time)",
        ),
        o.out("write the table here (.parquet or .csv)", metavar="FILE"),
        o.criterion("plan for"),
        o.overwrite("replace an existing table file"),
        o.TRUST_MODIFIED,
    ),
    run,
    description="From a pilot (a finished run, a statistics output of runs, or a demo "
    "folder), per pair: the reported interval's half-width now, the fewest subjects per "
    "group and composites per subject that reach --half-width, and the plateau (composites "
    "per subject beyond which more composites of the same faces shrink the interval by less "
    "than 5%; the floor those subjects allow). Prints the table and writes it to --out, "
    "else to STATS/plan.parquet when a statistics folder is given.",
)
