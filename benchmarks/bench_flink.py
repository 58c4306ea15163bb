"""The audit on a local Flink cluster against the in-memory DirectRunner, in one run.

Usage: python benchmarks/bench_flink.py [--per-pair N] [--repeats R]

Starts a local cluster (``cropaudit.engine.flink_local``: JobManager, TaskManager with 2 slots,
EXTERNAL SDK worker pool), then runs the same config (the embedded demo's layout and built-in
model, ``--per-pair`` composites per ordered pair: 12 x N composites) on ``direct``, and on Flink
at ``--parallelism`` 1 and 2, each --repeats times. Per run it prints:

- ``wall``: the whole ``run_audit`` call (job server start, staging, the job, output checks);
- ``start-up``: from the call until Flink accepted the job (JVM job server, artifact staging,
  the job server's jars uploaded to the cluster) — Flink runs only;
- ``job``: Flink's own duration of the job; ``composites/s`` = composites / job (Flink), or
  composites / wall (direct, whose start-up is negligible);
- peak RSS (VmHWM) of the TaskManager JVM and of the largest SDK worker process.

Figures are medians over the repeats; every run checks that the table's sha256 equals the
DirectRunner's. Needs Java and ``make flink-engine``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cropaudit  # noqa: E402,F401 - before TensorFlow: oneDNN on
from cropaudit.engine import flink_local  # noqa: E402
from cropaudit.pipelines.audit_pipeline import run_audit  # noqa: E402
from cropaudit.pipelines.demo_pipeline import embedded_config  # noqa: E402
from cropaudit.synthetic import write_face_set  # noqa: E402


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def descendants(pid: int) -> list[int]:
    """All processes below ``pid`` (from /proc/*/stat parent ids)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
        except (OSError, ValueError, IndexError):
            continue
    found, frontier = [], [pid]
    while frontier:
        kids = [p for p, parent in parents.items() if parent in frontier]
        found += kids
        frontier = kids
    return found


class Sampler(threading.Thread):
    """Peak RSS of the TaskManager and of the SDK workers; Flink's start time of the job."""

    def __init__(self, state: dict):
        super().__init__(daemon=True)
        self.procs = state["processes"]
        self.master = state["flink_master"]
        self.stop = threading.Event()
        self.taskmanager = 0.0
        self.worker = 0.0
        self.jobs: list[dict] = []

    def run(self) -> None:
        while not self.stop.wait(0.25):
            self.taskmanager = max(self.taskmanager, peak_rss_mb(self.procs["taskmanager"]["pid"]))
            for pid in descendants(self.procs["workerpool"]["pid"]):
                self.worker = max(self.worker, peak_rss_mb(pid))


def flink_jobs(master: str) -> list[dict]:
    with urllib.request.urlopen(f"http://{master}/jobs/overview", timeout=5) as r:
        return json.load(r)["jobs"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-pair", type=int, default=4, help="composites per ordered pair")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-flink-") as tmp:
        work = Path(tmp)
        manifest = write_face_set(work / "faces", seed=11, subjects_per_group=2)
        cfg = embedded_config().replace(
            name="bench-flink",
            design={"composites_per_pair": args.per_pair, "controls": []},
            manifest={"path": str(manifest)},
        )
        started = time.monotonic()
        cluster = flink_local.start(work / "cluster")
        print(f"cluster start: {time.monotonic() - started:.1f} s ({cluster.flink_master})")
        state = flink_local.read_state(cluster.folder)
        rows: dict[str, list[dict]] = {}
        reference = None
        try:
            plans = [("direct", None)] + [
                (f"flink p={n}", cluster.pipeline_args(parallelism=n)) for n in (1, 2)
            ]
            for _ in range(args.repeats):
                for name, pipeline_args in plans:
                    before = {j["jid"] for j in flink_jobs(cluster.flink_master)}
                    sampler = Sampler(state)
                    sampler.start()
                    t0_epoch, t0 = time.time(), time.monotonic()
                    out = work / "runs" / name.replace(" ", "").replace("=", "")
                    summary = run_audit(
                        cfg, str(out), quiet=True, overwrite=True, pipeline_args=pipeline_args
                    )
                    wall = time.monotonic() - t0
                    sampler.stop.set()
                    sampler.join()
                    reference = reference or summary["survival_table_sha256"]
                    assert summary["survival_table_sha256"] == reference, name
                    n = summary["composites_expected"]
                    row = {"wall": wall, "n": n}
                    new = [j for j in flink_jobs(cluster.flink_master) if j["jid"] not in before]
                    if new:
                        (job,) = new
                        row["start-up"] = job["start-time"] / 1000 - t0_epoch
                        row["job"] = job["duration"] / 1000
                        row["rate"] = n / row["job"]
                        row["tm_rss"] = sampler.taskmanager
                        row["worker_rss"] = sampler.worker
                    else:
                        row["rate"] = n / wall
                    rows.setdefault(name, []).append(row)
                    print(name, {k: round(v, 2) for k, v in row.items()}, flush=True)
        finally:
            flink_local.stop(cluster.folder)

    def med(name: str, key: str) -> float:
        return statistics.median(r[key] for r in rows[name])

    n = rows["direct"][0]["n"]
    print(f"\n{n} composites, medians over {args.repeats} run(s); tables identical: {reference}")
    print(
        f"{'runner':<10} {'wall s':>8} {'start-up s':>11} {'job s':>7} {'comp/s':>8} "
        f"{'TM peak MB':>11} {'SDK worker peak MB':>19}"
    )
    for name in rows:
        flink = "job" in rows[name][0]
        cells = [f"{med(name, 'wall'):8.1f}"]
        cells += [
            f"{med(name, k):>{w}.1f}" if flink else f"{'-':>{w}}"
            for k, w in (("start-up", 11), ("job", 7))
        ]
        cells.append(f"{med(name, 'rate'):8.2f}")
        cells += [
            f"{med(name, k):>{w}.0f}" if flink else f"{'-':>{w}}"
            for k, w in (("tm_rss", 11), ("worker_rss", 19))
        ]
        print(f"{name:<10} " + " ".join(cells))
    direct = med("direct", "rate")
    for name in rows:
        if name != "direct":
            print(
                f"{name}: {med(name, 'rate') / direct:.2f}x the DirectRunner's composites/s "
                f"(job only), {med('direct', 'wall') / med(name, 'wall'):.2f}x its wall time"
            )


if __name__ == "__main__":
    sys.exit(main())
