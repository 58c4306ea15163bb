"""Benchmark: the whole Beam statistics stage, a baseline revision against the working tree, side
by side in one run (the machine is shared and noisy, so runs alternate and medians are quoted).

Writes one synthetic run directory (cropaudit.stats.synthetic_tables: 1,000,000 composites,
2 groups, each face in ~20 composites, point + one crop criterion, so 2,000,000 stratum rows),
then runs ``run_stats`` (DirectRunner, 1,000 replicates) on it ``--repeats`` times for each source
tree, each in a fresh interpreter whose ``cropaudit`` package is laid out from that tree (a
``git archive`` of ``--baseline`` for the old code). Prints each run's time inside ``run_stats``
(imports excluded), the medians, their ratio, and checks both trees wrote the same ratios and
counts.

    .venv/bin/python benchmarks/bench_stats_stage.py [--baseline 89e5fab] [--rows 1000000]
        [--replicates 1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: pyproject's package-dir: the folders that live under the ``cropaudit`` namespace.
MAPPED = ("pipelines", "transforms", "model", "schemas", "experiments")

CHILD = """
import json, sys, time
# The venv's editable install would map cropaudit to this checkout: drop its finder so that
# PYTHONPATH's tree is the one imported.
ours = lambda f: "__editable__" not in getattr(f, "__module__", "")
sys.meta_path[:] = [f for f in sys.meta_path if ours(f)]
sys.path_hooks[:] = [h for h in sys.path_hooks if ours(h)]
sys.path_importer_cache.clear()
import importlib
import pandas as pd
try:  # the stage's module before and after the redesign's renames
    stage = importlib.import_module("cropaudit.pipelines.stats_pipeline")
except ImportError:
    stage = importlib.import_module("cropaudit.pipelines.stats")
run, out, replicates = sys.argv[1], sys.argv[2], int(sys.argv[3])
t = time.perf_counter()
stage.run_stats([run], out, replicates=replicates)
elapsed = time.perf_counter() - t
df = pd.read_parquet(f"{out}/estimates").sort_values(["criterion", "comparison"])
print(json.dumps({"seconds": elapsed, "module": stage.__file__,
                  "n": df["n"].tolist(), "ratio": df["ratio"].tolist(),
                  "bca": df["ratio_bca_low"].tolist()}))
"""


def layout(source: Path, target: Path) -> Path:
    """A ``cropaudit`` package tree under ``target`` from a checkout-shaped ``source``."""
    shutil.copytree(source / "cropaudit", target / "cropaudit")
    for name in MAPPED:
        if (source / name).is_dir():
            shutil.copytree(source / name, target / "cropaudit" / name)
    return target


def baseline_tree(rev: str, work: Path) -> Path:
    data = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True)
    src = work / f"src-{rev}"
    with tarfile.open(fileobj=io.BytesIO(data.stdout)) as tar:
        tar.extractall(src, filter="data")
    return layout(src, work / f"pkg-{rev}")


def run_once(pkg: Path, run: Path, out: Path, replicates: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(pkg)}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(run), str(out), str(replicates)],
        env=env,
        cwd=pkg,  # not the checkout: its cropaudit/ folder would shadow PYTHONPATH
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="89e5fab", help="git revision of the old stage")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--replicates", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()

    from cropaudit.rundir.run_dir import write_run_dir
    from cropaudit.stats.synthetic_tables import synthetic_survival

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_stats_stage_"))
    subjects = max(10, args.rows // 20)
    t = time.perf_counter()
    table = synthetic_survival(args.rows, subjects_per_group=subjects, aspect_ratios=(0.56,))
    run = write_run_dir(table, work / "run")
    del table
    print(f"synthetic table: {args.rows:,} rows, {2 * subjects:,} subjects, "
          f"{time.perf_counter() - t:.1f} s -> {run}")  # fmt: skip
    trees = {
        f"baseline {args.baseline}": baseline_tree(args.baseline, work),
        "working tree": layout(ROOT, work / "pkg-working"),
    }
    times: dict[str, list[float]] = {name: [] for name in trees}
    results = {}
    for i in range(args.repeats):
        for name, pkg in trees.items():
            res = run_once(pkg, run, work / f"out-{i}-{name.split()[0]}", args.replicates)
            times[name].append(res["seconds"])
            results[name] = res
            print(f"repeat {i + 1} {name:20s} {res['seconds']:6.1f} s  ({res['module']})")
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    for name, m in medians.items():
        print(f"median {name:20s} {m:6.1f} s over {args.repeats} runs")
    old, new = medians.values()
    print(f"speed-up {old / new:.2f}x ({args.rows:,} rows, {args.replicates} replicates)")
    a, b = results.values()
    same = a["n"] == b["n"] and a["ratio"] == b["ratio"]
    print(f"same counts and ratios in both trees: {same}; BCa lows equal: {a['bca'] == b['bca']}")


if __name__ == "__main__":
    main()
