"""``cropaudit stats``: estimates, plots and an HTML report from finished runs' survival tables."""

from __future__ import annotations

import argparse

from cropaudit.commands import options as o


def column_map(items: list[str]) -> dict[str, str]:
    from cropaudit.errors import UserError

    out = {}
    for item in items:
        name, sep, column = item.partition("=")
        if not sep or not name or not column:
            raise UserError(f"--column {item!r}: expected NAME=COLUMN")
        out[name.strip()] = column.strip()
    return out


def run(args: argparse.Namespace) -> int:
    from cropaudit.pipelines.stats_pipeline import print_findings, run_stats, run_stats_table

    paths = args.survival_paths
    common = {
        "replicates": args.replicates,
        "level": args.level,
        "seed": args.seed,
        "bootstrap_correction": args.bootstrap_correction,
        "overwrite": args.overwrite,
        "model_max": args.model_max,
    }
    if len(paths) == 1 and paths[0].endswith((".parquet", ".csv")):
        path = run_stats_table(paths[0], args.out, column_map(args.column), **common)
    elif args.column:
        from cropaudit.errors import UserError

        raise UserError("--column applies to a plain .parquet/.csv table, not to run directories")
    else:
        path = run_stats(
            paths,
            args.out,
            criteria=args.criteria,
            trust_modified=args.trust_modified,
            pipeline_args=list(getattr(args, "pipeline_args", None) or []),
            **common,
        )
    print(path)
    print_findings(args.out)
    return 0


COMMAND = o.Command(
    "stats",
    "estimate survival ratios with subject-clustered bootstrap intervals",
    (
        o.arg(
            "survival_paths",
            nargs="+",
            metavar="SURVIVAL_PATH",
            help="run directory (or its survival/ or single_survival/ folder), or one plain table "
            "of composites "
            "(.parquet or .csv: a-subject, b-subject, position a_first/b_first, outcome "
            "a/b/tie/background; analysed in-process, strata = the estimates key fields it has)",
        ),
        o.out("output directory", required=True, metavar="DIR"),
        o.overwrite("replace an earlier statistics output in --out (other files there are kept)"),
        o.TRUST_MODIFIED,
        o.replicates("bootstrap replicates"),
        o.level("interval level", default=0.95),
        o.criterion("analyse"),
        o.seed("bootstrap seed", default=0),
        o.arg(
            "--bootstrap-correction",
            choices=("cgm", "none"),
            default="cgm",
            help="cgm (default): shrink the subject-clustered bootstrap to the two-way "
            "cluster-robust (Cameron-Gelbach-Miller) variance, since with crossed subjects it "
            "counts composite-level noise three times; none: plain bootstrap (conservative)",
        ),
        o.arg(
            "--model-max",
            type=int,
            default=200,
            metavar="N",
            help="fit the crossed random-effects logistic cross-check to strata with up to N "
            "decisive composites (default 200; 0: none); larger strata say why not",
        ),
        o.arg(
            "--column",
            action="append",
            default=[],
            metavar="NAME=COLUMN",
            help="for a plain table: the column holding a role (a_subject, b_subject, position, "
            "outcome; defaults a_subject_id, b_subject_id, position, outcome) or a key field "
            "(group_a, group_b, criterion ...); repeat for several",
        ),
    ),
    run,
    description="Read the survival tables of finished runs (directories with _SUCCESS) and "
    "write OUT/estimates/*.parquet, OUT/plots/ and OUT/report.html. Extra Beam options "
    "(--runner, --direct_num_workers ...) pass through to the pipeline.",
    pipeline_args=True,
)
