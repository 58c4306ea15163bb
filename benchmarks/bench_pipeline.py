"""Throughput and memory of the whole audit pipeline (``run_audit`` on Beam's local runner).

Usage: python benchmarks/bench_pipeline.py [--part a b c] [options]; --help lists them.

(a) end to end vs bare model, on a synthetic face set in the ``vertical_gap`` 583x3000 layout with
    FastGaze from ../shared (or --model). "End to end" times whole ``run_audit`` calls (manifest
    validation, pipeline construction, model load, render, predict, crops, Parquet writes,
    output verification). Two sizes are run, --n and --n0: ``wall`` is N / time of the N run
    (fixed start-up included); ``steady`` is (N - N0) / (t_N - t_N0), the throughput once the
    pipeline runs, with the fixed cost t_N0 - N0 / steady reported apart. "Bare model" renders
    and pre-processes the same N composites once, outside the pipeline, and times only the
    model's batched ``predict`` over them at the pipeline's batch size (config model.batch_size).
    Target: steady / bare >= 0.75.
(b) 1 vs 2 workers: the same two runs with the default in-memory runner and with
    ``--direct_num_workers=2 --direct_running_mode=multi_processing``; speed-up of each figure.
(c) peak memory at several sizes (default 1k, 10k, 100k composites), each size in a fresh
    subprocess: the child's own peak RSS (getrusage RUSAGE_SELF), its children's (RUSAGE_CHILDREN:
    the largest worker subprocess; a helper forked by the child, e.g. by a library probing the
    system, reports the child's RSS at the fork) and the peak of the whole process tree's summed
    RSS, sampled from /proc every 0.1 s by this process (the figure for multi-process runs).
    Defaults to the built-in ``baseline`` model on a small
    ``horizontal`` layout (height 64, model box 64), because 100k FastGaze composites take ~40 min
    here; --rss-model/--rss-layout choose others. Target: RSS(largest) / RSS(previous size)
    <= 1.10 for 100k vs 10k.

Figures are medians over --repeats runs after one untimed warm-up run (a and b); (c) runs each
size once. Every run writes to a fresh temporary folder; nothing outside it is touched.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEFAULT_VXM = Path(__file__).resolve().parents[2] / "shared" / "data" / "fastgaze" / "fastgaze.vxm"
#: Composites per unit of ``composites_per_pair``: 4 groups -> 6 pairs, both orders.
PER_SAMPLE = 12
TWO_WORKERS = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]


# -- shared set-up ------------------------------------------------------------------------------


def face_set(root: Path, subjects_per_group: int) -> Path:
    from cropaudit.synthetic import write_face_set

    return write_face_set(root / "faces", seed=11, subjects_per_group=subjects_per_group)


def layout_section(kind: str, height: int) -> dict:
    if kind == "vertical_gap":  # the WACV-2022 583x3000 layout (the demo config's values)
        return {"kind": "vertical_gap", "width": 583, "face_height": 887, "gap_height": 1226}
    return {"kind": "horizontal", "height": height, "gap": 0}


def make_config(
    manifest: Path, n: int, spec: str, layout: dict, box: int | None, batch: int | None = None
):
    """The demo config on ``manifest`` with about ``n`` composites (a multiple of 12)."""
    from cropaudit.pipelines.demo_pipeline import embedded_config

    model = (
        {"spec": spec} | ({"box": box} if box else {}) | ({"batch_size": batch} if batch else {})
    )
    return embedded_config().replace(
        name=f"bench-{n}",
        design={"composites_per_pair": max(1, math.ceil(n / PER_SAMPLE)), "controls": []},
        manifest={"path": str(manifest)},
        model=model,
        layout=layout,
    )


def timed_audit(cfg, out: Path, pipeline_args: list[str] | None = None) -> tuple[float, dict]:
    from cropaudit.pipelines.audit_pipeline import run_audit

    start = time.perf_counter()
    summary = run_audit(cfg, str(out), pipeline_args=pipeline_args, overwrite=True, quiet=True)
    seconds = time.perf_counter() - start
    if not summary["all_composites_accounted"] or summary["composites_dead_lettered"]:
        raise RuntimeError(f"run incomplete: {summary}")
    return seconds, summary


def model_spec(args) -> str:
    if args.model:
        return args.model
    if not DEFAULT_VXM.exists():
        sys.exit(f"FastGaze not found at {DEFAULT_VXM}: pass --model fastgaze:PATH or baseline")
    return f"fastgaze:{DEFAULT_VXM}"


class Sizes:
    """Median wall times of the N0 and N runs of one configuration, and what follows."""

    def __init__(self, n0: int, n: int, t0: list[float], t: list[float]):
        self.n0, self.n = n0, n
        self.t0, self.t = statistics.median(t0), statistics.median(t)

    @property
    def wall(self) -> float:
        return self.n / self.t

    @property
    def steady(self) -> float:
        return (self.n - self.n0) / (self.t - self.t0) if self.t > self.t0 else float("nan")

    @property
    def fixed(self) -> float:
        return self.t0 - self.n0 / self.steady


def run_sizes(cfg0, cfg, root: Path, repeats: int, pipeline_args=None, label="") -> Sizes:
    t0, t = [], []
    n0 = n = 0
    # untimed warm-up: imports, TensorFlow start-up and first-use costs of this process
    timed_audit(cfg0, root / f"run-{label}-warmup", pipeline_args)
    for r in range(repeats):
        s0, sum0 = timed_audit(cfg0, root / f"run-{label}-small-{r}", pipeline_args)
        s, summ = timed_audit(cfg, root / f"run-{label}-large-{r}", pipeline_args)
        n0, n = sum0["composites_expected"], summ["composites_expected"]
        t0.append(s0)
        t.append(s)
        print(f"  [{label} repeat {r + 1}] {n0} composites {s0:.1f} s, {n} composites {s:.1f} s")
    return Sizes(n0, n, t0, t)


# -- (a) end to end vs bare model ---------------------------------------------------------------


def bare_model(cfg, repeats: int) -> dict:
    """Render + pre-process the run's composites once; time only batched predict."""
    import numpy as np

    from cropaudit.model.registry import load_handler
    from cropaudit.transforms.design import design_cells, index_groups, sample_composites
    from cropaudit.transforms.manifests import load_manifest
    from cropaudit.transforms.render import FaceCache, render_canvas

    attributes = list(cfg.groups.attributes)
    faces, _ = load_manifest(cfg.manifest.path, attributes)
    index = index_groups(faces, attributes)
    composites = [
        c
        for cell in design_cells(list(index), cfg.design)
        for i in range(cell.samples)
        for c in sample_composites(cell, i, index, cfg.design.seed, cfg.design.order)
    ]
    handler = load_handler(cfg.model.spec, cfg.model.preprocess_options())
    cache = FaceCache(cfg.layout)
    start = time.perf_counter()
    inputs = np.stack(
        [handler.preprocess(render_canvas(c, cfg.layout, cache)[0]) for c in composites]
    )
    render_s = time.perf_counter() - start
    model = handler.load_model()
    bs = cfg.model.batch_size
    batches = [inputs[i : i + bs] for i in range(0, len(inputs), bs)]
    model.predict_fixed(batches[0], bs)  # warm-up: every call is bs rows, so one trace
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for b in batches:
            model.predict_fixed(b, bs)
        times.append(time.perf_counter() - start)
    return {
        "n": len(inputs),
        "input_shape": tuple(inputs.shape[1:]),
        "predict_per_s": len(inputs) / statistics.median(times),
        "render_per_s": len(inputs) / render_s,
    }


