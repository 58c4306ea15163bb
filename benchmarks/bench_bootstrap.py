"""Benchmark: subject-clustered bootstrap (1,000 replicates) over a 1,000,000-row survival table.

Writes a synthetic run directory (cropaudit.stats.synthetic_tables; 2 groups, each face in ~20
composites, point + one crop criterion), then times either the whole statistics pipeline
(``--mode pipeline``: DirectRunner in-memory, Parquet in, estimates/plots/report out) or the pure
streaming core alone (``--mode core``: SufficientStats over the same rows in 100k-row batches).
The accumulators also hold one row per distinct subject pair (~1 per composite here, 24 bytes
each) for the bootstrap variance correction, which is included in the timings.
Prints wall time and peak resident memory (ru_maxrss of this process and of its children).

    .venv/bin/python benchmarks/bench_bootstrap.py [--rows 1000000] [--replicates 1000]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np


def peak_rss_mib() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, kids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--replicates", type=int, default=1000)
    parser.add_argument("--mode", choices=("pipeline", "core"), default="pipeline")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("pipeline_args", nargs="*", help="extra Beam options (after --)")
    args = parser.parse_args()

    from cropaudit.rundir.run_dir import write_run_dir
    from cropaudit.stats.synthetic_tables import synthetic_survival

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_bootstrap_"))
    subjects = max(10, args.rows // 20)  # each face in ~20 composites
    t = time.perf_counter()
    table = synthetic_survival(args.rows, subjects_per_group=subjects, aspect_ratios=(0.56,))
    run = write_run_dir(table, work / "run")
    print(
        f"synthetic table: {args.rows:,} rows, {2 * subjects:,} subjects, "
        f"{time.perf_counter() - t:.1f} s -> {run}"
    )

    t = time.perf_counter()
    if args.mode == "pipeline":
        del table
        from cropaudit.pipelines.stats_pipeline import run_stats
        from cropaudit.rundir import StatsDir

        run_stats(
            [str(run)],
            str(work / "out"),
            replicates=args.replicates,
            pipeline_args=args.pipeline_args,
        )
        elapsed = time.perf_counter() - t
        df = StatsDir(str(work / "out")).estimates().to_pandas()
        cols = ["criterion", "n", "n_cells", "ratio", "ratio_bca_low", "ratio_bca_high"]
        print(df[[*cols, "ratio_boot_shrink", "bootstrap_correction"]].to_string())
    else:
        from cropaudit.stats.bootstrap import OUTCOME_CODE, POSITION_CODE, SufficientStats
        from cropaudit.stats.stratum import estimate_stratum
        from cropaudit.stats.weights import WeightCache

        a = table["a_subject_id"].to_numpy(zero_copy_only=False).astype(object)
        b = table["b_subject_id"].to_numpy(zero_copy_only=False).astype(object)
        pos = np.array([POSITION_CODE[p] for p in table["position"].to_pylist()])
        out = np.array([OUTCOME_CODE[w] for w in table["point_winner"].to_pylist()])
        del table
        t = time.perf_counter()
        stats = SufficientStats(args.replicates)
        cache = WeightCache(args.replicates, 0)
        for start in range(0, args.rows, 100_000):
            sl = slice(start, start + 100_000)
            stats.add_batch(a[sl], b[sl], pos[sl], out[sl], cache)
        est = estimate_stratum(stats)
        elapsed = time.perf_counter() - t
        keys = ("n", "n_cells", "ratio", "ratio_bca_low", "ratio_bca_high", "ratio_boot_shrink")
        print({k: est[k] for k in keys})
    own, kids = peak_rss_mib()
    print(
        f"mode={args.mode} rows={args.rows:,} replicates={args.replicates}: "
        f"{elapsed:.1f} s; peak RSS {own:.0f} MiB (children {kids:.0f} MiB)"
    )


if __name__ == "__main__":
    main()
