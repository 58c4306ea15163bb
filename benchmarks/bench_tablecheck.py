"""Benchmark: what verifying a survival table against its run summary costs a reader.

Writes a synthetic run directory (cropaudit.stats.synthetic_tables, ``--parts`` part files),
then times, side by side and ``--repeat`` times each, (1) the check ``cropaudit stats`` and
``report`` now run first (:meth:`cropaudit.rundir.RunDir.verified`: Parquet footers, the
sha256 of every part's bytes and the record's seal; rows are hashed only when a part's bytes
differ), (2) reading the table with pyarrow (what any reader pays anyway) and (3)
the run summary's row-level content hash (:func:`cropaudit.rundir.table_hash`).
Prints medians and the ratio of the check to the read.

    .venv/bin/python benchmarks/bench_tablecheck.py [--rows 500000] [--parts 4] [--repeat 3]
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from bench_args import bench_parser


def median_seconds(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    args = bench_parser(__doc__, rows=500_000, parts=4, repeat=3).parse_args()

    from cropaudit.rundir import read_table, table_hash
    from cropaudit.rundir.run_dir import write_run_dir
    from cropaudit.rundir.tablecheck import check, describe
    from cropaudit.stats.synthetic_tables import synthetic_survival

    work = Path(tempfile.mkdtemp(prefix="bench_tablecheck_"))
    per_part = args.rows // args.parts
    tables = [synthetic_survival(per_part, seed=i) for i in range(args.parts)]
    run = write_run_dir(tables, work / "run")
    folder = str(run / "survival")
    sha256 = table_hash(read_table(folder))
    recorded = describe(folder, sha256)
    size = sum(f.stat().st_size for f in (run / "survival").glob("*.parquet"))
    print(f"table: {recorded['rows']:,} rows in {args.parts} parts, {size / 2**20:.1f} MiB")

    assert check(folder, recorded, sha256).differences == []
    verify = median_seconds(lambda: check(folder, recorded, sha256), args.repeat)
    read = median_seconds(lambda: read_table(folder), args.repeat)
    hashed = median_seconds(lambda: table_hash(read_table(folder)), 1)
    print(f"verify against summary: {verify:.3f} s (median of {args.repeat})")
    print(f"read table (pyarrow):   {read:.3f} s (median of {args.repeat})")
    print(f"row-level content hash: {hashed:.3f} s (once)")
    print(f"verify / read = {verify / read:.2f}; verify / row hash = {verify / hashed:.3f}")


if __name__ == "__main__":
    main()