def part_a(args, root: Path, manifest: Path) -> None:
    spec = model_spec(args)
    layout = layout_section(args.layout, args.height)
    cfg0 = make_config(manifest, args.n0, spec, layout, args.box, args.batch)
    cfg = make_config(manifest, args.n, spec, layout, args.box, args.batch)
    print(
        f"\n(a) end to end vs bare model: {spec}, layout {args.layout}, "
        f"batch {cfg.model.batch_size}, median of {args.repeats}"
    )
    sizes = run_sizes(cfg0, cfg, root, args.repeats, label="a")
    bare = bare_model(cfg, args.repeats)
    print(f"  model input {bare['input_shape']} (h, w, c); {bare['n']} composites")
    rows = [
        ("bare model: batched predict only", bare["predict_per_s"], ""),
        ("render + pre-process (1 thread, outside Beam)", bare["render_per_s"], ""),
        (
            f"end to end, wall ({sizes.n} composites, start-up included)",
            sizes.wall,
            f"{sizes.wall / bare['predict_per_s']:.2f}",
        ),
        (
            f"end to end, steady state ({sizes.n} - {sizes.n0}) / dt",
            sizes.steady,
            f"{sizes.steady / bare['predict_per_s']:.2f}",
        ),
    ]
    print(f"  {'figure':<62} {'composites/s':>12} {'vs bare':>8}")
    for name, rate, ratio in rows:
        print(f"  {name:<62} {rate:>12.1f} {ratio:>8}")
    print(
        f"  fixed pipeline start-up (t_N0 - N0/steady): {sizes.fixed:.1f} s "
        f"(N0={sizes.n0} run: {sizes.t0:.1f} s, N={sizes.n} run: {sizes.t:.1f} s)"
    )
    met = sizes.steady / bare["predict_per_s"] >= 0.75
    print(f"  target steady/bare >= 0.75: {'met' if met else 'NOT met'}")


