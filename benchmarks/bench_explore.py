"""Benchmark: the explorer's composite queries on survival tables of 10^4 to 10^6 rows.

Builds each table by replicating a demo run's survival rows with new composite and sample ids,
shuffled (Parquet, zstd, row groups of the audit writer's size), then times the queries a page asks
(:class:`cropaudit.explore.composites.SurvivalQueries`, DuckDB over the files): the first page
of one comparison, closest calls first; the same with every filter set (outcome, position,
|margin| range); the last page by id; and the rows of one composite (every cropper's). Prints
the median wall-clock and CPU seconds of ``--repeat`` runs per query and size (the first query
of each size, which reads the Parquet footers, is timed apart) and the machine's load.

    .venv/bin/python benchmarks/bench_explore.py [--run DEMO_OR_RUN] [--repeat 5]

Without ``--run`` it first writes a one-model demo (``cropaudit demo --no-stats``, about a
minute).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

SIZES = (10_000, 100_000, 1_000_000)


def replicated(table, rows: int):
    """``rows`` rows of ``table``, repeated, each copy's composite and sample ids made new
    (``ID~k``), in a shuffled order (the audit writes rows in no particular order)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    copies = -(-rows // table.num_rows)
    big = pa.concat_tables([table] * copies).slice(0, rows)
    copy = pa.array([str(i // table.num_rows) for i in range(rows)])
    for name in ("composite_id", "sample_id"):
        column = pc.binary_join_element_wise(big[name], copy, "~")
        big = big.set_column(big.schema.get_field_index(name), name, column)
    return big.take(np.random.default_rng(0).permutation(rows))


def write_like_the_audit(table, path: Path) -> None:
    """One Parquet part in zstd with row groups of the audit's size (``ROW_GROUP_BYTES`` of
    Arrow rows per group, as Beam's writer buffers them)."""
    import pyarrow.parquet as pq

    from cropaudit.transforms.write import ROW_GROUP_BYTES

    per_group = max(1, ROW_GROUP_BYTES * table.num_rows // max(1, table.nbytes))
    pq.write_table(table, path, compression="zstd", row_group_size=per_group)


def median_seconds(fn, repeat: int) -> str:
    """Median wall-clock and process CPU seconds of ``fn``, as ``wall/cpu`` (on a shared
    machine the CPU time says what the query itself costs)."""
    wall, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return f"{statistics.median(wall):.3f}/{statistics.median(cpu):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a finished run or demo folder (default: a new demo)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_explore_") as folder:  # removed at the end
        run(args, Path(folder))


def run(args: argparse.Namespace, work: Path) -> None:
    import pyarrow.compute as pc

    from cropaudit.explore.composites import Comparison, PageQuery, SurvivalQueries
    from cropaudit.report.inputs import load_run

    run_dir = args.run
    if run_dir is None:
        from cropaudit.cli import main as cli

        run_dir = str(work / "demo")
        assert cli(["demo", "--out", run_dir, "--no-stats", "--no-progress"]) == 0
    inputs = load_run(run_dir)
    table, ratios = inputs.survival_table, inputs.config.crop.aspect_ratios
    first = table.slice(0, 1).to_pylist()[0]
    pairs = table.filter(pc.equal(table["design"], "pairs")).slice(0, 1).to_pylist()[0]
    comparison = Comparison(
        pairs["model_name"], pairs["variant"], "pairs", "point", "pair",
        pairs["group_a"], pairs["group_b"],
    )  # fmt: skip
    print(f"demo table: {table.num_rows} rows; comparison {comparison.group_a} vs "
          f"{comparison.group_b} ({comparison.model_name}, point)")  # fmt: skip
    print(f"shared machine: load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'rows':>10} {'in stratum':>10} {'first':>12} {'page':>12} {'filtered':>12} "
          f"{'last page':>12} {'composite':>12}")  # fmt: skip
    print(f"{'':>21} seconds, wall/cpu, median of {args.repeat} (first: once, cold)")
    narrow = PageQuery(outcome="a", position="b_first", margin_min=0.01, margin_max=5.0)
    for rows in SIZES:
        folder = work / f"survival-{rows}"
        folder.mkdir()
        part = folder / "part-00000-of-00001.parquet"
        write_like_the_audit(replicated(table, rows), part)
        queries = SurvivalQueries([str(part)], ratios)
        cold = median_seconds(lambda q=queries: q.page(comparison, PageQuery()), 1)
        total = queries.page(comparison, PageQuery()).total
        last = PageQuery(order="id", offset=max(0, total - 50))
        cid = f"{first['composite_id']}~{rows // table.num_rows // 2}"
        timed = [
            median_seconds(fn, args.repeat)
            for fn in (
                lambda q=queries: q.page(comparison, PageQuery()),
                lambda q=queries: q.page(comparison, narrow),
                lambda q=queries, last=last: q.page(comparison, last),
                lambda q=queries, cid=cid: q.siblings(cid),
            )
        ]
        print(f"{rows:>10,} {total:>10,} {cold:>12} " + " ".join(f"{t:>12}" for t in timed))


if __name__ == "__main__":
    main()
