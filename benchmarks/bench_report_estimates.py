"""Benchmark: the estimates a report computes in-process for a run without a statistics output
(:func:`cropaudit.stats.run_estimates.run_estimates`, no Beam) against the statistics stage
(:func:`cropaudit.pipelines.stats_pipeline.run_stats`, which the report used to launch) on the same
synthetic run (three groups, so ``group_vs_rest`` strata too), alternating, ``--repeat`` times
each. Prints the medians, their ratio, and whether the two gave the same counts and intervals.

    .venv/bin/python benchmarks/bench_report_estimates.py [--rows 200000] [--replicates 200]
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from bench_args import bench_parser


def main() -> None:
    args = bench_parser(__doc__, rows=200_000, replicates=200, repeat=2).parse_args()

    import numpy as np

    from cropaudit.pipelines.stats_pipeline import run_stats
    from cropaudit.rundir import StatsDir
    from cropaudit.rundir.run_dir import write_run_dir
    from cropaudit.schemas.estimates import KEY_FIELDS
    from cropaudit.stats.run_estimates import run_estimates
    from cropaudit.stats.synthetic_tables import synthetic_survival

    table = synthetic_survival(args.rows, groups=("A", "B", "C"), seed=1)
    tmp = Path(tempfile.mkdtemp(prefix="bench-report-estimates-"))
    run = write_run_dir(table, tmp / "run")
    in_process, stage = [], []
    for i in range(args.repeat):
        t = time.perf_counter()
        mine = run_estimates(table, replicates=args.replicates)
        in_process.append(time.perf_counter() - t)
        t = time.perf_counter()
        run_stats([str(run)], str(tmp / f"stats{i}"), replicates=args.replicates, render=False)
        stage.append(time.perf_counter() - t)
    theirs = StatsDir(str(tmp / "stats0")).estimates().to_pandas()
    mine, theirs = (d.sort_values(list(KEY_FIELDS)).reset_index(drop=True) for d in (mine, theirs))
    same = len(mine) == len(theirs) and all(
        np.allclose(mine[c].astype(float), theirs[c].astype(float), equal_nan=True)
        for c in ("wins_a", "wins_b", "ratio", "ratio_low", "ratio_high", "p_bootstrap_holm")
    )
    a, b = statistics.median(in_process), statistics.median(stage)
    print(
        f"{args.rows} rows x {args.replicates} replicates, {len(mine)} strata: in-process "
        f"median {a:.2f} s, run_stats median {b:.2f} s (in-process / stage = {a / b:.2f}); "
        f"same estimates: {same}"
    )


if __name__ == "__main__":
    main()