# -- (b) 1 vs 2 workers -------------------------------------------------------------------------


def part_b(args, root: Path, manifest: Path) -> None:
    spec = model_spec(args)
    layout = layout_section(args.layout, args.height)
    cfg0 = make_config(manifest, args.n0, spec, layout, args.box, args.batch)
    cfg = make_config(manifest, args.n, spec, layout, args.box, args.batch)
    print(f"\n(b) 1 vs 2 workers: {spec}, layout {args.layout}, median of {args.repeats}")
    one = run_sizes(cfg0, cfg, root, args.repeats, label="b-1")
    two = run_sizes(cfg0, cfg, root, args.repeats, TWO_WORKERS, label="b-2")
    print(f"  {'runner':<46} {'wall/s':>8} {'steady/s':>9} {'fixed s':>8}")
    for name, s in (
        ("direct, in-memory (1 process)", one),
        ("direct, multi_processing, 2 workers", two),
    ):
        print(f"  {name:<46} {s.wall:>8.1f} {s.steady:>9.1f} {s.fixed:>8.1f}")
    print(
        f"  speed-up 2 vs 1: wall {two.wall / one.wall:.2f}x, "
        f"steady {two.steady / one.steady:.2f}x ({os.cpu_count()} CPUs)"
    )


# -- (c) peak RSS vs N --------------------------------------------------------------------------


def _tree_rss_bytes(root_pid: int) -> int:
    """Summed resident set size of ``root_pid`` and all its descendants (Linux /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [root_pid]
    while todo:
        pid = todo.pop()
        todo.extend(parents.get(pid, ()))
        try:
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
    return total


def rss_child(params: dict) -> None:
    """Run one audit and print its timings and peak RSS as JSON (in a fresh process)."""
    cfg = make_config(
        Path(params["manifest"]), params["n"], params["spec"], params["layout"], params["box"]
    )
    seconds, summary = timed_audit(cfg, Path(params["out"]), params["pipeline_args"])
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(
        "RSS-RESULT "
        + json.dumps(
            {
                "n": summary["composites_expected"],
                "seconds": seconds,
                "self_mb": self_kb / 1024,
                "children_mb": children_kb / 1024,
            }
        )
    )


def part_c(args, root: Path, manifest: Path) -> None:
    layout = layout_section(args.rss_layout, args.rss_height)
    box = args.rss_box if args.rss_layout == "horizontal" else args.box
    print(
        f"\n(c) peak RSS vs N: model {args.rss_model}, layout {args.rss_layout}"
        + (f" height {args.rss_height}, model box {box}" if args.rss_layout == "horizontal" else "")
        + (f", Beam args {' '.join(args.rss_pipeline_args)}" if args.rss_pipeline_args else "")
        + "; each size in a fresh process"
    )
    if args.rss_model == "baseline":
        print(
            "  (built-in baseline model, not FastGaze: 100k FastGaze composites take ~40 min here)"
        )
    results = []
    for n in args.rss_sizes:
        params = {
            "manifest": str(manifest),
            "n": n,
            "spec": args.rss_model,
            "layout": layout,
            "box": box,
            "out": str(root / f"rss-{n}"),
            "pipeline_args": args.rss_pipeline_args,
        }
        proc = subprocess.Popen(
            [sys.executable, __file__, "--rss-child", json.dumps(params)],
            stdout=subprocess.PIPE,
            text=True,
        )
        peak = 0
        stop = threading.Event()

        def sample(pid=proc.pid, stop=stop):
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, _tree_rss_bytes(pid))
                stop.wait(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        out, _ = proc.communicate()
        stop.set()
        sampler.join()
        if proc.returncode:
            sys.exit(f"size {n} failed (exit {proc.returncode}):\n{out[-3000:]}")
        line = next(ln for ln in out.splitlines() if ln.startswith("RSS-RESULT "))
        result = json.loads(line.split(" ", 1)[1]) | {"tree_mb": peak / 2**20}
        results.append(result)
        print(
            f"  {result['n']:>8} composites: {result['seconds']:7.1f} s, "
            f"peak RSS {result['self_mb']:7.0f} MB (process), "
            f"{result['children_mb']:6.0f} MB (largest child), "
            f"{result['tree_mb']:7.0f} MB (tree, sampled)"
        )
    print(f"  {'composites':>10} {'s':>7} {'/s':>7} {'RSS MB':>8} {'tree MB':>8} {'x prev':>7}")
    prev = None
    for r in results:
        ratio = f"{r['self_mb'] / prev['self_mb']:.2f}" if prev else ""
        print(
            f"  {r['n']:>10} {r['seconds']:>7.1f} {r['n'] / r['seconds']:>7.1f} "
            f"{r['self_mb']:>8.0f} {r['tree_mb']:>8.0f} {ratio:>7}"
        )
        prev = r
    if len(results) >= 2:
        last, before = results[-1], results[-2]
        ratio = max(last["self_mb"], last["tree_mb"]) / max(before["self_mb"], before["tree_mb"])
        verdict = "met" if ratio <= 1.10 else "NOT met"
        print(
            f"  RSS({last['n']})/RSS({before['n']}) = {ratio:.2f} (target <= 1.10 for 100k/10k: "
            f"{verdict})"
        )


# -- command line -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", nargs="+", choices="abc", default=list("abc"))
    parser.add_argument("--n", type=int, default=320, help="composites of the large run (a, b)")
    parser.add_argument("--n0", type=int, default=12, help="composites of the small run (a, b)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (a, b)")
    parser.add_argument("--model", help="model spec for a, b (default fastgaze:../shared/...)")
    parser.add_argument("--layout", choices=("vertical_gap", "horizontal"), default="vertical_gap")
    parser.add_argument("--height", type=int, default=64, help="horizontal layout height (a, b)")
    parser.add_argument("--box", type=int, help="model box (default: the config's, 320)")
    parser.add_argument(
        "--batch", type=int, help="model batch size for a, b (default: config's, 16)"
    )
    parser.add_argument("--subjects", type=int, default=6, help="synthetic subjects per group")
    parser.add_argument("--rss-sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--rss-model", default="baseline", help="model spec for c")
    parser.add_argument(
        "--rss-layout", choices=("vertical_gap", "horizontal"), default="horizontal"
    )
    parser.add_argument("--rss-height", type=int, default=64, help="horizontal height for c")
    parser.add_argument("--rss-box", type=int, default=64, help="model box for c (horizontal)")
    parser.add_argument(
        "--rss-pipeline-args",
        type=str.split,
        default=[],
        help='Beam options for c, one string: --rss-pipeline-args="--direct_num_workers=2 '
        '--direct_running_mode=multi_processing"',
    )
    parser.add_argument("--workdir", help="where runs are written (default: a temporary folder)")
    parser.add_argument("--rss-child", help=argparse.SUPPRESS)
    args = parser.parse_args()

    import logging

    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    if args.rss_child:
        rss_child(json.loads(args.rss_child))
        return

    print(f"cropaudit pipeline benchmark: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory(prefix="cropaudit-bench-", dir=args.workdir) as tmp:
        root = Path(tmp)
        manifest = face_set(root, args.subjects)
        if "a" in args.part:
            part_a(args, root, manifest)
        if "b" in args.part:
            part_b(args, root, manifest)
        if "c" in args.part:
            part_c(args, root, manifest)


if __name__ == "__main__":
    main()
